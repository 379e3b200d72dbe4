"""Per-channel MIDI state, as a General MIDI synth keeps it (FluidSynth is the reference).

Each of the 16 channels has its own program and bank select, pitch bend and its range (RPN 0),
sustain pedal, morph knob position, volume (CC7), expression (CC11) and pan (CC10). This module
holds that state and turns it into numbers the voices use (bend in semitones, left/right gains);
the engine (``engine.py``) routes messages here and acts on what changed.

Levels follow General MIDI Level 2's recommendation: CC7 and CC11 each scale by
40·log10(value/127) dB, i.e. (value/127)² in amplitude, and pan is constant-power. The reference
level is a channel at its GM defaults (volume 100, expression 127, pan centre): it plays at the
level a note has on its own (gain 1 on both sides), so CC7 = 127 is +4.2 dB above it, and a
channel panned hard to one side plays that side at +3 dB (√2) and the other not at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.midi_spec import BEND_CENTER, CC_DATA_MSB

CHANNELS = 16
DRUM_CHANNEL = 9  # channel 10 as musicians count: General MIDI percussion
DEFAULT_BEND_RANGE_SEMITONES = 2.0
MAX_BEND_RANGE_SEMITONES = 24.0  # GM2's largest pitch-bend sensitivity
DEFAULT_VOLUME = 100
DEFAULT_EXPRESSION = 127
CENTER_PAN = 64
RPN_NULL = (127, 127)
RPN_BEND_RANGE = (0, 0)

GM_FAMILIES = (
    "piano",
    "chromatic percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth lead",
    "synth pad",
    "synth effects",
    "ethnic",
    "percussive",
    "sound effects",
)


def gm_family(program: int) -> str:
    """The General MIDI family of a program 0-127 (8 programs each)."""
    return GM_FAMILIES[program // 8]


def level_gain(volume: int, expression: int) -> float:
    """Amplitude factor of CC7 and CC11 (GM2's curve), 1.0 at the GM defaults."""
    return (volume * expression / (DEFAULT_VOLUME * DEFAULT_EXPRESSION)) ** 2


def pan_gains(pan: int) -> tuple[float, float]:
    """(left, right) of a constant-power pan, 1.0 each at the centre (64); 0 and 1 are hard
    left, 127 hard right (GM2: p = (pan - 1) / 126)."""
    if pan >= 127:
        return 0.0, math.sqrt(2.0)  # exactly silent on the left (cos(π/2) is not 0 in floats)
    p = (max(pan, 1) - 1) / 126
    return math.sqrt(2.0) * math.cos(p * math.pi / 2), math.sqrt(2.0) * math.sin(p * math.pi / 2)


def channel_list(text: str) -> frozenset[int]:
    """``"1,2,10"`` or ``"1-4,10"`` (channels counted 1-16, as musicians count) → 0-based
    indices. ValueError with a one-line reason otherwise."""
    chosen: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        first, _, last = part.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"{part!r} is not a channel number or range like 1-4") from None
        for number in (lo, hi):
            if not 1 <= number <= CHANNELS:
                raise ValueError(f"MIDI channel {number} does not exist (channels are 1-16)")
        if lo > hi:
            raise ValueError(f"{part!r}: the range runs backwards")
        chosen.update(range(lo - 1, hi))
    return frozenset(chosen)


def parse_channels(option: str, text: str) -> frozenset[int]:
    """``channel_list`` for a command-line option: a bad list is a one-line GansynthError."""
    try:
        return channel_list(text)
    except ValueError as err:
        raise GansynthError(f"{option} {text}: {err}") from None


@dataclass
class Channel:
    """One MIDI channel's state (the engine owns 16). Controllers start at their GM defaults."""

    number: int  # 0-15
    program: int = 0
    bank: int = 0  # CC0 (MSB): selects the bank of the next program change
    bank_lsb: int = 0  # CC32: kept as received; banks are chosen by the MSB (FluidSynth's "gs")
    bend: int = BEND_CENTER  # 14-bit
    bend_range: float = DEFAULT_BEND_RANGE_SEMITONES
    rpn: tuple[int, int] = RPN_NULL  # (MSB, LSB) selected by CC101/CC100
    volume: int = DEFAULT_VOLUME
    expression: int = DEFAULT_EXPRESSION
    pan: int = CENTER_PAN
    sustain: bool = False
    morph_position: float | None = None  # in morph steps; None while a program's preset plays
    note_level: float = 1.0  # an MPE member channel's pressure → level (``mpe_input.py``)

    def bend_semitones(self) -> float:
        """The bend as semitones; both ends of the 14-bit range are exactly ± the range."""
        span = BEND_CENTER - 1 if self.bend > BEND_CENTER else BEND_CENTER
        return (self.bend - BEND_CENTER) / span * self.bend_range

    def gains(self) -> tuple[float, float]:
        """(left, right) amplitude of this channel's voices: volume, expression, pan and an MPE
        note's pressure."""
        level = level_gain(self.volume, self.expression) * self.note_level
        left, right = pan_gains(self.pan)
        return level * left, level * right

    def data_entry(self, cc: int, value: int) -> str | None:
        """CC6/CC38 for the selected RPN. Only RPN 0 (bend range) is kept; a range over
        ``MAX_BEND_RANGE_SEMITONES`` is clamped. Returns a notice for what was not taken."""
        if self.rpn != RPN_BEND_RANGE:
            return None
        semitones, cents = math.floor(self.bend_range), round(self.bend_range % 1 * 100)
        if cc == CC_DATA_MSB:
            semitones, cents = value, 0  # a new MSB resets the LSB, as FluidSynth does
        else:
            cents = min(value, 99)
        wanted = semitones + cents / 100
        self.bend_range = min(wanted, MAX_BEND_RANGE_SEMITONES)
        if wanted > MAX_BEND_RANGE_SEMITONES:
            return (
                f"channel {self.number + 1}: pitch-bend range {wanted:g} semitones (RPN 0) is "
                f"over {MAX_BEND_RANGE_SEMITONES:g}; using {MAX_BEND_RANGE_SEMITONES:g}"
            )
        return None

    def reset_controllers(self) -> None:
        """CC121, as General MIDI's RP-015 lists: bend centred, expression 127, pedal up, RPN
        deselected. Volume, pan, program, bank and the bend range stay."""
        self.bend = BEND_CENTER
        self.expression = DEFAULT_EXPRESSION
        self.sustain = False
        self.rpn = RPN_NULL
