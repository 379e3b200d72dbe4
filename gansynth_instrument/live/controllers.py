"""MIDI controllers for the engine (``engine.py``): controller number → handler, in tables.

``ControlChanges.handle`` looks a controller up in order: pedal and channel modes (never learned
or bound), then a MIDI learn in progress, then what the ``Bindings`` name (morph, timbre knobs,
the pad's axes, the random and save buttons: a player may bind any number; the table is built
again when a learn binds), then ``CHANNEL_CONTROLLERS``, the controllers that only set a channel's
state (``channels.Channel``) and tell the voices. A channel-state handler takes (channel state,
voices, controller, value, frame) and returns a notice to give once per channel, or None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from gansynth_instrument.live.channels import CHANNELS, RPN_BEND_RANGE, RPN_NULL, Channel
from gansynth_instrument.live.note_supply import NoteSupply
from gansynth_instrument.live.timbre_lines import TimbreLines
from gansynth_instrument.live.voices import Voices
from gansynth_instrument.midi_spec import (
    CC_ALL_NOTES_OFF,
    CC_ALL_SOUND_OFF,
    CC_BANK_LSB,
    CC_BANK_MSB,
    CC_DATA_LSB,
    CC_DATA_MSB,
    CC_EXPRESSION,
    CC_NRPN_LSB,
    CC_NRPN_MSB,
    CC_PAN,
    CC_RESET_CONTROLLERS,
    CC_RPN_LSB,
    CC_RPN_MSB,
    CC_SUSTAIN,
    CC_VOLUME,
    DATA_MAX,
    PEDAL_DOWN_MIN,
)

logger = logging.getLogger(__name__)

Handler = Callable[[Channel, Voices, int, int, int], str | None]
CcHandler = Callable[[int, int, int, int], None]  # (channel, controller, value, frame)


def _sustain(state: Channel, voices: Voices, cc: int, value: int, frame: int) -> None:
    state.sustain = value >= PEDAL_DOWN_MIN
    voices.sustain(state.sustain, frame, state.number)


def _level(state: Channel, voices: Voices, cc: int, value: int, frame: int) -> None:
    if cc == CC_VOLUME:
        state.volume = value
    elif cc == CC_EXPRESSION:
        state.expression = value
    else:
        state.pan = value
    voices.channel_gain(state.number, *state.gains(), frame)


def _bank(state: Channel, voices: Voices, cc: int, value: int, frame: int) -> None:
    state.bank = value


def _bank_lsb(state: Channel, voices: Voices, cc: int, value: int, frame: int) -> None:
    state.bank_lsb = value


def _rpn(state: Channel, voices: Voices, cc: int, value: int, frame: int) -> None:
    msb, lsb = state.rpn
    state.rpn = (value, lsb) if cc == CC_RPN_MSB else (msb, value)


def _nrpn(state: Channel, voices: Voices, cc: int, value: int, frame: int) -> None:
    state.rpn = RPN_NULL  # data entry now goes to an NRPN, which nothing here has


def _data_entry(state: Channel, voices: Voices, cc: int, value: int, frame: int) -> str | None:
    notice = state.data_entry(cc, value)
    if state.rpn == RPN_BEND_RANGE:
        voices.bend(state.bend_semitones(), frame, state.number)
    return notice


CHANNEL_CONTROLLERS: dict[int, Handler] = {
    CC_VOLUME: _level,
    CC_EXPRESSION: _level,
    CC_PAN: _level,
    CC_BANK_MSB: _bank,
    CC_BANK_LSB: _bank_lsb,
    CC_RPN_MSB: _rpn,
    CC_RPN_LSB: _rpn,
    CC_NRPN_MSB: _nrpn,
    CC_NRPN_LSB: _nrpn,
    CC_DATA_MSB: _data_entry,
    CC_DATA_LSB: _data_entry,
}


class Bindings:
    """Which controller moves what: the morph, each timbre knob, the pad's axes, the random and
    save buttons. MIDI learn (``learn``) binds the next controller moved to the morph or to a
    knob; what it bound is handed once to whoever saves it (``take_learned``,
    ``take_learned_knob``: the live status loop), so no file is written on the MIDI thread."""

    def __init__(
        self,
        morph_cc: int | None,
        knob_ccs: Sequence[int],
        pad_ccs: Sequence[int],
        button_ccs: Sequence[int],
    ) -> None:
        self.morph_cc = morph_cc
        self.knob_of = {cc: k for k, cc in enumerate(knob_ccs)}
        self.pad_axis = {cc: axis for axis, cc in enumerate(pad_ccs)}
        self.buttons = tuple(button_ccs)
        self.learning = False
        self._learn_knob: int | None = None  # learn(knob=k): which knob the next CC binds
        self._learned: int | None = None  # bound by learn(), not yet taken by take_learned()
        self._learned_knob: tuple[int, int] | None = None  # (knob, cc), for take_learned_knob()

    def table(self) -> dict[int, str]:
        """Controller → what it moves ("morph", "knob", "pad", "button"); where two share a
        controller, the morph wins, then a knob, then the pad."""
        table = dict.fromkeys(self.buttons, "button")
        table.update(dict.fromkeys(self.pad_axis, "pad"))
        table.update(dict.fromkeys(self.knob_of, "knob"))
        if self.morph_cc is not None:
            table[self.morph_cc] = "morph"
        return table

    def learn(self, knob: int | None, *, has_knobs: bool, has_morph: bool) -> None:
        """Bind the morph (or knob ``knob``, 0-based) to the next controller moved."""
        if knob is not None:
            if not 0 <= knob < len(self.knob_of) or not has_knobs:
                raise ValueError(f"knob {knob + 1}: this instrument has {len(self.knob_of)}")
            self._learn_knob, self.learning = knob, True
        elif has_morph:
            self.learning = True

    def bind(self, cc: int) -> int | None:
        """End a learn: ``cc`` now moves the knob being learned (returned) or the morph (None)."""
        knob, self._learn_knob, self.learning = self._learn_knob, None, False
        if knob is None:
            self.morph_cc = self._learned = cc
        else:
            self.knob_of = {c: k for c, k in self.knob_of.items() if k != knob}
            self.knob_of[cc] = knob
            self._learned_knob = (knob, cc)
        return knob

    def take_learned(self) -> int | None:
        """The controller a learn bound to the morph, once (then None)."""
        cc, self._learned = self._learned, None
        return cc

    def take_learned_knob(self) -> tuple[int, int] | None:
        """(knob, controller) that a learn bound, once (then None)."""
        bound, self._learned_knob = self._learned_knob, None
        return bound


class ControlChanges:
    """One engine's control changes; see the module docstring. ``press`` is told (channel,
    controller) when a button is pressed (a value ≥ 64 after one below, as a pedal is);
    ``warn_once`` (key, message) gives a notice once per key."""

    def __init__(
        self,
        channels: list[Channel],
        voices: Voices,
        supply: NoteSupply,
        glides: TimbreLines,
        bindings: Bindings,
        *,
        press: Callable[[int, int], None],
        warn_once: Callable[[str, str], None],
    ) -> None:
        self._channels, self._voices = channels, voices
        self._supply, self._glides, self.bindings = supply, glides, bindings
        self._press, self._warn_once = press, warn_once
        self._buttons = [dict.fromkeys(bindings.buttons, 0) for _ in range(CHANNELS)]
        self._modes: dict[int, CcHandler] = {
            CC_SUSTAIN: self._sustain,
            CC_ALL_SOUND_OFF: self._sound_off,
            CC_RESET_CONTROLLERS: self._reset_controllers,
            **dict.fromkeys(range(CC_ALL_NOTES_OFF, DATA_MAX + 1), self._notes_off),
        }
        self._bound = self._bound_table()

    def handle(self, channel: int, cc: int, value: int, frame: int) -> bool:
        """Act on controller ``cc`` = ``value``; False when nothing here uses ``cc``."""
        handler = self._modes.get(cc)
        if handler is None:
            handler = self._bind if self.bindings.learning else self._bound.get(cc)
        if handler is not None:
            handler(channel, cc, value, frame)
            return True
        plain = CHANNEL_CONTROLLERS.get(cc)
        if plain is None:
            return False
        notice = plain(self._channels[channel], self._voices, cc, value, frame)
        if notice is not None:
            self._warn_once(f"bend range {channel}", notice)
        return True

    def _bound_table(self) -> dict[int, CcHandler]:
        handlers: dict[str, CcHandler] = {
            "morph": self._morph,
            "knob": self._knob,
            "pad": self._pad,
            "button": self._button,
        }
        return {cc: handlers[what] for cc, what in self.bindings.table().items()}

    def _sustain(self, channel: int, cc: int, value: int, frame: int) -> None:
        _sustain(self._channels[channel], self._voices, cc, value, frame)

    def _sound_off(self, channel: int, cc: int, value: int, frame: int) -> None:
        self._supply.drop_channel(channel)
        self._voices.all_sound_off(frame, channel)

    def _notes_off(self, channel: int, cc: int, value: int, frame: int) -> None:
        self._supply.drop_channel(channel)
        self._voices.all_notes_off(frame, channel)

    def _reset_controllers(self, channel: int, cc: int, value: int, frame: int) -> None:
        state = self._channels[channel]
        state.reset_controllers()
        self._voices.sustain(False, frame, channel)
        self._voices.bend(0.0, frame, channel)
        self._voices.channel_gain(channel, *state.gains(), frame)
        if state.morph_position is not None and self._glides.path:  # RP-015: mod wheel to 0
            self._glides.morph_to(channel, 0, frame)

    def _bind(self, channel: int, cc: int, value: int, frame: int) -> None:
        """A learn in progress binds ``cc`` to the morph or a knob, which it then moves."""
        knob = self.bindings.bind(cc)
        self._bound = self._bound_table()
        if knob is None:
            logger.info("morph bound to CC%d", cc)
            self._glides.morph_to(channel, value, frame)
        else:
            logger.info("knob %d bound to CC%d", knob + 1, cc)
            self._glides.turn(channel, knob, value, frame)

    def _morph(self, channel: int, cc: int, value: int, frame: int) -> None:
        self._glides.morph_to(channel, value, frame)

    def _knob(self, channel: int, cc: int, value: int, frame: int) -> None:
        self._glides.turn(channel, self.bindings.knob_of[cc], value, frame)

    def _pad(self, channel: int, cc: int, value: int, frame: int) -> None:
        self._glides.move_pad(channel, self.bindings.pad_axis[cc], value, frame)

    def _button(self, channel: int, cc: int, value: int, frame: int) -> None:
        buttons = self._buttons[channel]
        pressed = value >= PEDAL_DOWN_MIN > buttons[cc]
        buttons[cc] = value
        if pressed:
            self._press(channel, cc)
