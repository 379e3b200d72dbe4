"""Tests of gansynth_instrument.export (the top-level export/ folder)."""
