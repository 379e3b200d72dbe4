"""One exception type per boundary; the CLI prints any of them as one line and exits non-zero."""

from __future__ import annotations


class GansynthError(Exception):
    """Base for every error a user can cause (bad file, bad name, bad value). Message = one line."""


class CheckpointError(GansynthError):
    """A Magenta checkpoint dir, bundle or experiment.json is missing, malformed or unsupported."""


class ModelError(GansynthError):
    """An ONNX model cannot be loaded, or a request does not fit it (e.g. an unknown pitch)."""


class PresetError(GansynthError):
    """A preset or bank file is missing, malformed, or holds a value out of range."""


class MidiFileError(GansynthError):
    """A MIDI file cannot be read or holds nothing playable."""


class DeviceError(GansynthError):
    """An audio device or MIDI port cannot be found or opened."""


class OutputError(GansynthError):
    """An output file or directory cannot be written."""


class CacheError(GansynthError):
    """The note cache cannot do what was asked (bad setting, a note that failed to render)."""


class DatasetError(GansynthError):
    """An audio file or dataset folder cannot be read, or holds something unusable."""


class TrainingError(GansynthError):
    """A training run cannot start or resume (bad dataset, config, or train dir)."""
