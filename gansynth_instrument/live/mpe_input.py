"""MPE input: every MIDI message passes here on its way to the engine, so a zone (``mpe.py``)
turns each member channel's note into a note with its own timbre, bend and level.

On a member channel:
- CC74 (slide) moves the note's timbre along the bank's slide target (a timbre knob, the morph
  path, a pad axis) with ``Engine.move``: the channel's own knob, morph or pad, which the engine
  keeps per channel, so the other notes do not move and the mixer's glides keep it click-free.
- Channel pressure goes to the note's level (default) or to a second timbre target. As level it
  never takes the note below the level its velocity gave it: the level is the larger of the
  pressure's and the velocity's on the same curve, so a note starts at its velocity's level
  (pressure starts at 0, often 10 ms or more after the note-on) and pressing harder swells it.
  As a knob it moves from the knob's centre (pressure 0: the timbre unchanged) to its top.
- Pitch bend is the note's own, over the member range (±48 by default), plus the manager's.
- A note-on first puts the channel at the values kept since its last note (the slide and
  pressure sent before it), then starts, so those apply from its first sample; its slide line's
  other steps are asked for next, at the played pitch.
On the manager channel, program, bank, sustain, volume and the other controllers act on every
channel of the zone; its pitch bend adds to every member's. Outside a zone, and with no zone at
all, messages reach the engine unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from gansynth_instrument.live.engine import Engine
from gansynth_instrument.live.mixer import IMMEDIATE
from gansynth_instrument.midi_spec import (
    BEND_CENTER,
    CHANNEL_MASK,
    CHANNEL_PRESSURE,
    CONTROL_CHANGE,
    DATA_BYTES,
    DATA_MAX,
    KIND_MASK,
    NOTE_ON,
    PITCH_BEND,
    PROGRAM_CHANGE,
    STATUS_BIT,
    SYSTEM,
)
from gansynth_instrument.presets.mpe import (
    CC_SLIDE,
    CHANNELS,
    MpeSettings,
    MpeZones,
    ZoneChange,
    target_of,
)

KNOB_CENTRE = 64


def bend_semitones(bend: int, bend_range: float) -> float:
    """A 14-bit bend as semitones: both ends exactly ± the range (as ``channels.Channel``)."""
    span = BEND_CENTER - 1 if bend > BEND_CENTER else BEND_CENTER
    return (bend - BEND_CENTER) / span * bend_range


def pressure_level(pressure: int, velocity: int, exponent: float) -> float:
    """A member note's level factor: the larger of pressure's and velocity's level on the
    velocity curve, relative to velocity's (which the note's amplitude already has), so 1.0
    until pressure passes the velocity."""
    struck = max(velocity, 1) / DATA_MAX
    return max(pressure / DATA_MAX, struck) ** exponent / struck**exponent


def pressure_knob(pressure: int) -> int:
    """Pressure 0..127 → a knob's controller value, from its centre (unchanged) to its top."""
    return KNOB_CENTRE + round(pressure * (DATA_MAX - KNOB_CENTRE) / DATA_MAX)


class MpeInput:
    """The engine's MIDI entry point with MPE zones in front; see the module docstring.
    ``forced`` ("lower", "upper", "both") sets zones for a controller that never sends the
    MPE Configuration Message. Not thread-safe: called where ``Engine.handle`` is."""

    def __init__(
        self, engine: Engine, settings: MpeSettings | None = None, forced: str | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings or MpeSettings()
        self.slide = target_of(self.settings.slide)
        self.pressure = (
            None if self.settings.pressure == "level" else target_of(self.settings.pressure)
        )
        # Each channel's bend range outside a zone: what it had when a zone took it.
        self._ordinary = [c.bend_range for c in engine.channels]
        self._velocity = [DATA_MAX] * CHANNELS  # each channel's last note-on velocity
        self.zones = MpeZones(member_range=self.settings.bend_range)
        if forced is not None:
            self.zones = MpeZones(forced, member_range=self.settings.bend_range)
            self._apply(ZoneChange({c: r for c, r in enumerate(self.zones.bend_range)}))

    def handle(self, msg: Sequence[int], frame: int = IMMEDIATE) -> None:
        """One raw MIDI message, as ``Engine.handle`` takes it."""
        if not msg or not STATUS_BIT <= msg[0] < SYSTEM:
            self.engine.handle(msg, frame)  # the engine counts what it cannot use
            return
        kind, channel = msg[0] & KIND_MASK, msg[0] & CHANNEL_MASK
        data = DATA_BYTES[kind]
        if len(msg) < 1 + data or any(not 0 <= b <= DATA_MAX for b in msg[1 : 1 + data]):
            self.engine.handle(msg, frame)
            return
        change = self.zones.feed(msg)
        if change is not None:
            self._apply(change, frame)
        elif self.zones.is_member(channel):
            self._member(kind, channel, msg, frame)
        elif self.zones.is_manager(channel):
            self._manager(kind, channel, msg, frame)
        else:
            self.engine.handle(msg, frame)

    def _member(self, kind: int, channel: int, msg: Sequence[int], frame: int) -> None:
        values = self.zones.expression[channel]
        if kind == CONTROL_CHANGE and msg[1] == CC_SLIDE:
            self.engine.move(channel, self.slide, values.slide, frame)
        elif kind == CHANNEL_PRESSURE:
            self._press(channel, frame)
        elif kind == PITCH_BEND:
            self._bend(channel, frame)
        elif kind == NOTE_ON and msg[2] > 0:
            self._velocity[channel] = msg[2]
            self._press(channel, frame)
            self.engine.move(channel, self.slide, values.slide, frame)
            self.engine.handle(msg, frame)
            self.engine.request_line(channel, msg[1])
        else:
            self.engine.handle(msg, frame)

    def _manager(self, kind: int, channel: int, msg: Sequence[int], frame: int) -> None:
        if kind == PITCH_BEND:
            zone = self.zones.zone_of(channel)
            assert zone is not None
            for c in (channel, *self.zones.member_channels(zone)):
                self._bend(c, frame)
        elif kind in (CONTROL_CHANGE, PROGRAM_CHANGE):
            zone = self.zones.zone_of(channel)
            assert zone is not None
            for c in (channel, *self.zones.member_channels(zone)):
                self.engine.handle([kind | c, *msg[1:]], frame)
        else:
            self.engine.handle(msg, frame)

    def _press(self, channel: int, frame: int) -> None:
        pressure = self.zones.expression[channel].pressure
        if self.pressure is None:
            level = pressure_level(pressure, self._velocity[channel], self.engine.velocity_exponent)
            if level != self.engine.channels[channel].note_level:
                self.engine.set_level(channel, level, frame)
        else:
            value = pressure if self.pressure[0] != "knob" else pressure_knob(pressure)
            self.engine.move(channel, self.pressure, value, frame)

    def _bend(self, channel: int, frame: int) -> None:
        """``channel``'s voices to its own bend plus (a member's) its manager's."""
        state = self.engine.channels[channel]
        state.bend = self.zones.expression[channel].bend
        semitones = state.bend_semitones()
        zone = self.zones.zone_of(channel)
        if zone is not None and self.zones.is_member(channel):
            manager = self.engine.channels[self.zones.manager_of(zone)]
            semitones += manager.bend_semitones()
        self.engine.voices.bend(semitones, frame, channel)

    def _apply(self, change: ZoneChange, frame: int = IMMEDIATE) -> None:
        """New bend ranges (a channel leaving its zone gets its ordinary one back, and its
        level); bends re-sent at the new ranges."""
        for channel, semitones in change.bend_ranges.items():
            state = self.engine.channels[channel]
            state.bend_range = self._ordinary[channel] if semitones is None else semitones
            if semitones is None and state.note_level != 1.0:
                self.engine.set_level(channel, 1.0, frame)
        bent = set(change.bend_ranges)
        for channel in change.bend_ranges:  # a manager's bend is in each of its members'
            zone = self.zones.zone_of(channel)
            if zone is not None and self.zones.is_manager(channel):
                bent.update(self.zones.member_channels(zone))
        for channel in sorted(bent):
            if self._bent(channel):  # no bend: nothing to re-send
                self._bend(channel, frame)

    def _bent(self, channel: int) -> bool:
        """Whether ``channel`` or (a member) its manager is off its bend's centre."""
        zone = self.zones.zone_of(channel)
        channels = [channel] if zone is None else [channel, self.zones.manager_of(zone)]
        return any(self.zones.expression[c].bend != BEND_CENTER for c in channels)

    def state(self) -> dict[str, object]:
        """The zones and every sounding member note's slide, pressure and bend (semitones), for
        the browser surface."""
        notes = []
        for _, (channel, pitch) in self.engine.voices.sounding():
            if self.zones.is_member(channel):
                values = self.zones.expression[channel]
                bend = self.engine.channels[channel].bend_semitones()
                notes.append(
                    {
                        "channel": channel + 1,
                        "pitch": pitch,
                        "slide": values.slide,
                        "pressure": values.pressure,
                        "bend": round(bend, 2),
                    }
                )
        return {
            "zones": self.zones.describe(),
            "slide": self.settings.slide,
            "pressure": self.settings.pressure,
            "notes": notes,
        }
