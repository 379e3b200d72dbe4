"""Tests of gansynth_instrument/notes/."""
