"""The MIDI controllers that only set a channel's state (``channels.Channel``) and tell the voices:
controller number → handler, a table built once. The engine (``engine.py``) looks a controller up
here after its own (pedal and channel modes first, then MIDI learn, morph, knobs, pad and
buttons, which a player may bind to any number).

A handler takes (channel state, voices, controller, value, frame) and returns a notice to give
once per channel, or None.
"""

from __future__ import annotations

from collections.abc import Callable

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
