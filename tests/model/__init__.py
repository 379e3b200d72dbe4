"""Tests of the model folder (gansynth_instrument/model/)."""
