"""Render at a loudness target (issue 29): the streaming BS.1770 meter against pyloudnorm and a 4×
oversampled peak, the gain rule (true-peak ceiling, silence and clicks left as they are), and the
render command's --loudness / --no-normalize on real MIDI files through the tiny model."""

from __future__ import annotations

import math
import re
from pathlib import Path

import mido
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from midi_writer import write_midi
from scipy.signal import resample_poly

from gansynth_instrument import cli
from gansynth_instrument.errors import GansynthError
from gansynth_instrument.offline.audio_files import stream_to_file
from gansynth_instrument.offline.loudness import (
    TRUE_PEAK_CEILING_DBTP,
    Loudness,
    LoudnessMeter,
    check_target,
    limit_scaled,
    normalising_gain,
    write_normalised,
)

RATE = 48000


def measured(audio: np.ndarray, block: int = 997) -> Loudness:
    """``audio`` through a LoudnessMeter in blocks of an odd size (not a hop's divisor)."""
    meter = LoudnessMeter(RATE, audio.shape[1])
    for start in range(0, len(audio), block):
        meter.add(audio[start : start + block])
    return meter.result()


def song_like(seconds: float = 12.0) -> np.ndarray:
    """Stereo tone bursts over quiet noise, with a silent stretch the gates leave out."""
    rng = np.random.default_rng(29)
    t = np.arange(round(seconds * RATE)) / RATE
    audio = 0.01 * rng.standard_normal((len(t), 2))
    for i, frequency in enumerate((110.0, 440.0, 3000.0)):
        burst = (t > 1 + 3 * i) & (t < 3 + 3 * i)
        audio[burst, i % 2] += 0.3 * np.sin(2 * np.pi * frequency * t[burst])
    audio[round(10 * RATE) :] = 0.0
    return audio.astype(np.float32)


def test_streamed_loudness_is_pyloudnorms_and_true_peak_is_4x_oversampled():
    audio = song_like()
    got = measured(audio)
    want = pyloudnorm.Meter(RATE).integrated_loudness(audio.astype(np.float64))
    assert got.lufs == pytest.approx(want, abs=0.02)
    oversampled = 20 * math.log10(np.abs(resample_poly(audio, 4, 1, axis=0)).max())
    assert got.true_peak_dbtp == pytest.approx(oversampled, abs=0.1)


def test_true_peak_sees_the_peak_between_samples():
    # A sine at a quarter of the rate, 45° off its samples: every sample is at 0.707 of its peak.
    t = np.arange(RATE)
    sine = 0.5 * np.sin(np.pi / 2 * t + np.pi / 4).astype(np.float32)
    got = measured(np.stack([sine, sine], axis=1))
    assert 20 * math.log10(np.abs(sine).max()) == pytest.approx(-9.0, abs=0.1)  # samples
    assert got.true_peak_dbtp == pytest.approx(20 * math.log10(0.5), abs=0.2)  # -6 dBTP


def test_gain_reaches_the_target_and_asks_for_the_limiter_past_the_ceiling():
    quiet = normalising_gain(Loudness(-30.0, -20.0, 60.0), -16.0)
    assert quiet.applied and quiet.gain_db == pytest.approx(14.0) and not quiet.limit
    peaky = normalising_gain(Loudness(-30.0, -5.0, 60.0), -16.0)
    assert peaky.applied and peaky.gain_db == pytest.approx(14.0) and peaky.limit


def written_at_target(tmp_path: Path, audio: np.ndarray, subtype: str = "FLOAT"):
    """``audio`` as a render's first pass (a float WAV), measured, then written at -16 LUFS as
    the render's second pass writes it; the written file and what was done."""
    mix, out = tmp_path / "mix.wav", tmp_path / "out.wav"
    sf.write(mix, audio, RATE, subtype="FLOAT")
    with stream_to_file(out, RATE, audio.shape[1], subtype) as writer:
        done = write_normalised(mix, writer, measured(audio), -16.0)
    return sf.read(out, dtype="float32", always_2d=True)[0], done


def test_a_peaky_mix_is_limited_to_the_target_under_the_true_peak_ceiling(tmp_path):
    # Loud clicks (drum-like hits) over a quiet bed: the gain to -16 LUFS would put the clicks
    # ~7 dB over the ceiling, and the gain that stops at the ceiling leaves the mix ~7 dB short.
    rng = np.random.default_rng(7)
    audio = 0.05 * rng.standard_normal((20 * RATE, 2))
    for start in range(RATE // 3, len(audio), 2 * RATE):
        audio[start : start + 24] += 0.9 * np.hanning(24)[:, None] * rng.choice([-1, 1])
    audio = audio.astype(np.float32)
    before = measured(audio)
    assert before.true_peak_dbtp + (-16.0 - before.lufs) > TRUE_PEAK_CEILING_DBTP + 5
    written, done = written_at_target(tmp_path, audio, "PCM_24")
    after = measured(written)
    assert after.lufs == pytest.approx(-16.0, abs=0.5)
    assert after.true_peak_dbtp <= TRUE_PEAK_CEILING_DBTP
    reference = pyloudnorm.Meter(RATE).integrated_loudness(written.astype(np.float64))
    assert reference == pytest.approx(-16.0, abs=0.5)
    assert done.limit and re.search(r"limited \d+\.\d+ % of frames by up to \d+\.\d dB", done.note)
    # The limiter only turns the mix down, by no more than the clicks need, and the bed between
    # clicks comes back to the full gain.
    gain = 10 ** (done.gain_db / 20)
    assert (np.abs(written) <= np.abs(audio) * gain + 1e-6).all()  # 24-bit steps: 1.2e-7
    bed = np.ones(len(audio), bool)
    for start in range(RATE // 3, len(audio), 2 * RATE):
        bed[start - RATE // 100 : start + RATE // 2] = False
    np.testing.assert_allclose(written[bed], audio[bed] * gain, rtol=0.02, atol=1e-4)


def test_a_mix_under_the_ceiling_is_written_exactly_at_the_gain(tmp_path):
    audio = song_like()
    written, done = written_at_target(tmp_path, audio)
    assert not done.limit
    np.testing.assert_array_equal(written, audio * np.float32(10 ** (done.gain_db / 20)))
    assert measured(written).lufs == pytest.approx(-16.0, abs=0.05)


def test_the_limiter_streams_the_same_whatever_the_block(tmp_path):
    rng = np.random.default_rng(3)
    audio = (0.05 * rng.standard_normal((3 * RATE, 2))).astype(np.float32)
    audio[::7919] = 0.95
    sf.write(tmp_path / "mix.wav", audio, RATE, subtype="FLOAT")
    outputs = []
    for block_frames in (997, 65536):
        blocks: list[np.ndarray] = []
        limit_scaled(tmp_path / "mix.wav", 4.0, blocks.append, block_frames=block_frames)
        outputs.append(np.concatenate(blocks))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert measured(outputs[0]).true_peak_dbtp <= TRUE_PEAK_CEILING_DBTP


@pytest.mark.parametrize(
    "audio",
    [np.zeros((5 * RATE, 2), np.float32), np.zeros((5 * RATE, 2), np.float32)],
    ids=["silence", "click"],
)
def test_silence_and_a_lone_click_are_left_as_they_are(audio, request):
    if request.node.callspec.id == "click":
        audio[RATE, :] = 0.001  # a quiet click: 60 dB of gain would reach the target
    result = normalising_gain(measured(audio), -16.0)
    assert not result.applied and result.gain_db == 0.0
    assert "written as it is" in result.note


@pytest.mark.parametrize("bad", [-41.0, -4.9, math.nan, math.inf])
def test_a_target_outside_the_range_is_a_one_line_error(bad):
    with pytest.raises(GansynthError, match=r"-40\.\.-5 LUFS") as err:
        check_target(bad)
    assert "\n" not in str(err.value)


# --- the render command (tiny exported model) ---------------------------------------------------


def run_render(tiny_model: Path, tmp_path: Path, midi: Path, out: Path, *extra) -> int:
    argv = ["render", midi, "-o", out, "--model", tiny_model, "--sample-rate", RATE]
    argv += ["--cache-dir", tmp_path / "notes", *extra]
    return cli.main([str(a) for a in argv])


def chords(path: Path, seconds: int = 6) -> Path:
    """Half-second triads on two channels for ``seconds``."""
    messages = []
    for step in range(seconds * 2):
        start = step / 2
        for channel, pitches in ((0, (60, 64, 67)), (1, (48, 55))):
            for pitch in pitches:
                messages.append((start, mido.Message("note_on", channel=channel, note=pitch)))
                off = mido.Message("note_off", channel=channel, note=pitch)
                messages.append((start + 0.45, off))
    return write_midi(path, messages)


def test_render_meets_the_loudness_target_and_says_what_it_did(tiny_model, tmp_path, capsys):
    midi = chords(tmp_path / "chords.mid")
    assert run_render(tiny_model, tmp_path, midi, tmp_path / "raw.wav", "--no-normalize") == 0
    raw_out = capsys.readouterr().out
    assert "not normalised (--no-normalize)" in raw_out and "limiter on 0.00 %" in raw_out
    for target in ("-16", "-23"):
        out = tmp_path / f"at{target}.wav"
        assert run_render(tiny_model, tmp_path, midi, out, "--loudness", target) == 0
        summary = capsys.readouterr().out
        audio = sf.read(out, dtype="float32")[0]
        lufs = pyloudnorm.Meter(RATE).integrated_loudness(audio.astype(np.float64))
        peak = 20 * math.log10(np.abs(resample_poly(audio, 4, 1, axis=0)).max())
        assert peak <= TRUE_PEAK_CEILING_DBTP + 0.05
        assert lufs == pytest.approx(float(target), abs=0.5)
        # No live-level limiter before the target's stage, so no share of it to report.
        assert "mix:" in summary and "LUFS" in summary and "limiter on" not in summary
        # The same mix, scaled: one gain for the whole file.
        raw = sf.read(tmp_path / "raw.wav", dtype="float32")[0]
        ratio = np.abs(audio).max() / np.abs(raw).max()
        np.testing.assert_allclose(audio, raw * ratio, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_render_of_silence_is_written_as_it_is_with_a_notice(tiny_model, tmp_path, capsys):
    # One very quiet note: far below the target, too little to measure.
    midi = write_midi(
        tmp_path / "tick.mid",
        [
            (0.0, mido.Message("note_on", note=60, velocity=1)),
            (0.05, mido.Message("note_off", note=60)),
        ],
    )
    assert run_render(tiny_model, tmp_path, midi, tmp_path / "raw.wav", "--no-normalize") == 0
    assert run_render(tiny_model, tmp_path, midi, tmp_path / "tick.wav") == 0
    captured = capsys.readouterr()
    assert "not normalised" in captured.err and "written as it is" in captured.err
    raw = sf.read(tmp_path / "raw.wav", dtype="float32")[0]
    np.testing.assert_array_equal(sf.read(tmp_path / "tick.wav", dtype="float32")[0], raw)


def test_render_of_a_silent_song_is_written_silent_with_a_notice(tiny_model, tmp_path, capsys):
    # A song whose one channel is turned down to nothing (CC7 0): digital silence, not a -inf
    # LUFS mix to be raised by the gain cap.
    midi = write_midi(
        tmp_path / "rest.mid",
        [
            (0.0, mido.Message("control_change", control=7, value=0)),
            (0.5, mido.Message("note_on", note=60, velocity=100)),
            (3.0, mido.Message("note_off", note=60)),
        ],
    )
    assert run_render(tiny_model, tmp_path, midi, tmp_path / "rest.wav") == 0
    captured = capsys.readouterr()
    assert "not normalised" in captured.err and "written as it is" in captured.err
    assert not sf.read(tmp_path / "rest.wav", dtype="float32")[0].any()


def test_render_refuses_a_loudness_outside_the_range_before_the_model_loads(tmp_path, capsys):
    midi = chords(tmp_path / "chords.mid", seconds=1)
    missing_model = tmp_path / "no-such-model.onnx"
    code = run_render(missing_model, tmp_path, midi, tmp_path / "x.wav", "--loudness", "0")
    err = capsys.readouterr().err.strip()
    assert code != 0 and "--loudness must be -40..-5 LUFS, got 0" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "x.wav").exists()


def test_a_normalised_render_keeps_the_peaks_the_master_limiter_would_have_cut(
    tiny_model, tmp_path, capsys
):
    """Render brings a song to its target in one stage: the mix is not first limited at live
    play's -1 dBFS and then turned down, which would flatten peaks the file has room for."""
    messages = [
        (0.0, mido.Message("control_change", channel=c, control=7, value=127)) for c in (0, 1)
    ]
    for step in range(12):
        for channel, pitches in ((0, (60, 64, 67, 72)), (1, (36, 48, 55, 62))):
            for pitch in pitches:
                on = mido.Message("note_on", channel=channel, note=pitch, velocity=127)
                messages.append((step / 2, on))
                messages.append(
                    (step / 2 + 0.45, mido.Message("note_off", channel=channel, note=pitch))
                )
    midi = write_midi(tmp_path / "loud.mid", messages)
    assert run_render(tiny_model, tmp_path, midi, tmp_path / "live.wav", "--no-normalize") == 0
    assert "limiter on 0.00 %" not in capsys.readouterr().out  # live play's level: limited
    quiet = tmp_path / "quiet.wav"
    assert run_render(tiny_model, tmp_path, midi, quiet, "--no-normalize", "--gain-db", "-30") == 0
    assert "limiter on 0.00 %" in capsys.readouterr().out  # 30 dB down: the whole mix, unlimited
    out = tmp_path / "at-23.wav"
    assert run_render(tiny_model, tmp_path, midi, out, "--loudness", "-23") == 0
    summary = capsys.readouterr().out
    assert "true-peak limited" not in summary and "limited" not in summary.split("normalised")[-1]
    audio = sf.read(out, dtype="float32")[0]
    raw = sf.read(quiet, dtype="float32")[0]
    ratio = np.abs(audio).max() / np.abs(raw).max()
    np.testing.assert_allclose(audio, raw * ratio, atol=1e-5)
