"""gansynth-instrument: a real-time, MIDI-playable instrument built on GANSynth.

The public API, imported on first use (``import gansynth_instrument`` itself loads nothing heavy,
so the command line starts fast)::

    load_model(path) -> Model          an exported ONNX instrument model; Model.generate(z, pitches)
    ModelInfo                          the metadata every model carries
    random_latent, slerp               timbres: a seed's latent, the path between two latents
    Preset, Bank, find_preset, find_bank   preset and bank files
    Timbre, morph_steps                what the engine plays, and the steps of a morph path
    NoteCache, Priority, Note          finished notes at the output rate, made in the background
    Mixer, Voices, Engine              voices → samples, note-on → voice, MIDI → voice commands
    assemble, Instrument               cache + voices + engine for a preset or bank, in one call
    Player                             live play: the instrument, an audio stream, MIDI inputs
    read_midi, render_midi_engine      a MIDI file's events; a MIDI file → stereo file (engine)
    GansynthError                      base of every error a user can cause
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name → the module that defines it
_EXPORTS = {
    "Bank": "banks",
    "Engine": "engine",
    "GansynthError": "errors",
    "Instrument": "instrument",
    "Mixer": "mixer",
    "Model": "model",
    "ModelInfo": "metadata",
    "Note": "note",
    "NoteCache": "cache",
    "Player": "live",
    "Preset": "presets",
    "Priority": "note_queue",
    "Timbre": "timbre",
    "Voices": "voices",
    "assemble": "instrument",
    "find_bank": "bank_files",
    "find_preset": "preset_files",
    "load_model": "model",
    "morph_steps": "timbre",
    "random_latent": "latent",
    "read_midi": "midi_file",
    "render_midi_engine": "offline",
    "slerp": "latent",
}
__all__ = [
    "Bank",
    "Engine",
    "GansynthError",
    "Instrument",
    "Mixer",
    "Model",
    "ModelInfo",
    "Note",
    "NoteCache",
    "Player",
    "Preset",
    "Priority",
    "Timbre",
    "Voices",
    "__version__",
    "assemble",
    "find_bank",
    "find_preset",
    "load_model",
    "morph_steps",
    "random_latent",
    "read_midi",
    "render_midi_engine",
    "slerp",
]

if TYPE_CHECKING:
    from gansynth_instrument.bank_files import find_bank
    from gansynth_instrument.banks import Bank
    from gansynth_instrument.cache import NoteCache
    from gansynth_instrument.engine import Engine
    from gansynth_instrument.errors import GansynthError
    from gansynth_instrument.instrument import Instrument, assemble
    from gansynth_instrument.latent import random_latent, slerp
    from gansynth_instrument.live import Player
    from gansynth_instrument.metadata import ModelInfo
    from gansynth_instrument.midi_file import read_midi
    from gansynth_instrument.mixer import Mixer
    from gansynth_instrument.model import Model, load_model
    from gansynth_instrument.note import Note
    from gansynth_instrument.note_queue import Priority
    from gansynth_instrument.offline import render_midi_engine
    from gansynth_instrument.preset_files import find_preset
    from gansynth_instrument.presets import Preset
    from gansynth_instrument.timbre import Timbre, morph_steps
    from gansynth_instrument.voices import Voices


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gansynth_instrument' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gansynth_instrument.{module}"), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
