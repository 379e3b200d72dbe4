"""Tests of gansynth_instrument/commands/ (the command line, end to end)."""
