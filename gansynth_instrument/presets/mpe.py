"""MPE (MIDI Polyphonic Expression, MMA/AMEI RP-053): zones, bend ranges and per-note values,
tracked over raw MIDI bytes.

MPE gives every sounding note a MIDI channel of its own (a *member* channel), so a channel's
pitch bend, CC74 (slide) and channel pressure belong to one note. A *zone* is a manager channel
plus its members: the lower zone has its manager on channel 1 and members from channel 2 upward,
the upper zone its manager on channel 16 and members from channel 15 downward. A zone is set by
the MPE Configuration Message (RPN 6 on the manager channel, data entry = the number of members;
0 turns the zone off), or forced for controllers that never send it (``--mpe``). When two zones
overlap, the newer message shrinks the older one.

Pitch-bend ranges: members ±48 semitones and the manager ±2 when a zone is set; RPN 0 on the
manager changes the manager's, on any member every member's (MPE 1.0, section 2.4). Ranges
over 96 semitones are clamped. Values a member channel receives before its note-on (bend,
slide, pressure) are kept here (``Expression``) and apply to the note from its first sample.

This module only tracks; ``mpe_input.MpeInput`` acts on what it tracks. ``MpeSettings`` is
the bank's ``mpe:`` block: where slide and pressure go, and the members' bend range.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gansynth_instrument.errors import PresetError
from gansynth_instrument.midi_spec import (
    BEND_CENTER,
    CC_DATA_LSB,
    CC_DATA_MSB,
    CC_NRPN_LSB,
    CC_NRPN_MSB,
    CC_RPN_LSB,
    CC_RPN_MSB,
    CHANNEL_MASK,
    CHANNEL_PRESSURE,
    CONTROL_CHANGE,
    KIND_MASK,
    PITCH_BEND,
)

logger = logging.getLogger(__name__)

CHANNELS = 16
LOWER_MANAGER, UPPER_MANAGER = 0, 15  # channels 1 and 16, counted from 0
MAX_MEMBERS = 15
CC_SLIDE = 74  # MPE's third dimension (MIDI 1.0's Sound Controller 5, "brightness")
SLIDE_START = 64  # a member channel's CC74 before any arrives (MPE's default)
MEMBER_BEND_RANGE = 48.0
MANAGER_BEND_RANGE = 2.0
MAX_BEND_RANGE = 96.0
RPN_BEND_RANGE = (0, 0)
RPN_MPE = (0, 6)
RPN_NULL = (127, 127)
FORCED = {"lower": (15, 0), "upper": (0, 15), "both": (7, 7)}  # --mpe: (lower, upper) members

KNOBS = 8
TARGETS = (*(f"knob{k}" for k in range(1, KNOBS + 1)), "morph", "pad_x", "pad_y")
PRESSURE_TARGETS = ("level", *TARGETS)
_MPE_KEYS = ("slide", "pressure", "bend_range")


def target_of(name: str) -> tuple[str, int]:
    """A target's name → (what, index): ("knob", 0-based knob), ("morph", 0), ("pad", axis)."""
    if name.startswith("knob"):
        return "knob", int(name[4:]) - 1
    if name.startswith("pad_"):
        return "pad", "xy".index(name[-1])
    return name, 0


@dataclass(frozen=True)
class MpeSettings:
    """A bank's ``mpe:`` block: the timbre target CC74 moves (``slide``), where channel pressure
    goes (``level``, the default, or a second timbre target) and the members' pitch-bend range.
    Whether the targets exist in the bank is the bank's check (``banks.Bank``)."""

    slide: str = "knob1"
    pressure: str = "level"
    bend_range: float = MEMBER_BEND_RANGE

    def __post_init__(self) -> None:
        if self.slide not in TARGETS:
            raise PresetError(f"mpe.slide {self.slide!r}: expected one of {', '.join(TARGETS)}")
        if self.pressure not in PRESSURE_TARGETS:
            raise PresetError(
                f"mpe.pressure {self.pressure!r}: expected one of {', '.join(PRESSURE_TARGETS)}"
            )
        if self.pressure == self.slide:
            raise PresetError(f"mpe: slide and pressure both move {self.slide}")
        value = self.bend_range
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PresetError(f"mpe.bend_range: expected semitones, got {value!r}")
        if not 0 <= value <= MAX_BEND_RANGE:
            raise PresetError(f"mpe.bend_range must be 0..{MAX_BEND_RANGE:g}, got {value}")
        object.__setattr__(self, "bend_range", float(value))

    @property
    def targets(self) -> tuple[str, ...]:
        """The timbre targets used (slide's, and pressure's unless it is the level)."""
        return (self.slide,) if self.pressure == "level" else (self.slide, self.pressure)

    def turns_knobs(self, messages: Iterable[Sequence[int]]) -> bool:
        """Whether raw MIDI ``messages`` would turn a timbre knob through MPE: CC74 when the
        slide goes to a knob, channel pressure when the pressure does (a render finds the model's
        knob directions only for a file that needs them)."""
        slide, pressure = (t.startswith("knob") for t in (self.slide, self.pressure))
        for m in messages:
            kind = m[0] & KIND_MASK if m else None
            if pressure and kind == CHANNEL_PRESSURE:
                return True
            if slide and kind == CONTROL_CHANGE and len(m) > 1 and m[1] == CC_SLIDE:
                return True
        return False

    def to_dict(self) -> dict[str, object]:
        return {"slide": self.slide, "pressure": self.pressure, "bend_range": self.bend_range}

    @classmethod
    def from_dict(cls, data: object, where: str) -> MpeSettings:
        if not isinstance(data, Mapping):
            raise PresetError(f"{where}: field 'mpe': expected a mapping (slide:, pressure:, …)")
        unknown = sorted(str(k) for k in data if k not in _MPE_KEYS)
        if unknown:
            raise PresetError(
                f"{where}: unknown field 'mpe.{unknown[0]}' (known: {', '.join(_MPE_KEYS)})"
            )
        try:
            return cls(**{str(k): v for k, v in data.items()})
        except PresetError as err:
            raise PresetError(f"{where}: field {err}") from None


@dataclass
class Expression:
    """One member channel's per-note values, as last received (kept across its note-on)."""

    bend: int = BEND_CENTER  # 14-bit
    slide: int = SLIDE_START
    pressure: int = 0


@dataclass(frozen=True)
class ZoneChange:
    """What one message changed: each channel's bend range (channel → semitones; None = back
    to an ordinary channel), and whether the zones changed (a configuration message)."""

    bend_ranges: dict[int, float | None] = field(default_factory=dict)
    zones_changed: bool = False


class MpeZones:
    """The zones and every channel's MPE state, fed every message (see the module docstring).

    ``feed(msg)`` returns None for a message the tracker leaves to the instrument, or a
    ``ZoneChange`` for one it took (the configuration message, RPN 0 inside a zone: they must
    not reach an ordinary channel's own RPN handling, which allows ±24 at most).
    """

    def __init__(self, forced: str | None = None, member_range: float = MEMBER_BEND_RANGE) -> None:
        self.member_range = member_range
        self.members = [0, 0]  # lower, upper zone
        self.bend_range: list[float | None] = [None] * CHANNELS  # None: not in a zone
        self.expression = [Expression() for _ in range(CHANNELS)]
        self._rpn = [RPN_NULL] * CHANNELS
        self._warned: set[str] = set()
        if forced is not None:
            if forced not in FORCED:
                raise ValueError(f"--mpe {forced}: expected one of {', '.join(FORCED)}")
            lower, upper = FORCED[forced]
            self._configure(LOWER_MANAGER, lower)
            self._configure(UPPER_MANAGER, upper)

    @property
    def active(self) -> bool:
        return any(self.members)

    def member_channels(self, zone: int) -> list[int]:
        """Zone 0 (lower) or 1 (upper)'s member channels, nearest the manager first."""
        n = self.members[zone]
        return list(range(1, 1 + n)) if zone == 0 else list(range(14, 14 - n, -1))

    def zone_of(self, channel: int) -> int | None:
        """The zone (0 lower, 1 upper) ``channel`` belongs to as manager or member, else None."""
        for zone, manager in enumerate((LOWER_MANAGER, UPPER_MANAGER)):
            if self.members[zone] and (channel == manager or channel in self.member_channels(zone)):
                return zone
        return None

    def manager_of(self, zone: int) -> int:
        return (LOWER_MANAGER, UPPER_MANAGER)[zone]

    def is_manager(self, channel: int) -> bool:
        zone = self.zone_of(channel)
        return zone is not None and channel == self.manager_of(zone)

    def is_member(self, channel: int) -> bool:
        return self.zone_of(channel) is not None and not self.is_manager(channel)

    def feed(self, msg: Sequence[int]) -> ZoneChange | None:
        """Track one well-formed channel message; see the class docstring."""
        kind, channel = msg[0] & KIND_MASK, msg[0] & CHANNEL_MASK
        values = self.expression[channel]
        if kind == PITCH_BEND:
            values.bend = msg[1] | (msg[2] << 7)
        elif kind == CHANNEL_PRESSURE:
            values.pressure = msg[1]
        elif kind == CONTROL_CHANGE:
            cc, value = msg[1], msg[2]
            if cc == CC_SLIDE:
                values.slide = value
            elif cc in (CC_RPN_MSB, CC_RPN_LSB):
                msb, lsb = self._rpn[channel]
                self._rpn[channel] = (value, lsb) if cc == CC_RPN_MSB else (msb, value)
            elif cc in (CC_NRPN_MSB, CC_NRPN_LSB):
                self._rpn[channel] = RPN_NULL
            elif cc in (CC_DATA_MSB, CC_DATA_LSB):
                return self._data_entry(channel, cc, value)
        return None

    def _data_entry(self, channel: int, cc: int, value: int) -> ZoneChange | None:
        rpn = self._rpn[channel]
        if rpn == RPN_MPE and cc == CC_DATA_MSB and channel in (LOWER_MANAGER, UPPER_MANAGER):
            return self._configure(channel, min(value, MAX_MEMBERS))
        if rpn != RPN_BEND_RANGE or self.zone_of(channel) is None:
            return None
        range_now = self.bend_range[channel]
        assert range_now is not None
        semitones, cents = int(range_now), round(range_now % 1 * 100)
        if cc == CC_DATA_MSB:
            semitones, cents = value, 0
        else:
            cents = min(value, 99)
        wanted = semitones + cents / 100
        if wanted > MAX_BEND_RANGE:
            self._warn_once(
                "bend range",
                f"MPE: pitch-bend range {wanted:g} semitones (RPN 0, channel {channel + 1}) is "
                f"over {MAX_BEND_RANGE:g}; using {MAX_BEND_RANGE:g}",
            )
        wanted = min(wanted, MAX_BEND_RANGE)
        zone = self.zone_of(channel)
        assert zone is not None
        changed = (
            [channel] if self.is_manager(channel) else self.member_channels(zone)
        )  # RPN 0 on any member sets every member's range
        for c in changed:
            self.bend_range[c] = wanted
        return ZoneChange({c: wanted for c in changed})

    def _configure(self, manager: int, members: int) -> ZoneChange:
        """RPN 6 on ``manager``: its zone gets ``members`` channels (0: off); an overlapped older
        zone shrinks. Every channel whose zone role changed gets its default bend range."""
        zone = 0 if manager == LOWER_MANAGER else 1
        before = list(self.bend_range)
        self.members[zone] = members
        other = 1 - zone
        room = MAX_MEMBERS - 1 - members  # two managers share the 16 channels
        if self.members[other] > max(room, 0) and members:
            shrunk = max(room, 0)
            names = ("lower", "upper")
            self._warn_once(
                "overlap",
                f"MPE: the {names[zone]} zone of {members} members overlaps the {names[other]} "
                f"zone; the {names[other]} zone shrinks to {shrunk} members"
                + (" (off)" if shrunk == 0 else ""),
            )
            self.members[other] = shrunk
        self.bend_range = [None] * CHANNELS
        for z in (0, 1):
            if self.members[z]:
                self.bend_range[self.manager_of(z)] = MANAGER_BEND_RANGE
                for c in self.member_channels(z):
                    self.bend_range[c] = self.member_range
        # A configuration message resets the bend ranges of its own zone's channels too.
        touched = {c for c in range(CHANNELS) if before[c] != self.bend_range[c]}
        touched |= {c for c in range(CHANNELS) if self.zone_of(c) == zone}
        return ZoneChange({c: self.bend_range[c] for c in sorted(touched)}, zones_changed=True)

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning("%s", message)

    def describe(self) -> dict[str, object]:
        """The zones as the browser surface shows them (channels counted 1-16)."""
        zones = {}
        for zone, name in enumerate(("lower", "upper")):
            if self.members[zone]:
                zones[name] = {
                    "manager": self.manager_of(zone) + 1,
                    "members": [c + 1 for c in self.member_channels(zone)],
                }
        return zones
