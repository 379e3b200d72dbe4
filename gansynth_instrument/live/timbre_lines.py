"""The lines a channel's notes move along, for the engine (``engine.py``): the bank's morph path,
a knob's stops, a pad edge (``timbre_space.TimbreSpace``).

- Morph (a position per channel): the path is quantised to ``steps`` timbres (slerp between
  neighbouring presets); a voice crossfades the two nearest *cached* steps around the knob
  position, so the knob acts within one audio block; the exact neighbours are requested at
  NEAR, the rest of their pitches behind.
- A timbre with ``loop`` set plays looping voices: a held note sustains (mixer.py) instead of
  ending after the note's 4 s. A morph step loops like the nearer of its two presets; a voice
  keeps the looping it started with while the morph moves.
- Timbre knobs and the XY pad: a knob's controller moves along the line of that knob's stops, a
  pad controller along the grid edge nearest the pad position; both are played exactly as the
  morph path is (two neighbouring timbres crossfaded, sounding notes following). A program
  change or a random draw becomes the new base the knobs move. Each channel keeps its own knob
  stops, pad position and the line it moves along.
"""

from __future__ import annotations

from collections.abc import Callable

from gansynth_instrument.live.channels import CHANNELS, Channel
from gansynth_instrument.live.note_supply import NoteSupply
from gansynth_instrument.midi_spec import DATA_MAX
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.timbre_space import TimbreSpace


class TimbreLines:
    """Per channel: its knob stops and pad position (a fork of ``space``) and the line it moves
    along (``lines``, shared with ``supply``); ``focus`` is told the channel that moved."""

    def __init__(
        self,
        path: list[Timbre],
        space: TimbreSpace[Timbre] | None,
        lines: list[list[Timbre]],
        channels: list[Channel],
        supply: NoteSupply,
        focus: Callable[[int], None],
    ) -> None:
        self.path = path
        self.spaces = [space.fork() if space is not None else None for _ in range(CHANNELS)]
        self._lines, self._channels = lines, channels
        self._supply, self._focus = supply, focus

    def move(self, channel: int, target: tuple[str, int], value: int, frame: int) -> bool:
        """Move ``channel``'s knob, morph or pad axis to controller ``value``; False when this
        instrument has no such target."""
        what, index = target
        space = self.spaces[channel]
        if what == "morph" and self.path:
            self.morph_to(channel, value, frame)
        elif what == "knob" and space is not None and index < len(space.knob_stop):
            self.turn(channel, index, value, frame)
        elif what == "pad" and space is not None and space.corners:
            self.glide(channel, *space.move_pad(index, value), frame)
        else:
            return False
        return True

    def turn(self, channel: int, knob: int, value: int, frame: int) -> None:
        space = self.spaces[channel]
        assert space is not None
        self.glide(channel, *space.turn(knob, value), frame)

    def move_pad(self, channel: int, axis: int, value: int, frame: int) -> None:
        space = self.spaces[channel]
        assert space is not None
        self.glide(channel, *space.move_pad(axis, value), frame)

    def morph_to(self, channel: int, value: int, frame: int) -> None:
        """Move ``channel`` along the morph path: its new and sounding notes take the position."""
        self.glide(channel, self.path, value / DATA_MAX * (len(self.path) - 1), frame)

    def glide(self, channel: int, line: list[Timbre], u: float, frame: int) -> None:
        """Move ``channel`` to position ``u`` (in steps) along ``line``: its new notes and
        sounding notes take the new position, crossfading the two steps around it."""
        state = self._channels[channel]
        if line is self._lines[channel] and u == state.morph_position:
            return
        self._lines[channel], state.morph_position = line, u
        self._focus(channel)
        self._supply.glide(channel, frame)
