"""What a bake makes, before any note: the instruments (one per preset, and a bank's morph path
as one crossfaded instrument), the keys each model pitch plays, and the velocity curve.

Each sample plays the keys nearest to it, as the engine does (ties go down, at most
``DEFAULT_MAX_SHIFT_SEMITONES`` away); a morph path's steps crossfade by the bank's morph
controller as the engine's do (linear gains, neighbouring steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.live.config import DEFAULT_MAX_SHIFT_SEMITONES
from gansynth_instrument.live.engine import note_amplitude
from gansynth_instrument.notes.timbre import Timbre, morph_steps
from gansynth_instrument.presets.bank import Bank
from gansynth_instrument.presets.bank_files import bank_preset
from gansynth_instrument.presets.preset import Preset

MORPH_SUFFIX = "-morph"


@dataclass(frozen=True)
class Step:
    """One timbre of an instrument; in a morph, the CC values where it fades in, is at full level
    and fades out (``None`` at an end of the path)."""

    timbre: Timbre
    fade_in: tuple[int, int] | None = None
    fade_out: tuple[int, int] | None = None


@dataclass(frozen=True)
class Instrument:
    """What becomes ``NAME.sfz`` / ``NAME.dspreset``: a preset (one step) or a morph path."""

    name: str
    steps: tuple[Step, ...]
    cc: int | None = None  # the morph controller


@dataclass(frozen=True)
class Sample:
    """One WAV of an instrument and where it plays."""

    path: str  # relative to the pack folder, "/"-separated
    pitch: int
    keys: tuple[int, int]
    volume_db: float  # the WAV's content → the instrument's level at velocity 127
    loop: tuple[int, int] | None  # first and last frame of the loop (both played)


def bake_instruments(
    presets: Sequence[Preset], bank: Bank | None, latent_size: int
) -> list[Instrument]:
    """The instruments a bake makes: one per preset (given, then the bank's), then the bank's
    morph path as one instrument named ``BANK-morph``. Names must differ."""
    chosen = list(presets)
    if bank is not None:
        chosen += [bank_preset(bank, name) for name in bank.preset_names()]
    unique = list({p.name: p for p in chosen}.values())
    instruments = [Instrument(p.name, (Step(Timbre.from_preset(p, latent_size)),)) for p in unique]
    if bank is not None and len(bank.morph_path) >= 2:
        path = [Timbre.from_preset(bank_preset(bank, n), latent_size) for n in bank.morph_path]
        instruments.append(
            morph_instrument(
                bank.name + MORPH_SUFFIX, morph_steps(path, bank.morph_steps), bank.morph_cc
            )
        )
    names = [i.name for i in instruments]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash is not None:
        raise GansynthError(f"two instruments would be named '{clash}'; rename one preset")
    if not instruments:
        raise GansynthError("nothing to bake: name presets or a --bank")
    return instruments


def morph_instrument(name: str, steps: Sequence[Timbre], cc: int) -> Instrument:
    """Morph steps as crossfade layers: step i is full at CC ≈ i·127/(n-1) and fades linearly
    into its neighbours, so at every controller value the gains sum to one, as in the engine."""
    centres = [round(i * 127 / (len(steps) - 1)) for i in range(len(steps))]
    return Instrument(
        name,
        tuple(
            Step(
                timbre,
                (centres[i - 1], centres[i]) if i > 0 else None,
                (centres[i], centres[i + 1]) if i < len(steps) - 1 else None,
            )
            for i, timbre in enumerate(steps)
        ),
        cc,
    )


def key_ranges(
    pitches: Sequence[int], max_shift: int = DEFAULT_MAX_SHIFT_SEMITONES
) -> dict[int, tuple[int, int]]:
    """The keys each model pitch plays: the nearest (ties to the lower), at most ``max_shift``
    semitones away, as ``Engine.model_pitch`` chooses."""
    ordered = sorted(pitches)
    ranges = {}
    for i, pitch in enumerate(ordered):
        lo = (
            pitch - max_shift
            if i == 0
            else max((ordered[i - 1] + pitch) // 2 + 1, pitch - max_shift)
        )
        hi = (
            pitch + max_shift
            if i == len(ordered) - 1
            else min((pitch + ordered[i + 1]) // 2, pitch + max_shift)
        )
        ranges[pitch] = (max(0, lo), min(127, hi))
    return ranges


def velocity_curve(timbre: Timbre, exponent: float) -> list[float]:
    """Amplitude at velocities 0..127 relative to velocity 127 (the sample's own level)."""
    full = note_amplitude(timbre, 127, exponent)
    return [note_amplitude(timbre, v, exponent) / full for v in range(128)]
