"""Per-channel General MIDI state (channels.py) and program fallbacks (programs.py).

The figures are General MIDI's: CC7/CC11 at 40·log10(v/127) dB each, constant-power pan, pitch
bend range by RPN 0, RP-015's reset-all-controllers list.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gansynth_instrument.live.channels import (
    RPN_BEND_RANGE,
    Channel,
    channel_list,
    gm_family,
    level_gain,
    pan_gains,
)
from gansynth_instrument.live.programs import Programs
from gansynth_instrument.midi_spec import CC_DATA_LSB, CC_DATA_MSB
from gansynth_instrument.notes.timbre import Timbre


def test_volume_and_expression_follow_gm2s_curve_relative_to_the_defaults():
    assert level_gain(100, 127) == pytest.approx(1.0)
    # Each controller: 40·log10(v/127) dB; the defaults (100, 127) are the reference level.
    for volume, expression in ((127, 127), (64, 127), (100, 50), (1, 1)):
        db = 40 * math.log10(volume / 127) + 40 * math.log10(expression / 127)
        reference = 40 * math.log10(100 / 127)
        assert 20 * math.log10(level_gain(volume, expression)) == pytest.approx(db - reference)
    assert level_gain(0, 127) == 0.0


def test_pan_is_constant_power_with_unity_at_the_centre():
    assert pan_gains(64) == pytest.approx((1.0, 1.0))
    assert pan_gains(0) == pan_gains(1) == pytest.approx((math.sqrt(2), 0.0))
    assert pan_gains(127) == pytest.approx((0.0, math.sqrt(2)), abs=1e-12)
    for pan in range(128):
        left, right = pan_gains(pan)
        assert left**2 + right**2 == pytest.approx(2.0)


def test_bend_ends_are_exactly_the_range_and_rpn0_sets_it():
    ch = Channel(3)
    ch.bend = 16383
    assert ch.bend_semitones() == 2.0
    ch.bend = 0
    assert ch.bend_semitones() == -2.0
    ch.rpn = RPN_BEND_RANGE
    assert ch.data_entry(CC_DATA_MSB, 12) is None and ch.bend_range == 12.0
    assert ch.data_entry(CC_DATA_LSB, 50) is None and ch.bend_range == 12.5
    assert ch.bend_semitones() == -12.5
    notice = ch.data_entry(CC_DATA_MSB, 48)
    assert ch.bend_range == 24.0 and notice is not None
    assert "channel 4" in notice and "48" in notice and "24" in notice


def test_data_entry_without_rpn0_selected_changes_nothing():
    ch = Channel(0)
    assert ch.data_entry(CC_DATA_MSB, 12) is None and ch.bend_range == 2.0


def test_reset_all_controllers_keeps_volume_pan_program_and_range():
    ch = Channel(0, program=40, volume=30, pan=10, expression=20, bend=100, sustain=True)
    ch.bend_range = 7.0
    ch.rpn = RPN_BEND_RANGE
    ch.reset_controllers()
    assert (ch.program, ch.volume, ch.pan, ch.bend_range) == (40, 30, 10, 7.0)
    assert (ch.expression, ch.bend, ch.sustain, ch.rpn) == (127, 8192, False, (127, 127))


def test_channel_lists_count_from_one_and_refuse_what_does_not_exist():
    assert channel_list("1") == {0}
    assert channel_list("1,2, 10") == {0, 1, 9}
    assert channel_list("1-4,16") == {0, 1, 2, 3, 15}
    for bad, needle in (("0", "channel 0"), ("17", "channel 17"), ("x", "'x'"), ("4-2", "back")):
        with pytest.raises(ValueError, match=needle):
            channel_list(bad)


def _timbre(name: str) -> Timbre:
    return Timbre(name, np.ones(4, dtype=np.float32))


def test_programs_fall_back_within_the_gm_family_then_to_the_nearest():
    piano, organ, violin, soft = (_timbre(n) for n in ("piano", "organ", "violin", "soft"))
    programs = Programs({0: {0: piano, 19: organ, 40: violin}, 1: {0: soft}})
    assert programs.resolve(0, 19) == (organ, None)
    assert programs.resolve(1, 0) == (soft, None)
    timbre, notice = programs.resolve(0, 23)  # organ family: 19 is the only one
    assert timbre is organ and "program 23 (organ) has no preset" in notice
    timbre, notice = programs.resolve(0, 53)  # ensemble family empty: nearest program overall
    assert timbre is violin and "nearest program" in notice and gm_family(53) == "ensemble"
    timbre, notice = programs.resolve(1, 40)  # bank 1 lacks it: bank 0's
    assert timbre is violin and "bank 1 has no program 40" in notice
    timbre, notice = programs.resolve(5, 0)  # no bank 5
    assert timbre is piano and "bank 5 does not exist" in notice
    assert Programs({}).resolve(0, 3) == (None, None)
