"""Offline output: engine renders and notes to files, Magenta's reproduction, MIDI files,
loudness, sample packs.
"""
