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
    Sounds, EngineConfig, CacheConfig  what plays; the engine's and the note cache's settings
    assemble, Instrument               cache + voices + engine for Sounds, in one call
    Player, PlayConfig                 live play: the instrument, an audio stream, MIDI inputs
    read_midi, render_midi_engine      a MIDI file's events; a MIDI file → stereo file (engine)
    RenderConfig                       render_midi_engine's settings
    GansynthError                      base of every error a user can cause
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name → the module that defines it
_EXPORTS = {
    "Bank": "presets.bank",
    "CacheConfig": "live.config",
    "Engine": "live.engine",
    "EngineConfig": "live.config",
    "GansynthError": "errors",
    "Instrument": "live.instrument",
    "Mixer": "live.mixer",
    "Model": "model.runtime",
    "ModelInfo": "model.metadata",
    "Note": "notes.note",
    "NoteCache": "notes.cache",
    "PlayConfig": "live.player",
    "Player": "live.player",
    "Preset": "presets.preset",
    "Priority": "notes.note_queue",
    "RenderConfig": "offline.render_engine",
    "Sounds": "live.config",
    "Timbre": "notes.timbre",
    "Voices": "live.voices",
    "assemble": "live.instrument",
    "find_bank": "presets.bank_files",
    "find_preset": "presets.preset_files",
    "load_model": "model.runtime",
    "morph_steps": "notes.timbre",
    "random_latent": "model.latent",
    "read_midi": "offline.midi_file",
    "render_midi_engine": "offline.render_engine",
    "slerp": "model.latent",
}
__all__ = [
    "Bank",
    "CacheConfig",
    "Engine",
    "EngineConfig",
    "GansynthError",
    "Instrument",
    "Mixer",
    "Model",
    "ModelInfo",
    "Note",
    "NoteCache",
    "PlayConfig",
    "Player",
    "Preset",
    "Priority",
    "RenderConfig",
    "Sounds",
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
    from gansynth_instrument.errors import GansynthError
    from gansynth_instrument.live.config import CacheConfig, EngineConfig, Sounds
    from gansynth_instrument.live.engine import Engine
    from gansynth_instrument.live.instrument import Instrument, assemble
    from gansynth_instrument.live.mixer import Mixer
    from gansynth_instrument.live.player import PlayConfig, Player
    from gansynth_instrument.live.voices import Voices
    from gansynth_instrument.model.latent import random_latent, slerp
    from gansynth_instrument.model.metadata import ModelInfo
    from gansynth_instrument.model.runtime import Model, load_model
    from gansynth_instrument.notes.cache import NoteCache
    from gansynth_instrument.notes.note import Note
    from gansynth_instrument.notes.note_queue import Priority
    from gansynth_instrument.notes.timbre import Timbre, morph_steps
    from gansynth_instrument.offline.midi_file import read_midi
    from gansynth_instrument.offline.render_engine import RenderConfig, render_midi_engine
    from gansynth_instrument.presets.bank import Bank
    from gansynth_instrument.presets.bank_files import find_bank
    from gansynth_instrument.presets.preset import Preset
    from gansynth_instrument.presets.preset_files import find_preset


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gansynth_instrument' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gansynth_instrument.{module}"), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
