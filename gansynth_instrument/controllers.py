"""The MIDI controllers that only set a channel's state (``channels.Channel``) and tell the voices:
controller number → handler, a table built once. The engine (``engine.py``) looks a controller up
here after its own (pedal and channel modes first, then MIDI learn, morph, knobs, pad and
buttons, which a player may bind to any number).

A handler takes (channel state, voices, controller, value, frame) and returns a notice to give
once per channel, or None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gansynth_instrument.channels import RPN_BEND_RANGE, RPN_NULL, Channel
from gansynth_instrument.midi_spec import (
    CC_BANK_LSB,
    CC_BANK_MSB,
    CC_DATA_LSB,
    CC_DATA_MSB,
    CC_EXPRESSION,
    CC_NRPN_LSB,
    CC_NRPN_MSB,
    CC_PAN,
    CC_RPN_LSB,
    CC_RPN_MSB,
    CC_VOLUME,
    PEDAL_DOWN_MIN,
)
from gansynth_instrument.voices import Voices

Handler = Callable[[Channel, Voices, int, int, int], str | None]


def sustain(state: Channel, voices: Voices, cc: int, value: int, frame: int) -> None:
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
