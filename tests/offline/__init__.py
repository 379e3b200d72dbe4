"""Tests of gansynth_instrument/offline/."""
