"""Offline commands on the real tiny model: Magenta MIDI render, generate, interpolate, hallucinate.

MIDI files are real files written with mido; WAVs are read back with soundfile. Bad inputs must
give one line on stderr, exit status 1, and leave no file behind.
"""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from gansynth_instrument import cli
from gansynth_instrument.errors import MidiFileError, ModelError
from gansynth_instrument.model.latent import random_latent, slerp
from gansynth_instrument.notes.levels import LIMIT, TARGET_PEAK, db_to_gain
from gansynth_instrument.offline.magenta import (
    magenta_combine,
    magenta_instruments,
    magenta_note_latents,
    render_magenta,
)
from gansynth_instrument.offline.midi_file import midi_notes, read_midi
from gansynth_instrument.offline.render import (
    Hallucination,
    generate_in_batches,
    generate_notes,
    hallucinate,
    hallucination_envelope,
    hallucination_path,
    interpolate,
)
from gansynth_instrument.presets.preset_files import find_preset

SR = 16000


def write_midi(
    path: Path,
    notes: list[tuple[int, int, float, float]],
    *,
    ticks_per_beat: int = 480,
    tempo_changes: tuple[tuple[float, int], ...] = ((0.0, 500_000),),
) -> Path:
    """A type-1 MIDI file: tempo map on track 0, notes (pitch, velocity, start, end in beats)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    tempo_track, note_track = mido.MidiTrack(), mido.MidiTrack()
    mid.tracks += [tempo_track, note_track]
    last = 0
    for beat, tempo in tempo_changes:
        tick = round(beat * ticks_per_beat)
        tempo_track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=tick - last))
        last = tick
    events = []
    for pitch, velocity, start, end in notes:
        events.append((round(start * ticks_per_beat), 1, "note_on", pitch, velocity))
        events.append((round(end * ticks_per_beat), 0, "note_off", pitch, 0))
    last = 0
    for tick, _, kind, pitch, velocity in sorted(events):
        note_track.append(mido.Message(kind, note=pitch, velocity=velocity, time=tick - last))
        last = tick
    mid.save(path)
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1
    assert err.count("\n") == 1 and ": error: " in err, err
    for needle in needles:
        assert needle in err


# --- Magenta's MIDI mode -------------------------------------------------------------------------


def test_magenta_combine_matches_magentas_render(model, magenta_tiny: Path) -> None:
    """The fixture's own latents and note times through our model + combine → Magenta's WAV."""
    ref = np.load(magenta_tiny / "midi_render.npz")
    expected, sample_rate = sf.read(magenta_tiny / "midi_render.wav", dtype="float32")
    audio = generate_in_batches(model, ref["z_notes"], ref["pitches"])
    clip = magenta_combine(
        audio, ref["start_times"], ref["end_times"], ref["velocities"], model.sample_rate
    )
    assert sample_rate == model.sample_rate == SR
    assert clip.shape == expected.shape
    np.testing.assert_allclose(clip, expected, rtol=0, atol=1e-3 * np.abs(expected).max())


def test_magenta_render_end_to_end_with_magentas_seed(
    model, magenta_tiny: Path, tmp_path: Path
) -> None:
    """Reading the MIDI file and drawing timbres with Magenta's seed reproduces its whole render."""
    ref = np.load(magenta_tiny / "midi_render.npz")
    notes = midi_notes(read_midi(magenta_tiny / "midi_input.mid"))
    assert [n.pitch for n in notes] == ref["pitches"].tolist()
    assert [n.velocity for n in notes] == ref["velocities"].tolist()
    np.testing.assert_array_equal([n.start_s for n in notes], ref["start_times"])
    np.testing.assert_array_equal([n.end_s for n in notes], ref["end_times"])
    z, t = magenta_instruments(max(n.end_s for n in notes), 256, int(ref["seed"]), 6.0)
    np.testing.assert_array_equal(z, ref["z_instruments"])
    np.testing.assert_array_equal(t, ref["t_instruments"])
    np.testing.assert_allclose(
        magenta_note_latents(ref["start_times"], z, t), ref["z_notes"], rtol=0, atol=1e-6
    )

    out = tmp_path / "clip.wav"
    result = render_magenta(model, magenta_tiny / "midi_input.mid", out, seed=int(ref["seed"]))
    expected, _ = sf.read(magenta_tiny / "midi_render.wav", dtype="float32")
    got, sample_rate = sf.read(out, dtype="float32")
    assert sf.info(out).subtype == "FLOAT" and sample_rate == SR
    assert (result.notes, result.dropped, result.timbres) == (14, 0, 2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3 * np.abs(expected).max())


def test_magenta_render_of_a_short_file_does_not_crash(model, tmp_path: Path) -> None:
    """Magenta fails below 12 s (IndexError, then NaN latents); we use two timbres."""
    # 120 bpm: beat 1 = 0.5 s. Notes at 0.5-1.5 s and 2-5 s; pitch 30 and 90 are outside 36-84.
    midi = write_midi(
        tmp_path / "short.mid",
        [(60, 127, 1, 3), (67, 64, 4, 10), (30, 100, 0, 1), (90, 100, 0, 1)],
    )
    out = tmp_path / "short.wav"
    result = render_magenta(model, midi, out, seed=3)
    audio, _ = sf.read(out, dtype="float32")
    assert (result.notes, result.dropped, result.timbres) == (2, 2, 2)
    assert len(audio) == int(5.0 + 3.0) * SR
    assert np.all(np.isfinite(audio)) and audio.max() == pytest.approx(0.5)
    assert not audio[: int(0.5 * SR)].any()  # nothing before the first kept note
    # The 3 s note is cut to Magenta's 3 s hold + 0.3 s release: silence from 2 + 3.3 s on.
    assert not audio[int(5.3 * SR) + 1 :].any() and audio[int(5.2 * SR) : int(5.3 * SR)].any()


def test_midi_times_follow_the_tempo_map(tmp_path: Path) -> None:
    # 120 bpm for 2 beats (1 s), then 60 bpm: beat 3 is at 2 s, beat 4 at 3 s.
    midi = write_midi(
        tmp_path / "tempo.mid",
        [(60, 90, 1, 3), (62, 80, 3, 4)],
        tempo_changes=((0.0, 500_000), (2.0, 1_000_000)),
    )
    notes = midi_notes(read_midi(midi))
    assert [(n.pitch, n.start_s, n.end_s) for n in notes] == [(60, 0.5, 2.0), (62, 2.0, 3.0)]


# --- bad input: one line, exit 1, nothing written ---------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x20\x00\x90", "readable"),
        (b"this is not a MIDI file at all", "readable"),
        (None, "holds no notes"),
    ],
)
def test_bad_midi_file_is_one_line_and_writes_nothing(
    content: bytes | None,
    needle: str,
    tiny_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    midi = tmp_path / "bad.mid"
    if content is None:  # a valid file with a tempo and a program change but no notes
        mid = mido.MidiFile()
        mid.tracks.append(mido.MidiTrack([mido.Message("program_change", program=3)]))
        mid.save(midi)
    else:
        midi.write_bytes(content)
    out = tmp_path / "out.wav"
    code, _, err = run_cli(["render", midi, "-o", out, "--model", tiny_model, "--magenta"], capsys)
    assert_one_line_error(code, err, str(midi), needle)
    assert "()" not in err  # the reason is spelled out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mid"]
    with pytest.raises(MidiFileError):
        read_midi(midi)


def test_type_2_midi_is_refused(tmp_path: Path) -> None:
    mid = mido.MidiFile(type=2)
    mid.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=90)]))
    mid.save(tmp_path / "seq.mid")
    with pytest.raises(MidiFileError, match="type 2"):
        read_midi(tmp_path / "seq.mid")


def test_midi_without_notes_in_magentas_range(model, tmp_path: Path) -> None:
    midi = write_midi(tmp_path / "low.mid", [(30, 100, 0, 1)])
    with pytest.raises(MidiFileError, match="36-84"):
        render_magenta(model, midi, tmp_path / "low.wav")
    assert not (tmp_path / "low.wav").exists()


@pytest.mark.parametrize("where", ["missing-dir/out.wav", "a-dir"])
def test_unwritable_output_is_one_line(
    where: str, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-dir").mkdir()
    midi = write_midi(tmp_path / "song.mid", [(60, 100, 0, 1)])
    before = sorted(tmp_path.rglob("*"))
    code, _, err = run_cli(
        ["render", midi, "-o", tmp_path / where, "--model", tiny_model, "--magenta"], capsys
    )
    assert_one_line_error(code, err, str(tmp_path / where.split("/")[0]))
    assert sorted(tmp_path.rglob("*")) == before


def test_unknown_preset_is_one_line(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "notes"
    code, _, err = run_cli(
        ["generate", "--model", tiny_model, "--preset", "no-such-preset", "-o", out], capsys
    )
    assert_one_line_error(code, err, "unknown preset 'no-such-preset'", "felt-keys")
    assert not out.exists()
    code, _, err = run_cli(
        ["interpolate", "felt-keys", "nope", "--model", tiny_model, "-o", out], capsys
    )
    assert_one_line_error(code, err, "unknown preset 'nope'")
    assert not out.exists()


def test_unknown_pitch_lists_the_models_pitches(model, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"pitch 100 .*24.84"):
        generate_notes(model, tmp_path / "notes", pitches=[60, 100])
    with pytest.raises(ModelError, match=r"pitch 12 .*24.84"):
        interpolate(model, "1", "2", tmp_path / "grid", pitch=12)
    assert not list(tmp_path.iterdir())  # no output folder made


# --- generate, interpolate, hallucinate ---------------------------------------------------------


def test_generate_writes_the_models_notes(
    model, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        [
            "generate",
            "--model",
            tiny_model,
            "--pitches",
            "36,60",
            "--count",
            "3",
            "--seed",
            "5",
            "-o",
            tmp_path / "a",
        ],
        capsys,
    )
    assert code == 0 and out.count("wrote ") == 3 and "pitch 36" in out
    z = np.random.RandomState(5).normal(size=(3, model.latent_size)).astype(np.float32)
    expected = model.generate(z, [36, 60, 36])
    for i in range(3):
        audio, sample_rate = sf.read(tmp_path / "a" / f"generated_{i}.wav", dtype="float32")
        assert sample_rate == SR and audio.shape == (model.audio_length,)
        np.testing.assert_allclose(audio, expected[i], rtol=0, atol=1e-6)
    # Same seed, random pitches: reproducible and drawn from the model's pitches.
    first = generate_notes(model, tmp_path / "b", count=2, seed=9)
    again = generate_notes(model, tmp_path / "c", count=2, seed=9)
    assert [n.pitch for n in first] == [n.pitch for n in again]
    assert all(n.pitch in model.pitches for n in first)
    np.testing.assert_array_equal(sf.read(first[1].path)[0], sf.read(again[1].path)[0])


def test_generate_with_preset_uses_its_timbre(model, tmp_path: Path) -> None:
    written = generate_notes(model, tmp_path, pitches=[48, 72], preset="glass-bell")
    latent = find_preset("glass-bell").latent_vector(model.latent_size)
    expected = model.generate(np.stack([latent, latent]), [48, 72])
    for note, want in zip(written, expected, strict=True):
        np.testing.assert_allclose(sf.read(note.path, dtype="float32")[0], want, atol=1e-6)


def trimmed_cello(tmp_path: Path) -> str:
    """dark-cello trimmed 1 dB, as a file: a preset gain that a path between timbres blends."""
    path = tmp_path / "cello.yaml"
    path.write_text(find_preset("dark-cello").copy(name="cello", gain_db=-1.0).to_yaml())
    return str(path)


def test_interpolate_walks_the_slerp_path(model, tmp_path: Path) -> None:
    cello = trimmed_cello(tmp_path)
    written = interpolate(model, cello, "42", tmp_path, steps=3, pitch=55, gain_db=-12.0)
    assert [p.path.name for p in written] == ["interp_00.wav", "interp_01.wav", "interp_02.wav"]
    a = find_preset(cello).latent_vector(model.latent_size)
    b = random_latent(42, model.latent_size)
    latents = np.stack([a, slerp(a, b, 0.5), b])
    expected = model.generate(latents, [55, 55, 55])
    references = np.abs(model.generate(latents, [60, 60, 60])).max(axis=1)
    preset_db = [-1.0, -0.5, 0.0]  # the cello's -1 dB to the seed's 0, as a morph step blends
    for note, want, reference, db in zip(written, expected, references, preset_db, strict=True):
        # Each point levelled by its middle C's peak, then preset and master gain.
        staged = want * TARGET_PEAK / reference * db_to_gain(db) * db_to_gain(-12.0)
        assert np.abs(staged).max() < LIMIT  # the limiter leaves it as it is
        got = sf.read(note.path, dtype="float32")[0]
        # (the model's batches differ from these calls: float sums in another order)
        np.testing.assert_allclose(got, staged, rtol=1e-3, atol=1e-4 * TARGET_PEAK)
    assert len({round(float(r), 4) for r in references}) == 3  # three different levels undone


def test_interpolate_master_gain_and_limiter(
    model, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = interpolate(model, "3", "4", tmp_path / "quiet", steps=2, pitch=40, gain_db=-20.0)
    loud = interpolate(model, "3", "4", tmp_path / "loud", steps=2, pitch=40, gain_db=24.0)
    for q, d in zip(quiet, loud, strict=True):
        unlimited = sf.read(q.path, dtype="float32")[0] * db_to_gain(44.0)
        got = sf.read(d.path, dtype="float32")[0]
        assert np.abs(unlimited).max() > 2.0  # 44 dB louder would clip ...
        assert np.abs(got).max() <= LIMIT + 1e-6  # ... the limiter holds it below -1 dBFS
        assert np.abs(got).max() > 0.9 * LIMIT
    out = tmp_path / "bad"
    for value in ("24.5", "-61", "nan"):
        code, _, err = run_cli(
            ["interpolate", "3", "4", "--gain-db", value, "--model", tiny_model, "-o", out], capsys
        )
        assert_one_line_error(code, err, "--gain-db must be -60..24 dB")
    assert not out.exists()


def test_generate_normalize_writes_peak_normalised_notes(model, tmp_path: Path) -> None:
    raw = generate_notes(model, tmp_path / "raw", pitches=[48, 60], seed=3)
    normal = generate_notes(model, tmp_path / "normal", pitches=[48, 60], seed=3, normalize=True)
    for r, n in zip(raw, normal, strict=True):
        want, got = sf.read(r.path, dtype="float32")[0], sf.read(n.path, dtype="float32")[0]
        assert np.abs(got).max() == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(got, want / np.abs(want).max(), atol=1e-6)


def test_hallucination_path_has_no_duplicate_notes() -> None:
    keys = np.stack([random_latent(s, 8) for s in (1, 2, 3)])
    path = hallucination_path(keys, 2)
    assert len(path) == 3 + 2 * 2  # n + (n-1)·steps, as in the course
    np.testing.assert_array_equal(path[[0, 3, 6]], keys)
    assert len({row.tobytes() for row in path}) == len(path)
    np.testing.assert_allclose(path[1], slerp(keys[0], keys[1], 1 / 3), atol=1e-6)
    np.testing.assert_array_equal(hallucination_path(keys, 0), keys)


def test_hallucination_envelope_weights_share_the_note() -> None:
    env = hallucination_envelope(Hallucination(trim=1, attack=1, sustain=1, release=1), 64000)
    assert env.shape == (64000,)
    assert not env[:16000].any() and np.all(env[32000:48000] == 1.0)
    assert np.all(np.diff(env[16000:32000]) > 0) and np.all(np.diff(env[48000:]) < 0)


def test_hallucinate_writes_one_evolving_clip(
    model, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dream.wav"
    code, printed, _ = run_cli(
        [
            "hallucinate",
            "--model",
            tiny_model,
            "-o",
            out,
            "--notes",
            "3",
            "--steps",
            "1",
            "--spacing-s",
            "0.5",
            "--seed",
            "2",
            "--pitch",
            "48",
        ],
        capsys,
    )
    assert code == 0 and "5 notes" in printed
    audio, sample_rate = sf.read(out, dtype="float32")
    # 5 notes 0.5 s apart, the last one 4 s long: no 4× length, no padding.
    assert sample_rate == SR and len(audio) == 4 * 8000 + 64000
    assert 0.0 < np.abs(audio).max() <= LIMIT and np.all(np.isfinite(audio))
    path, count, duration_s = hallucinate(
        model, tmp_path / "through.wav", Hallucination(spacing_s=1.0), through=["felt-keys", "7"]
    )
    assert count == 2 + 5 and duration_s == pytest.approx(6 + 4)
    assert sf.info(path).frames == round(duration_s * SR)


def test_hallucinate_is_staged_like_the_instrument(model, tmp_path: Path) -> None:
    """Each note levelled by its timbre and at its keypoints' preset gain (the cello -1 dB, a seed
    0 dB: -0.5 dB between), enveloped, summed, master gain, and the limiter above -1 dBFS."""
    settings = Hallucination(interp_steps=1, spacing_s=1.0)
    cello = trimmed_cello(tmp_path)
    through = [cello, "7"]
    keys = np.stack([find_preset(cello).latent_vector(model.latent_size), random_latent(7, 256)])
    latents = hallucination_path(keys, 1)
    notes = model.generate(latents, [48] * 3)
    references = np.abs(model.generate(latents, [60] * 3)).max(axis=1)
    envelope = hallucination_envelope(settings, model.audio_length)
    clip = np.zeros(2 * SR + model.audio_length)
    preset_db = [-1.0, -0.5, 0.0]
    for i, (note, reference, db) in enumerate(zip(notes, references, preset_db, strict=True)):
        levelled = note * TARGET_PEAK / reference * db_to_gain(db)
        clip[i * SR : i * SR + len(note)] += levelled * envelope
    quiet, loud = tmp_path / "quiet.wav", tmp_path / "loud.wav"
    hallucinate(model, quiet, settings, pitch=48, through=through, gain_db=-12.0)
    hallucinate(model, loud, settings, pitch=48, through=through, gain_db=24.0)
    want = clip * db_to_gain(-12.0)
    assert np.abs(want).max() < LIMIT  # below the limit: the limiter leaves it as it is
    got = sf.read(quiet, dtype="float32")[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())
    assert np.abs(clip * db_to_gain(24.0)).max() > 1.0  # would clip ...
    got = sf.read(loud, dtype="float32")[0]
    assert 0.9 * LIMIT < np.abs(got).max() <= LIMIT + 1e-6  # ... but stays below -1 dBFS


def test_bad_hallucination_settings_are_one_line(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in (["--spacing-s", "0"], ["--attack", "-1"], ["--notes", "0"], ["--gain-db", "25"]):
        code, _, err = run_cli(
            ["hallucinate", "--model", tiny_model, "-o", tmp_path / "x.wav", *extra], capsys
        )
        assert_one_line_error(code, err, extra[0])
    assert not list(tmp_path.iterdir())
