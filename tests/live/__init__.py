"""Tests of gansynth_instrument/live/."""
