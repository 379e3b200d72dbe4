"""Gain staging (levels.py): levelling, velocity curves, master gain and the master-bus limiter."""

from __future__ import annotations

import numpy as np
import pytest

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.notes.levels import (
    LIMIT,
    TARGET_PEAK,
    Limiter,
    MasterBus,
    level_gain,
    master_gain,
    normalize_peak,
    reference_pitch,
    velocity_exponent,
    velocity_gain,
)

RATE = 48000


def _tone(seconds: float, amplitude: float, hz: float = 261.6) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)[:, None]


def _run(limiter: Limiter, signal: np.ndarray, block: int) -> np.ndarray:
    """Feed ``signal`` block by block (the last block short), in place as the mixer does."""
    out = signal.copy()
    for start in range(0, len(out), block):
        chunk = out[start : start + block]
        limiter.process(chunk, chunk)
    return out


def test_levelling_brings_any_reference_to_the_target_peak():
    for reference in (0.003, 0.05, 0.7, 2.5):
        assert reference * level_gain(reference) == pytest.approx(TARGET_PEAK)
    assert level_gain(0.0) == 1.0  # a silent timbre is not blown up


def test_reference_pitch_is_middle_c_or_the_nearest():
    assert reference_pitch(list(range(24, 85))) == 60
    assert reference_pitch([62, 67, 72]) == 62
    assert reference_pitch([59, 61]) == 59  # ties go low


def test_velocity_curves_are_named_and_documented_ones():
    gm = velocity_exponent("gm")
    assert velocity_gain(127, gm) == 1.0
    assert 20 * np.log10(velocity_gain(64, gm)) == pytest.approx(40 * np.log10(64 / 127))
    assert velocity_gain(64, velocity_exponent("linear")) == pytest.approx(64 / 127)
    assert velocity_gain(1, velocity_exponent("fixed")) == 1.0
    with pytest.raises(GansynthError, match="choose one of gm, linear, soft, fixed"):
        velocity_exponent("loud")


@pytest.mark.parametrize("bad", [-61.0, 24.5, float("nan"), float("inf")])
def test_master_gain_outside_its_range_is_a_one_line_error(bad: float):
    with pytest.raises(GansynthError, match=r"--gain-db must be -60\.\.24 dB") as err:
        master_gain(bad)
    assert "\n" not in str(err.value)


def test_master_gain_in_range():
    assert master_gain(0.0) == 1.0
    assert master_gain(-60.0) == pytest.approx(0.001)
    assert master_gain(24.0) == pytest.approx(10**1.2)


def test_normalize_peak_scales_to_the_target_and_keeps_silence():
    audio = _tone(0.1, 0.2)[:, 0]
    assert np.abs(normalize_peak(audio)).max() == pytest.approx(1.0, rel=1e-6)
    assert np.abs(normalize_peak(audio, 0.5)).max() == pytest.approx(0.5, rel=1e-6)
    silence = np.zeros(100, dtype=np.float32)
    assert not normalize_peak(silence).any()


def test_limiter_is_idle_below_its_threshold_bit_for_bit():
    limiter = Limiter(RATE, max_block_frames=128)
    signal = _tone(0.5, 0.999 * LIMIT)
    out = _run(limiter, signal, 128)
    delay = limiter.delay_frames
    assert np.array_equal(out[delay:], signal[:-delay])
    assert not out[:delay].any()
    assert limiter.limited_frames == 0


@pytest.mark.parametrize("block", [128, 100, 7, 1024])
def test_limiter_output_never_exceeds_its_limit(block: int):
    """A 32-voice-like chord far over full scale, with a sudden onset, in any block size."""
    rng = np.random.default_rng(1)
    chord = sum(_tone(0.6, 0.5, hz) for hz in rng.uniform(100, 2000, 32))
    chord[: RATE // 10] = 0.0  # silence, then everything at once
    limiter = Limiter(RATE, max_block_frames=1024)
    out = _run(limiter, chord, block)
    assert np.abs(chord).max() > 5.0
    assert np.abs(out).max() <= LIMIT * (1 + 1e-6)
    assert limiter.limited_frames > 0


def test_limiter_recovers_after_a_peak():
    """After a loud burst, a quiet tone comes back to its own level (the release)."""
    loud, quiet = _tone(0.1, 4.0), _tone(1.0, 0.25)
    limiter = Limiter(RATE, max_block_frames=128)
    out = _run(limiter, np.concatenate([loud, quiet]), 128)
    tail = out[-RATE // 4 :]
    assert np.abs(tail).max() == pytest.approx(0.25, rel=1e-3)
    assert limiter.gain == 1.0


def test_limiter_gain_moves_without_steps():
    """The gain curve is continuous: the limited output of a constant (DC) input has no jumps
    bigger than one segment's share of the reduction."""
    limiter = Limiter(RATE, max_block_frames=128)
    dc = np.full((RATE // 5, 1), 0.5, dtype=np.float32)
    dc[RATE // 20 :] = 2.0
    out = _run(limiter, dc, 128)[:, 0]
    steps = np.abs(np.diff(out))
    jump_at = RATE // 20 + limiter.delay_frames - 1
    steps[jump_at] = 0.0  # the input's own step, scaled
    steps[: limiter.delay_frames] = 0.0  # the delay line's silence, then the input
    assert steps.max() < 0.05
    assert np.abs(out).max() <= LIMIT * (1 + 1e-6)


def test_limiter_refuses_a_block_larger_than_it_was_made_for():
    limiter = Limiter(RATE, max_block_frames=64)
    block = np.zeros((65, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="up to 64"):
        limiter.process(block, block)


def test_master_bus_applies_gain_then_limits_the_stereo_bus_in_place():
    bus = MasterBus(RATE, gain_db=12.0, max_block_frames=128)
    signal = np.hstack([_tone(0.3, 0.1), _tone(0.3, 0.05, hz=330.0)])  # left, right
    limiter = Limiter(RATE, channels=2, max_block_frames=128)
    out = _run(limiter, signal * np.float32(bus.gain), 128)
    block_out = signal.copy()
    for start in range(0, len(block_out), 128):
        bus.process(block_out[start : start + 128])
    assert np.array_equal(block_out, out)
    assert np.abs(block_out).max() == pytest.approx(0.1 * 10**0.6, rel=1e-3)  # below limit
