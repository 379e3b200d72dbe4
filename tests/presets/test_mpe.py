"""The MPE zone tracker (mpe.py) and the bank's ``mpe:`` block: zones by the configuration message
(RPN 6) or forced, overlap, bend ranges (RPN 0, the 96-semitone clamp), values kept before a
note-on. The figures are MPE 1.0's (RP-053)."""

from __future__ import annotations

import logging

import pytest

from gansynth_instrument.errors import PresetError
from gansynth_instrument.midi_spec import BEND_CENTER, control_change
from gansynth_instrument.presets.bank_files import find_bank
from gansynth_instrument.presets.mpe import (
    MANAGER_BEND_RANGE,
    MAX_BEND_RANGE,
    MEMBER_BEND_RANGE,
    MpeSettings,
    MpeZones,
    target_of,
)


def rpn(channel: int, msb: int, lsb: int, value: int, cents: int | None = None) -> list[list[int]]:
    """CC101, CC100, CC6 (and CC38) on ``channel`` (0-based)."""
    msgs = [control_change(101, msb, channel), control_change(100, lsb, channel)]
    msgs.append(control_change(6, value, channel))
    if cents is not None:
        msgs.append(control_change(38, cents, channel))
    return msgs


def feed(zones: MpeZones, msgs: list[list[int]]) -> list[object]:
    return [zones.feed(m) for m in msgs]


def test_the_configuration_message_sets_a_lower_zone_and_its_bend_ranges():
    zones = MpeZones()
    assert not zones.active and zones.zone_of(1) is None
    changes = feed(zones, rpn(0, 0, 6, 5))
    assert changes[:2] == [None, None]  # the RPN selection alone changes nothing yet
    change = changes[2]
    assert change is not None and change.zones_changed
    assert zones.members == [5, 0]
    assert zones.member_channels(0) == [1, 2, 3, 4, 5]
    assert zones.is_manager(0) and all(zones.is_member(c) for c in range(1, 6))
    assert zones.zone_of(6) is None and zones.zone_of(15) is None
    assert change.bend_ranges[0] == MANAGER_BEND_RANGE
    assert all(change.bend_ranges[c] == MEMBER_BEND_RANGE for c in range(1, 6))
    assert zones.describe() == {"lower": {"manager": 1, "members": [2, 3, 4, 5, 6]}}


def test_an_upper_zone_counts_down_from_channel_15_and_zero_members_turns_it_off():
    zones = MpeZones()
    feed(zones, rpn(15, 0, 6, 3))
    assert zones.member_channels(1) == [14, 13, 12]
    assert zones.is_manager(15) and zones.is_member(12) and not zones.is_member(11)
    change = feed(zones, rpn(15, 0, 6, 0))[-1]
    assert change is not None and not zones.active
    assert change.bend_ranges == {12: None, 13: None, 14: None, 15: None}
    assert zones.zone_of(14) is None


def test_rpn6_on_a_channel_that_manages_no_zone_is_not_a_configuration():
    zones = MpeZones()
    assert feed(zones, rpn(3, 0, 6, 5))[-1] is None
    assert not zones.active


def test_overlapping_zones_the_newer_shrinks_the_older_with_one_notice(caplog):
    zones = MpeZones()
    with caplog.at_level(logging.WARNING):
        feed(zones, rpn(0, 0, 6, 15))
        feed(zones, rpn(15, 0, 6, 15))
        assert zones.members == [0, 15]  # the lower zone had no room left: off
        feed(zones, rpn(0, 0, 6, 10))
        assert zones.members == [10, 4]  # 10 + 4 members + 2 managers = 16 channels
    notices = [r.getMessage() for r in caplog.records if "overlaps" in r.getMessage()]
    assert len(notices) == 1
    assert "upper zone of 15 members overlaps the lower zone" in notices[0]
    channels = [zones.zone_of(c) for c in range(16)]
    assert channels.count(0) == 11 and channels.count(1) == 5


def test_forced_zones():
    assert MpeZones("lower").members == [15, 0]
    assert MpeZones("upper").members == [0, 15]
    both = MpeZones("both")
    assert both.members == [7, 7] and both.zone_of(7) == 0 and both.zone_of(8) == 1
    assert both.bend_range[3] == MEMBER_BEND_RANGE and both.bend_range[15] == MANAGER_BEND_RANGE
    with pytest.raises(ValueError, match="lower, upper, both"):
        MpeZones("middle")


def test_rpn0_on_a_member_sets_every_members_range_and_the_manager_keeps_its_own():
    zones = MpeZones("lower")
    change = feed(zones, rpn(4, 0, 0, 24, cents=50))[-1]
    assert change is not None and set(change.bend_ranges) == set(range(1, 16))
    assert all(zones.bend_range[c] == 24.5 for c in range(1, 16))
    assert zones.bend_range[0] == MANAGER_BEND_RANGE
    change = feed(zones, rpn(0, 0, 0, 12))[-1]
    assert change is not None and change.bend_ranges == {0: 12.0}


def test_a_bend_range_over_96_is_clamped_with_one_notice(caplog):
    zones = MpeZones("upper")
    with caplog.at_level(logging.WARNING):
        feed(zones, rpn(14, 0, 0, 120))
        feed(zones, rpn(13, 0, 0, 127))
    assert zones.bend_range[14] == MAX_BEND_RANGE
    notices = [r for r in caplog.records if "over 96" in r.getMessage()]
    assert len(notices) == 1


def test_rpn0_outside_a_zone_is_left_to_the_ordinary_channel():
    zones = MpeZones()
    assert feed(zones, rpn(3, 0, 0, 12))[-1] is None


def test_values_before_the_note_on_are_kept_per_channel():
    zones = MpeZones("lower")
    zones.feed([0xE2, 0, 0x50])  # channel 3: bend
    zones.feed(control_change(74, 100, 2))
    zones.feed([0xD2, 33])  # channel pressure
    values = zones.expression[2]
    assert (values.bend, values.slide, values.pressure) == (0x50 << 7, 100, 33)
    untouched = zones.expression[3]
    assert (untouched.bend, untouched.slide, untouched.pressure) == (BEND_CENTER, 64, 0)


def test_settings_targets_and_bad_values_are_one_line():
    assert MpeSettings().targets == ("knob1",)
    assert MpeSettings(slide="pad_x", pressure="knob2").targets == ("pad_x", "knob2")
    assert target_of("knob3") == ("knob", 2)
    assert target_of("pad_y") == ("pad", 1) and target_of("morph") == ("morph", 0)
    data = {"slide": "morph", "pressure": "level", "bend_range": 24}
    assert MpeSettings.from_dict(data, "b.yaml") == MpeSettings("morph", "level", 24.0)
    bad = [
        ({"slide": "knob9"}, "mpe.slide 'knob9': expected one of"),
        ({"pressure": "pitch"}, "mpe.pressure 'pitch'"),
        ({"slide": "knob2", "pressure": "knob2"}, "both move knob2"),
        ({"bend_range": 97}, "bend_range must be 0..96"),
        ({"bend_range": "wide"}, "expected semitones"),
        ({"slides": "knob1"}, "unknown field 'mpe.slides'"),
    ]
    for data, message in bad:
        with pytest.raises(PresetError, match=message) as err:
            MpeSettings.from_dict(data, "b.yaml")
        assert "\n" not in str(err.value) and str(err.value).startswith("b.yaml:")


def test_a_bank_whose_mpe_target_it_lacks_is_one_line_at_load(tmp_path):
    """A pad axis in a bank with no pad, the morph in one with no path: refused when the bank
    file loads, naming the file and the field; with the pad, the same block loads."""
    cases = [
        ("mpe: {slide: pad_x}\n", "field 'mpe.slide': pad_x needs a pad"),
        ("mpe: {slide: knob2, pressure: pad_y}\n", "field 'mpe.pressure': pad_y needs a pad"),
        ("mpe: {slide: morph}\n", "field 'mpe.slide': morph needs a morph path"),
    ]
    for i, (block, message) in enumerate(cases):
        path = tmp_path / f"b{i}.yaml"
        path.write_text(f"name: b{i}\nprograms: {{0: felt-keys}}\n{block}")
        with pytest.raises(PresetError, match=message) as err:
            find_bank(path, user_dir=tmp_path)
        assert "\n" not in str(err.value) and str(path) in str(err.value)
    path = tmp_path / "padded.yaml"
    pad = "pad: {corners: [felt-keys, glass-bell, slow-pad, dark-cello]}\n"
    path.write_text(f"name: padded\nprograms: {{0: felt-keys}}\n{pad}mpe: {{slide: pad_x}}\n")
    assert find_bank(path, user_dir=tmp_path).mpe == MpeSettings(slide="pad_x")
