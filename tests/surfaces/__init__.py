"""Tests of gansynth_instrument/surfaces/."""
