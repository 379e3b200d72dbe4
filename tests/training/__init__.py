"""Tests of gansynth_instrument/training/."""
