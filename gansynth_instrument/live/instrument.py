"""One place that assembles an instrument: a model's note cache, the voices and the engine, for
``config.Sounds`` (a preset or a bank) with the cache's and the engine's configs. Live play
(``player.Player``, mixer in the audio process) and the engine render of a MIDI file
(``render_engine.render_midi_engine``, mixer in this process) both build theirs here, so the two
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gansynth_instrument.live.config import CacheConfig, EngineConfig, Sounds
from gansynth_instrument.live.engine import Engine
from gansynth_instrument.live.voices import MixerLink, Voices
from gansynth_instrument.midi_spec import CC_MOD_WHEEL
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.make import NoteModel
from gansynth_instrument.notes.timbre import DrumKit, KitHit, Timbre, morph_steps
from gansynth_instrument.presets.bank_files import bank_preset
from gansynth_instrument.presets.ganspace import KnobDirections
from gansynth_instrument.presets.kit import Kit
from gansynth_instrument.presets.knobs import KNOB_CCS
from gansynth_instrument.presets.pad import PAD_SIZE
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_files import find_preset
from gansynth_instrument.presets.timbre_space import TimbreSpace


@dataclass(frozen=True)
class Instrument:
    """What plays: the engine (MIDI in) drives the voices and asks the cache for notes."""

    cache: NoteCache
    voices: Voices
    engine: Engine


def assemble(
    model: NoteModel,
    link: MixerLink,
    sounds: Sounds,
    *,
    cache: CacheConfig | None = None,
    engine: EngineConfig | None = None,
    knobs: KnobDirections | None = None,
) -> Instrument:
    """The instrument for ``model`` playing ``sounds`` through ``link`` (a ``Mixer``, or an
    ``AudioProcess``) at its sample rate, with timbre knobs when ``knobs`` are given
    (``ganspace.knob_directions``). The cache is not started: the caller starts and closes it."""
    cache = cache or CacheConfig()
    notes = NoteCache(
        model,
        link.sample_rate,
        cache_dir=cache.cache_dir,
        renderer=cache.renderer,
        max_memory_bytes=cache.max_memory_bytes,
    )
    voices = Voices(link)
    made = build_engine(notes, voices, model.pitches, model.latent_size, sounds, engine, knobs)
    return Instrument(notes, voices, made)


def build_engine(
    cache: NoteCache,
    voices: Voices,
    pitches: Sequence[int],
    latent_size: int,
    sounds: Sounds,
    config: EngineConfig | None = None,
    knobs: KnobDirections | None = None,
) -> Engine:
    """An Engine for ``sounds``: one preset, or a bank (programs in bank select 0 and its
    variations, drums, morph path, pad; presets found by name), with timbre knobs when ``knobs``
    are given.

    With a bank, every channel starts on program 0 (General MIDI), or the lowest program when
    0 has no preset; a bank with only a morph path starts at its first preset. ``preset`` wins
    over the bank's first program when both are given; ``drums`` over the bank's drums. A kit
    as ``preset`` plays every channel until a program change. A pad corner preset whose latent
    does not fit the model is a PresetError naming it.
    """
    preset, bank, drums = sounds.preset, sounds.bank, sounds.drums

    def timbre_of(name: str) -> Timbre:
        return Timbre.from_preset(bank_preset(bank, name), latent_size)

    def player_of(item: Preset | Kit) -> Timbre | DrumKit:
        if isinstance(item, Kit):
            return drum_kit(item, latent_size)
        return Timbre.from_preset(item, latent_size)

    programs: dict[int, Timbre] = {}
    variations: dict[int, dict[int, Timbre]] = {}
    drum_timbre = player_of(drums) if drums is not None else None
    morph: list[Timbre] = []
    if bank is not None:
        programs = {program: timbre_of(name) for program, name in bank.programs.items()}
        variations = {
            number: {program: timbre_of(name) for program, name in named.items()}
            for number, named in bank.variations.items()
        }
        if drum_timbre is None and bank.kit is not None:
            drum_timbre = drum_kit(bank.kit, latent_size)
        elif drum_timbre is None and bank.drums is not None:
            drum_timbre = timbre_of(bank.drums)
        if len(bank.morph_path) >= 2:
            morph = morph_steps([timbre_of(n) for n in bank.morph_path], bank.morph_steps)
    kit = drum_kit(preset, latent_size) if isinstance(preset, Kit) else None
    if kit is not None:
        first = next(iter(kit.hits.values())).timbre  # what the knobs move, for a program change
    elif preset is not None:
        first = Timbre.from_preset(preset, latent_size)
    else:  # ``Sounds`` holds a preset, or a bank with programs or a morph path
        first = programs[min(programs)] if programs else morph[0]
    corners = [timbre_of(name) for name in bank.pad_corners] if bank is not None else []
    space = None
    if knobs is not None or corners:
        size = bank.pad_size if bank is not None else PAD_SIZE
        space = TimbreSpace(first, knobs, corners=corners, pad_size=size)
    return Engine(
        cache,
        voices,
        pitches,
        first,
        programs=programs,
        variations=variations,
        drums=drum_timbre,
        kit=kit,
        morph=morph,
        morph_cc=bank.morph_cc if bank is not None else CC_MOD_WHEEL,
        space=space,
        knob_ccs=bank.knob_ccs if bank is not None else KNOB_CCS,
        pad_ccs=bank.pad_ccs if bank is not None and corners else (),
        config=config,
    )


def drum_kit(kit: Kit, latent_size: int) -> DrumKit:
    """The kit the engine plays: each key's preset as a timbre (one per preset, shared by its
    keys), its pitch, and its hold and decay in seconds."""
    timbres = {
        name: Timbre.from_preset(kit.presets.get(name) or find_preset(name), latent_size)
        for name in kit.preset_names()
    }
    hits = {
        key: KitHit(
            timbres[sound.preset],
            sound.pitch,
            sound.hold_ms / 1000.0,
            sound.decay_ms / 1000.0,
            sound.gain_db,
        )
        for key, sound in kit.sounds.items()
    }
    return DrumKit(kit.name, hits)
