"""Knob positions: controller values → stops → offsets along the timbre knobs' directions.

A knob's offset is in standard deviations of the model's timbres along its direction
(``ganspace.KnobDirections``). Live, a controller's 128 values are quantised into ``stops`` evenly
spaced offsets (the centre, 0, is a stop): each stop is a timbre the note cache renders and
keeps, as a morph step is, and a voice crossfades the two stops around the controller's position.
Offline (``presets new --knob 1=+2.5``) offsets are exact.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence

from gansynth_instrument.errors import PresetError
from gansynth_instrument.midi_spec import CONTROL_CHANGE, DATA_MAX, KIND_MASK

# MIDI 1.0's Sound Controllers 1-8 (CC70-77): meant for shaping the sound, and what common
# 8-knob keyboards (Akai's MPK mini, among others) send by default.
KNOB_CCS = tuple(range(70, 78))
# Buttons (a press sends 127): General Purpose Controllers 5 and 6.
EXPLORE_CCS = {"the random-timbre button": 80, "the save-timbre button": 81}
KNOB_SPAN = 4.0  # a knob turned fully reaches ±4 standard deviations
KNOB_STOPS = 17  # odd, so the centre is a stop: 0.5 standard deviations apart at the default span
CC_CENTRE = 64

_SPEC = re.compile(r"\s*(?P<knob>[^=]+?)\s*=\s*(?P<offset>.+?)\s*")


def check_stops(stops: int) -> int:
    """An odd stop count ≥ 3 (so centre and both ends are stops), else a PresetError."""
    if isinstance(stops, bool) or not isinstance(stops, int) or stops < 3 or stops % 2 == 0:
        raise PresetError(f"knob stops must be an odd number ≥ 3, got {stops!r}")
    return stops


def position(value: int, stops: int = KNOB_STOPS) -> float:
    """Where controller ``value`` (0..127) lies, in stops (0..stops-1): 0 and 127 are the end
    stops and 64, a knob's centre detent, is exactly the centre stop (the original timbre)."""
    if not 0 <= value <= DATA_MAX:
        raise PresetError(f"controller value must be 0..{DATA_MAX}, got {value}")
    centre = (stops - 1) // 2
    if value <= CC_CENTRE:
        return value / CC_CENTRE * centre
    return centre + (value - CC_CENTRE) / (DATA_MAX - CC_CENTRE) * centre


def nearest_stop(value: int, stops: int = KNOB_STOPS) -> int:
    """The stop a controller value selects when a single timbre is wanted (a saved timbre)."""
    return round(position(value, stops))


def stop_offset(stop: int, stops: int = KNOB_STOPS, span: float = KNOB_SPAN) -> float:
    """The offset (standard deviations) at ``stop``: −span at 0, 0 at the centre, +span at the
    last stop. Exact for the centre, so a knob turned back to it gives back the original timbre."""
    if not 0 <= stop < stops:
        raise PresetError(f"knob stop must be 0..{stops - 1}, got {stop}")
    centre = (stops - 1) // 2
    return (stop - centre) / centre * span


def parse_knob(spec: str, count: int) -> tuple[int, float]:
    """``"1=+2.5"`` → (knob index 0, offset 2.5). Knobs are numbered from 1 as on the panel;
    a number beyond ``count`` or an offset that is not a finite number is a PresetError naming
    the value."""
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise PresetError(f"--knob {spec!r}: expected KNOB=OFFSET, e.g. 1=+2.5")
    knob_text, offset_text = match["knob"], match["offset"]
    if not knob_text.isdigit():
        raise PresetError(f"--knob {spec!r}: knob {knob_text!r} is not a number 1..{count}")
    knob = int(knob_text)
    if not 1 <= knob <= count:
        raise PresetError(f"--knob {spec!r}: knob {knob} is beyond this model's knobs (1..{count})")
    try:
        offset = float(offset_text)
    except ValueError:
        raise PresetError(f"--knob {spec!r}: offset {offset_text!r} is not a number") from None
    if not math.isfinite(offset):
        raise PresetError(f"--knob {spec!r}: offset {offset_text!r} is not a finite number")
    return knob - 1, offset


def parse_knobs(specs: Iterable[str], count: int) -> tuple[float, ...]:
    """Every ``--knob`` given → ``count`` offsets (unset knobs 0); a knob given twice is an
    error, since which one was meant cannot be told."""
    offsets = [0.0] * count
    seen: set[int] = set()
    for spec in specs:
        knob, offset = parse_knob(spec, count)
        if knob in seen:
            raise PresetError(f"--knob {spec!r}: knob {knob + 1} is given more than once")
        seen.add(knob)
        offsets[knob] = offset
    return tuple(offsets)


def describe(offsets: Iterable[float]) -> str:
    """``knobs 1=+2.5 3=-1`` for the knobs that are turned ("" when none is): what a saved
    timbre's description records."""
    turned = [f"{i + 1}={v:+g}" for i, v in enumerate(offsets) if v != 0.0]
    return "knobs " + " ".join(turned) if turned else ""


def turns_knobs(messages: Iterable[Sequence[int]], ccs: Collection[int] = KNOB_CCS) -> bool:
    """Whether raw MIDI ``messages`` move any of the knob controllers ``ccs``: a render finds the
    model's knob directions (a PCA, the first time) only for a song that needs them."""
    return any(len(m) > 1 and m[0] & KIND_MASK == CONTROL_CHANGE and m[1] in ccs for m in messages)
