"""The instrument: MIDI in, the engine and its per-channel parts, voices, and the mixer side
(commands, ring, compiled core, audio process, audio stream).
"""
