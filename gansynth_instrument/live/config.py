"""Typed settings shared by the flows that play the instrument: what plays (``Sounds``), the note
cache's (``CacheConfig``) and the engine's (``EngineConfig``). Live play's ``player.PlayConfig``
and the engine render's ``offline/render_engine.RenderConfig`` hold one of each beside their own.

Each is a frozen dataclass whose fields are checked once, when it is made: a bad value is a
one-line ``GansynthError`` naming the command-line option that sets it, before any file or model
is opened. They are then handed down whole (``Player`` / ``render_midi_engine`` →
``instrument.assemble`` → ``build_engine`` → ``Engine``), and nothing below checks them again.
The commands build them from the parsed arguments (``commands/play.py``'s ``play_config``,
``commands/render.py``'s ``render_config``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gansynth_instrument.errors import CacheError, GansynthError, PresetError
from gansynth_instrument.live.channels import CHANNELS, DEFAULT_BEND_RANGE_SEMITONES
from gansynth_instrument.notes.cache import DEFAULT_MAX_MEMORY_BYTES
from gansynth_instrument.notes.disk_store import DEFAULT_CACHE_DIR
from gansynth_instrument.notes.levels import DEFAULT_VELOCITY_EXPONENT, master_gain

if TYPE_CHECKING:
    from gansynth_instrument.presets.bank import Bank
    from gansynth_instrument.presets.kit import Kit
    from gansynth_instrument.presets.preset import Preset

# Output rates from telephone quality to the highest rate audio interfaces run at: outside them
# a rate is a typo (0 divided by zero, 100 Hz and 1 MHz were taken).
SAMPLE_RATES = (8000, 192000)
DEFAULT_MAX_SHIFT_SEMITONES = 12  # beyond an octave a rate-shifted GANSynth note sounds wrong
MAX_BEND_RANGE_SEMITONES = 48  # MPE's member range, the widest a controller asks for
RENDERERS = ("thread", "process")


def check_sample_rate(rate: int) -> int:
    """The one rule for every command's ``--sample-rate``: a one-line error naming the range."""
    low, high = SAMPLE_RATES
    if not low <= rate <= high:
        raise GansynthError(f"--sample-rate {rate} Hz is not an output rate (choose {low}..{high})")
    return rate


def check_master_gain(gain_db: float) -> float:
    """``--gain-db`` within ``levels.MASTER_GAIN_DB_RANGE`` (``levels.master_gain``'s error)."""
    master_gain(gain_db)
    return gain_db


@dataclass(frozen=True)
class EngineConfig:
    """How the engine plays, beside what it plays: ``channels`` (0-15) it listens to (None:
    all), the pitch-bend range, the velocity curve's exponent, how far a note may be shifted from
    the nearest model pitch, and ``wait_s``: None plays a stand-in while a note is made (live),
    a number waits that long for the exact note (render)."""

    channels: frozenset[int] | None = None
    bend_range_semitones: float = DEFAULT_BEND_RANGE_SEMITONES
    velocity_exponent: float = DEFAULT_VELOCITY_EXPONENT
    max_shift_semitones: int = DEFAULT_MAX_SHIFT_SEMITONES
    wait_s: float | None = None

    def __post_init__(self) -> None:
        if self.channels is not None:
            chosen = frozenset(self.channels)
            if not chosen or not all(0 <= c < CHANNELS for c in chosen):
                raise GansynthError(
                    f"MIDI channels are 0..15 (or None for all), got {sorted(chosen)}"
                )
            object.__setattr__(self, "channels", chosen)
        if not 0 <= self.bend_range_semitones <= MAX_BEND_RANGE_SEMITONES:
            raise GansynthError(
                f"--bend-range must be 0..{MAX_BEND_RANGE_SEMITONES} semitones, "
                f"got {self.bend_range_semitones:g}"
            )
        if not self.velocity_exponent >= 0:
            raise GansynthError(f"velocity exponent must be ≥ 0, got {self.velocity_exponent}")
        if self.max_shift_semitones < 0:
            raise GansynthError(f"max shift must be ≥ 0 semitones, got {self.max_shift_semitones}")


@dataclass(frozen=True)
class CacheConfig:
    """The note cache of an instrument: its disk folder (None: memory only), where notes are
    made (``RENDERERS``: a thread, or a worker process) and the memory cap in bytes."""

    cache_dir: Path | None = DEFAULT_CACHE_DIR
    renderer: str = "thread"
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES

    def __post_init__(self) -> None:
        if self.renderer not in RENDERERS:
            raise CacheError(f"--renderer {self.renderer}: choose one of {', '.join(RENDERERS)}")
        if self.max_memory_bytes <= 0:
            raise CacheError(
                "note cache memory cap (--max-memory-mb) must be above 0, "
                f"got {self.max_memory_bytes} B"
            )


@dataclass(frozen=True)
class Sounds:
    """What an instrument plays: a preset or kit on every channel, and/or a bank (programs,
    morph path, pad, drums), and channel 10's ``drums`` (a kit or a preset; None: the bank's).
    A preset wins over the bank's first program; ``drums`` over the bank's drums.
    ``preset_model``: the model a timbre saved while playing is made for
    (``ModelInfo.preset_model``; None: a seed preset, for any model)."""

    preset: Preset | Kit | None = None
    bank: Bank | None = None
    drums: Preset | Kit | None = None
    preset_model: str | None = None

    def __post_init__(self) -> None:
        if self.preset is None and (
            self.bank is None or (not self.bank.programs and len(self.bank.morph_path) < 2)
        ):
            raise PresetError(
                "nothing to play: give a preset, or a bank with programs or a morph path"
            )
