"""Dataset tools on generated audio: pitch detection, chop, pad, make, from-soundfont, TFRecord."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from gansynth_instrument.cli import main
from gansynth_instrument.errors import DatasetError
from gansynth_instrument.training import dataset, pitch_labels, recordings, tfrecord

SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def tone(midi: float, seconds: float, rate: int, *, seed: int = 0, harmonics: int = 30):
    """A decaying harmonic tone with random partial phases and roll-off (peak 0.5)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    rolloff = rng.uniform(0.8, 2.0)
    x = sum(
        np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k**rolloff
        for k in range(1, harmonics + 1)
        if f0 * k < 0.45 * rate
    )
    x = x * np.exp(-t / rng.uniform(1.0, 4.0))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("midi", [24, 31, 38, 45, 52, 59, 66, 73, 80, 84])
def test_detect_pitch_within_10_cents(midi: int) -> None:
    detune = np.random.default_rng(midi).uniform(-0.3, 0.3)  # off the semitone grid
    detected = pitch_labels.detect_pitch(tone(midi + detune, 4.0, 16000, seed=midi))
    assert detected is not None
    assert abs(detected - (midi + detune)) * 100 < 10


def test_detect_pitch_none_for_noise_and_silence() -> None:
    noise = np.random.default_rng(1).standard_normal(64000).astype(np.float32) * 0.2
    assert pitch_labels.detect_pitch(noise) is None
    assert pitch_labels.detect_pitch(np.zeros(64000, np.float32)) is None


def _write(path: Path, audio: np.ndarray, rate: int, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.stack([audio] * channels, axis=1) if channels > 1 else audio
    soundfile.write(path, data, rate)


def test_chop_labels_by_pitch_and_drops_silence_and_noise(tmp_path: Path) -> None:
    rate = 44100
    noise = np.random.default_rng(2).standard_normal(4 * rate).astype(np.float32) * 0.2
    recording = np.concatenate(
        [
            tone(60, 4, rate, seed=1),
            np.zeros(4 * rate, np.float32),
            noise,
            tone(45, 4, rate, seed=2),
            tone(70, 1.5, rate, seed=3),  # a partial last window: dropped, as the course's
        ]
    )
    _write(tmp_path / "in" / "take one.wav", recording, rate, channels=2)
    summary = recordings.chop(tmp_path / "in", tmp_path / "out", hop_samples=64000)
    assert summary.kept == 2
    assert summary.dropped == {"silent (below -50 dBFS RMS)": 1, "unpitched": 1}
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["take-one-0_60.wav", "take-one-3_45.wav"]
    for name in names:
        info = soundfile.info(tmp_path / "out" / name)
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, 64000)
        assert info.subtype == "PCM_16"


def test_chop_hop_overlaps_and_fixed_pitch(tmp_path: Path) -> None:
    _write(tmp_path / "in" / "a.wav", tone(50, 8, 16000), 16000)
    summary = recordings.chop(tmp_path / "in", tmp_path / "out", hop_samples=16000, fixed_pitch=32)
    # 8 s with 1 s hop: windows starting at 0..4 s; the quiet tail still passes -50 dBFS
    assert summary.kept + sum(summary.dropped.values()) == 5
    assert {p.name.rsplit("_", 1)[1] for p in (tmp_path / "out").iterdir()} == {"32.wav"}


def test_pad_normalises_pads_and_trims(tmp_path: Path) -> None:
    _write(tmp_path / "in" / "kit" / "short.aiff", 0.1 * tone(57, 1.0, 48000), 48000)
    _write(tmp_path / "in" / "long.wav", tone(62, 6.0, 22050, seed=4), 22050)
    _write(tmp_path / "in" / "quiet.wav", np.full(16000, 1e-4, np.float32), 16000)
    summary = recordings.pad(tmp_path / "in", tmp_path / "out")
    assert summary.kept == 2 and summary.dropped == {"silent (below -50 dBFS RMS)": 1}
    short, _ = soundfile.read(tmp_path / "out" / "kit-short_57.wav")
    long, rate = soundfile.read(tmp_path / "out" / "long_62.wav")
    assert rate == 16000 and short.shape == long.shape == (64000,)
    assert np.abs(short).max() == pytest.approx(1.0, abs=1e-3)
    assert np.all(short[16100:] == 0)  # 1 s of sound, then zeros
    assert np.abs(long[-100:]).max() > 0  # cut, not padded


def _notes_dir(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    for i, pitch in enumerate((36, 48, 60, 72)):
        soundfile.write(
            notes / f"synth-{i}_{pitch}.wav", tone(pitch, 4, 16000, seed=i), 16000, "PCM_16"
        )
    return notes


def test_make_writes_ours_and_a_tfrecord_tensorflow_reads(tmp_path: Path) -> None:
    notes = _notes_dir(tmp_path)
    assert main(["dataset", "make", str(notes), str(tmp_path / "ds")]) == 0
    ds = dataset.read_dataset(tmp_path / "ds")
    assert list(ds.pitches) == [36, 48, 60, 72]
    assert ds.instruments == ("synth-0", "synth-1", "synth-2", "synth-3")
    wav, _ = soundfile.read(notes / "synth-2_60.wav", dtype="float32")
    assert np.abs(ds.note(2) - wav).max() < 1e-4
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["synth-1_48"]["pitch"] == 48 and meta["synth-1_48"]["instrument_str"] == "synth-1"

    import tensorflow as tf

    spec = {
        "audio": tf.io.FixedLenFeature([64000], tf.float32),
        "pitch": tf.io.FixedLenFeature([1], tf.int64),
        "velocity": tf.io.FixedLenFeature([1], tf.int64),
        "qualities": tf.io.FixedLenFeature([10], tf.int64),
        "instrument_source": tf.io.FixedLenFeature([1], tf.int64),
        "instrument_family": tf.io.FixedLenFeature([1], tf.int64),
        "note_str": tf.io.FixedLenFeature([], tf.string),
        "instrument_str": tf.io.FixedLenFeature([], tf.string),
    }
    records = [
        tf.io.parse_single_example(r, spec)
        for r in tf.data.TFRecordDataset(str(tmp_path / "ds" / "data.tfrecord"))
    ]
    assert [int(r["pitch"][0]) for r in records] == [36, 48, 60, 72]
    assert records[3]["instrument_str"].numpy() == b"synth-3"
    for row, record in enumerate(records):
        np.testing.assert_allclose(record["audio"].numpy(), ds.note(row), atol=1e-6)


def test_make_refuses_a_wrong_note_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    notes = _notes_dir(tmp_path)
    soundfile.write(notes / "bad_40.wav", np.zeros(32000, np.float32), 16000)
    assert main(["dataset", "make", str(notes), str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad_40.wav" in err and "64000" in err
    assert not (tmp_path / "ds").exists()
    with pytest.raises(DatasetError, match=r"no index\.json"):
        dataset.read_dataset(tmp_path)


def test_tfrecord_framing_and_negative_varints() -> None:
    """TensorFlow's own parser reads a hand-written record with negative int64 values back."""
    import tensorflow as tf

    record = tfrecord.example_bytes({"x": [-3, 2**40], "s": b"abc"})
    parsed = tf.io.parse_single_example(
        record,
        {"x": tf.io.FixedLenFeature([2], tf.int64), "s": tf.io.FixedLenFeature([], tf.string)},
    )
    assert list(parsed["x"].numpy()) == [-3, 2**40] and parsed["s"].numpy() == b"abc"
    framed = tfrecord.tfrecord_frame(record)
    assert len(framed) == len(record) + 16


def test_from_soundfont_renders_labelled_notes(tmp_path: Path, capsys) -> None:
    args = [str(SOUNDFONT), str(tmp_path / "ds"), "--programs", "0,24", "--velocities", "100"]
    assert main(["dataset", "from-soundfont", *args, "--pitch-range", "48-52"]) == 0
    assert "kept" in capsys.readouterr().out
    ds = dataset.read_dataset(tmp_path / "ds")
    assert len(ds.pitches) >= 8  # 10 rendered; a detuned sample may be dropped, not more
    assert set(ds.instruments) == {"program000-v100", "program024-v100"}
    peak = max(np.abs(ds.note(i)).max() for i in range(len(ds.pitches)))
    assert peak == pytest.approx(0.9, abs=0.01)
    for row, pitch in enumerate(ds.pitches):
        note = ds.note(row)
        assert abs(pitch_labels.detect_pitch(note) - pitch) < 0.5
        # held 3 s then released: louder in the hold than in the last half second
        assert pitch_labels.level_db(note[: 3 * 16000]) > pitch_labels.level_db(note[-8000:]) + 6


def test_from_soundfont_program_with_its_own_velocities(tmp_path: Path, capsys) -> None:
    """'24:75/50' renders program 24 at its own velocities, the others at --velocities."""
    args = [str(SOUNDFONT), str(tmp_path / "ds"), "--programs", "0,24:75/50"]
    assert main(["dataset", "from-soundfont", *args, "--pitch-range", "60-60"]) == 0
    ds = dataset.read_dataset(tmp_path / "ds")
    expected = {"program000-v100", "program000-v075", "program024-v075", "program024-v050"}
    assert set(ds.instruments) == expected
    bad = [str(SOUNDFONT), str(tmp_path / "bad"), "--programs", "0,24:200"]
    assert main(["dataset", "from-soundfont", *bad]) == 1
    assert "--programs 24:200: velocity" in capsys.readouterr().err


def test_from_soundfont_missing_file_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["dataset", "from-soundfont", str(tmp_path / "no.sf2"), str(tmp_path)]) == 1
    assert "no.sf2: no such file" in capsys.readouterr().err


def test_from_soundfont_keeps_sound_effects_at_every_key(tmp_path: Path, capsys) -> None:
    """GM's sound effects (120-127) do not follow the key: their notes are kept and labelled with
    the key played, as a soundfont maps them, while a pitched program's detuned notes still go."""
    args = [str(SOUNDFONT), str(tmp_path / "ds"), "--programs", "0,122", "--velocities", "100"]
    assert main(["dataset", "from-soundfont", *args, "--pitch-range", "48-52"]) == 0
    ds = dataset.read_dataset(tmp_path / "ds")
    effects = [row for row, name in enumerate(ds.instruments) if name == "program122-v100"]
    assert sorted(ds.pitches[row] for row in effects) == [48, 49, 50, 51, 52]
    for row in effects:
        detected = pitch_labels.detect_pitch(ds.note(row))
        assert detected is None or abs(detected - ds.pitches[row]) > 0.5  # not at its key
