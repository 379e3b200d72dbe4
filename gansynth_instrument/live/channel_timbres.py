"""What each MIDI channel plays for its new notes, for the engine (``engine.py``): a timbre (a
program's preset, a preset from outside the bank, a random draw; moved by the channel's knobs) or
a drum kit. A program the bank lacks plays a stand-in (``programs.py``), with one notice; each
program a channel is given, and what plays it, is a remark of the channel's report. A
switch leaves sounding notes as they are and asks for the pitches played last first, then the
rest.

Exploring: the random-timbre button draws a fresh timbre for the next notes (the pitches played
last are rendered first); the save button marks what the channel's last note played, knob
offsets included (the timbre it started with, or the step a knob or the morph moved it to while
it sounded), for ``take_save()``: the live status loop writes it, so no file is written on the
MIDI thread. What the next note would play can differ: a draw made after that note, or while
its note-on still waited for the draw before, has not been heard. Before any note on the
channel, the save keeps what its next note would play. Buttons act when pressed (a value ≥ 64
after one below: ``controllers.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from gansynth_instrument.live.channels import CHANNELS, DRUM_CHANNEL, Channel, gm_family
from gansynth_instrument.live.engine_report import MELODIC_DRUMS
from gansynth_instrument.live.note_supply import NoteSupply
from gansynth_instrument.live.programs import Programs
from gansynth_instrument.notes.timbre import DrumKit, Timbre
from gansynth_instrument.presets.explore import random_timbre
from gansynth_instrument.presets.timbre_space import TimbreSpace

RECENT_PITCHES = 16  # a new preset makes the last pitches played first


class ChannelTimbres:
    """Per channel: its timbre and kit (a kit plays instead of the timbre), and the pitches
    played last. ``lines``, ``channels`` and ``heard`` (per channel, the timbre its notes were
    last heard at) are the engine's (read here); ``focus`` is told the channel that switched,
    ``warn_once`` (key, message) gives a notice once per key; ``remark`` (channel, text) notes a
    program change and what plays it in the channel's report."""

    def __init__(
        self,
        timbre: Timbre,
        *,
        kit: DrumKit | None,
        drums: Timbre | DrumKit | None,
        programs: Programs,
        spaces: Sequence[TimbreSpace[Timbre] | None],
        lines: list[list[Timbre]],
        channels: list[Channel],
        heard: list[Timbre | None],
        random_cc: int | None,
        supply: NoteSupply,
        focus: Callable[[int], None],
        warn_once: Callable[[str, str], None],
        remark: Callable[[int, str], None],
    ) -> None:
        self.timbres: list[Timbre | None] = [
            space.set_base(timbre) if space is not None else timbre for space in spaces
        ]
        self.kits: list[DrumKit | None] = [kit] * CHANNELS
        self.kits[DRUM_CHANNEL] = drums if isinstance(drums, DrumKit) else None
        self.timbres[DRUM_CHANNEL] = drums if isinstance(drums, Timbre) else None
        self.recent: deque[int] = deque(maxlen=RECENT_PITCHES)
        self._programs, self._spaces = programs, spaces
        self._lines, self._channels, self._supply = lines, channels, supply
        self._heard, self._random_cc = heard, random_cc
        self._to_save: Timbre | None = None  # the save button's timbre, for take_save()
        self._focus, self._warn_once, self._remark = focus, warn_once, remark

    def current(self, channel: int) -> Timbre | None:
        """The one timbre ``channel`` plays now: the nearest step of a line that is moving, else
        its timbre (knob offsets included)."""
        position = self._channels[channel].morph_position
        if position is None:
            return self.timbres[channel]
        return self._lines[channel][round(position)]

    def program_change(self, channel: int, program: int) -> None:
        """Switch ``channel``'s timbre for new notes, in the bank its last bank select chose.
        Percussion (channel 10) keeps its drum preset."""
        state = self._channels[channel]
        state.program = program
        if channel == DRUM_CHANNEL:
            return
        timbre, notice = self._programs.resolve(state.bank, program)
        if timbre is None:
            return  # one preset, no bank: program changes have nothing to select
        if notice is not None:
            self._warn_once(f"bank {state.bank} program {program}", notice)
        bank = f"bank {state.bank} " if state.bank else ""
        stand_in = " (stand-in)" if notice is not None else ""
        self._remark(
            channel, f"{bank}program {program} ({gm_family(program)}) → {timbre.name}{stand_in}"
        )
        self.switch_to(channel, timbre)

    def random(self, channel: int) -> None:
        """A fresh random timbre for ``channel``'s next notes, with the level and envelope of
        what it plays."""
        current = self.current(channel)
        if current is not None:
            self.switch_to(channel, random_timbre(current))

    def press(self, channel: int, cc: int) -> None:
        """A button pressed on ``channel``: the random button draws a timbre, the save button
        marks what the channel played (see the module docstring)."""
        if cc == self._random_cc:
            self.random(channel)
        else:
            self._to_save = self._heard[channel] or self.current(channel)

    def take_save(self) -> Timbre | None:
        """The timbre the save button marked, once (then None)."""
        timbre, self._to_save = self._to_save, None
        return timbre

    def switch_to(self, channel: int, timbre: Timbre) -> None:
        """``channel``'s new notes play ``timbre`` (moved by its knobs); sounding ones keep
        theirs."""
        space = self._spaces[channel]
        timbre = space.set_base(timbre) if space is not None else timbre
        self._focus(channel)
        self.timbres[channel] = timbre
        self.kits[channel] = None
        self._channels[channel].morph_position = None
        self._supply.request_switch(timbre, list(reversed(self.recent)))

    def name(self, channel: int) -> str:
        """What ``channel`` plays, for the live view: its kit's name, else its timbre's."""
        kit, current = self.kits[channel], self.current(channel)
        if kit is not None:
            return kit.name
        return current.name if current is not None else "(percussion: not played)"

    def drums_summary(self) -> str:
        """What channel 10 plays, for a render's or the player's summary."""
        kit, timbre = self.kits[DRUM_CHANNEL], self.timbres[DRUM_CHANNEL]
        if kit is not None:
            return f"{kit.name} (a kit of {len(kit.hits)} drum sounds)"
        if timbre is not None:
            return f"{timbre.name} ({MELODIC_DRUMS})"
        return "not played"
