"""Tests of gansynth_instrument/presets/."""
