"""Tests of gansynth_export (the top-level export/ folder)."""
