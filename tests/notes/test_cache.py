"""Note cache against the real exported tiny model (real onnxruntime session, real files on disk).

Generator calls are counted, and held where a test needs a render "in progress", by wrapping the
real model object's ``generate``: every note still comes from the real model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soxr
from generate_spy import GenerateSpy

from gansynth_instrument.cli import main
from gansynth_instrument.errors import CacheError, ModelError
from gansynth_instrument.model.latent import latent_digest, random_latent
from gansynth_instrument.model.runtime import Model
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.disk_store import DiskStore, NoteKey
from gansynth_instrument.notes.levels import TARGET_PEAK
from gansynth_instrument.notes.note_queue import Priority
from gansynth_instrument.notes.timbre import Timbre, morph_steps
from gansynth_instrument.presets.preset_files import find_preset

WAIT_S = 300  # only bounds a hang; no test measures time
OUTPUT_RATE = 48000


def fill(model: Model, cache_dir: Path | None, pitches: list[int], seed: int = 1, **kw) -> dict:
    """Render ``pitches`` of one seed through a fresh cache; returns pitch → Note."""
    with NoteCache(model, kw.pop("sample_rate", OUTPUT_RATE), cache_dir, **kw) as cache:
        timbre = cache.request(random_latent(seed), pitches, Priority.WAITING)
        assert cache.wait(timbre, pitches, WAIT_S)
        return {p: cache.lookup(timbre, p) for p in pitches}


def test_notes_are_the_model_output_resampled_once(model: Model) -> None:
    z = random_latent(5)
    pitches = [36, 60, 84]  # one batch: each row must land on its own pitch
    notes = fill(model, None, pitches, seed=5)
    for pitch in pitches:
        expected = soxr.resample(model.generate(z[None], [pitch])[0], 16000, OUTPUT_RATE, "HQ")
        note = notes[pitch]
        assert (note.pitch, note.sample_rate) == (pitch, OUTPUT_RATE)
        assert note.pcm.dtype == np.int16 and not note.pcm.flags.writeable
        assert len(note.pcm) == len(expected) == 4 * OUTPUT_RATE
        assert np.abs(note.pcm).max() == 32767  # per-note scale: the peak uses the full range
        peak = np.abs(expected).max()
        made = note.to_float() / note.level  # played levelled; the model's own output before
        np.testing.assert_allclose(made, expected, atol=2 * peak / 32767 + 1e-4 * peak)


def test_restart_reuses_the_disk_cache_without_generating(
    model: Model, spy: GenerateSpy, tmp_path: Path
) -> None:
    pitches = [24, 48, 60, 61, 84]
    first = fill(model, tmp_path, pitches)
    assert sorted(spy.pitches()) == pitches
    assert len(list(tmp_path.glob("*.note"))) == len(pitches)

    spy.calls.clear()
    second = fill(model, tmp_path, pitches)
    assert spy.calls == []
    for pitch in pitches:
        np.testing.assert_array_equal(second[pitch].pcm, first[pitch].pcm)
        assert second[pitch].gain == first[pitch].gain
        assert not second[pitch].pcm.flags.writeable

    fill(model, tmp_path, [60], sample_rate=44100)  # the output rate is part of the key
    assert spy.pitches() == [60]


def test_corrupt_or_truncated_entries_are_rerendered_never_played(
    model: Model, spy: GenerateSpy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = fill(model, tmp_path, [40, 50, 60])
    timbre = latent_digest(random_latent(1))
    flipped = tmp_path / NoteKey(model.digest, timbre, 40, OUTPUT_RATE).file_name()
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit in the middle of the samples
    flipped.write_bytes(bytes(data))
    truncated = tmp_path / NoteKey(model.digest, timbre, 50, OUTPUT_RATE).file_name()
    truncated.write_bytes(truncated.read_bytes()[:1000])

    spy.calls.clear()
    with caplog.at_level(logging.WARNING, logger="gansynth_instrument.notes.cache"):
        second = fill(model, tmp_path, [40, 50, 60])
    assert sorted(spy.pitches()) == [40, 50]  # 60 came from disk
    assert sum("corrupt" in r.getMessage() for r in caplog.records) == 2
    for pitch in (40, 50):  # what is served is a fresh render, not the damaged bytes
        expected = first[pitch].to_float()
        tolerance = 4 * first[pitch].gain + 1e-4 * np.abs(expected).max()
        np.testing.assert_allclose(second[pitch].to_float(), expected, atol=tolerance)

    spy.calls.clear()
    fill(model, tmp_path, [40, 50, 60])  # the re-rendered entries were written back, valid
    assert spy.calls == []


def test_priorities_reorder_pending_work(model: Model, spy: GenerateSpy) -> None:
    z, z2 = random_latent(1), random_latent(2)
    with NoteCache(model, 16000, cache_dir=None, batch_size=2) as cache:
        spy.hold()
        try:
            timbre = cache.request(z, [24], Priority.BACKGROUND)
            assert spy.entered.wait(WAIT_S)  # the renderer is busy with 24; the rest queues up
            cache.request(z, [26, 40, 41, 50], Priority.BACKGROUND)
            timbre2 = cache.request(z2, [60, 72], Priority.BACKGROUND)
            cache.played(timbre, 41)  # 41 and its pending neighbour 40 become NEAR
            cache.request(z, [43], Priority.BACKGROUND)  # near the played 41: NEAR on arrival
            cache.request(z, [80], Priority.WAITING)
            cache.request(z2, [72], Priority.WAITING)  # re-requesting raises 72
            cache.request(z, [80], Priority.BACKGROUND)  # ... and never lowers 80
        finally:
            spy.release()
        assert cache.wait(timbre, [24, 26, 40, 41, 43, 50, 80], WAIT_S)
        assert cache.wait(timbre2, [60, 72], WAIT_S)
    # WAITING first, then NEAR (nearest the played pitch first), then the rest in request order;
    # a batch never mixes priority classes ([43] goes alone rather than with a BACKGROUND note).
    # z2's 72 is the first note of a timbre with nothing ready, played in silence: it jumps the
    # queue, ahead of z's 80 asked for earlier (once 24 is ready, 80 has a stand-in). A
    # timbre's first batch is one note with its reference note (middle C, levels.py), which
    # measures its level; z2's pending 60 (its reference) is kept from there, not made again.
    assert spy.calls == [[24, 60], [72, 60], [80], [41, 40], [43], [26, 50]]
    assert cache.progress(timbre2) == (2, 2)


def test_the_renderer_never_blocks_the_caller(
    model: Model, spy: GenerateSpy, tmp_path: Path
) -> None:
    z = random_latent(3)
    with NoteCache(model, OUTPUT_RATE, tmp_path) as cache:
        timbre = cache.request(z, [48], Priority.WAITING)
        assert cache.wait(timbre, [48], WAIT_S)
        spy.hold()
        results: dict[str, object] = {}
        try:
            cache.request(z, [64], Priority.WAITING)  # (60, the reference, is on disk)
            assert spy.entered.wait(WAIT_S)  # the renderer is inside generate, held there

            def caller() -> None:
                results["lookup 48"] = cache.lookup(timbre, 48)
                results["lookup 64"] = cache.lookup(timbre, 64)
                results["nearest 64"] = cache.nearest(timbre, 64)
                results["request"] = cache.request(z, [61, 62], Priority.BACKGROUND)
                cache.played(timbre, 61)
                results["progress"] = cache.progress(timbre)

            thread = threading.Thread(target=caller)
            thread.start()
            thread.join(WAIT_S)
            assert not thread.is_alive(), "a cache call waited for the render in progress"
            assert spy.calls[-1] == [64] and not spy.opened.is_set()  # still rendering 64
        finally:
            spy.release()
        assert results["lookup 48"] is not None and results["lookup 64"] is None
        assert results["nearest 64"] is results["lookup 48"]  # a stand-in while 64 renders
        assert results["request"] == timbre
        assert results["progress"] == (1, 4)
        assert cache.wait(timbre, [48, 64, 61, 62], WAIT_S)
        assert cache.progress(timbre) == (4, 4)
        assert cache.nearest(timbre, 66).pitch == 64 and cache.nearest(timbre, 54).pitch == 48


def test_unwritable_cache_dir_keeps_working_from_memory(
    model: Model, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # blocks even root, unlike chmod
    with caplog.at_level(logging.WARNING, logger="gansynth_instrument.notes.cache"):
        notes = fill(model, blocker / "notes", [36, 37])
        notes |= fill(model, blocker / "notes", [38])
    assert all(isinstance(n.gain, float) and len(n.pcm) == 4 * OUTPUT_RATE for n in notes.values())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "memory only" in w]) == 2  # once per cache, not per note
    assert all(str(blocker) in w for w in warnings)


_FULL_DISK_SCRIPT = """
import json, logging, resource, signal, sys
from pathlib import Path
from gansynth_instrument.notes.cache import NoteCache, Priority
from gansynth_instrument.model.latent import latent_digest, random_latent
from gansynth_instrument.model.runtime import load_model

logging.basicConfig(level=logging.WARNING)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-size write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, resource.RLIM_INFINITY))  # < one note file
with NoteCache(load_model(sys.argv[1]), 16000, Path(sys.argv[2])) as cache:
    timbre = cache.request(random_latent(1), [40, 41, 42], Priority.WAITING)
    ok = cache.wait(timbre, [40, 41, 42], 300)
    frames = [len(cache.lookup(timbre, p).pcm) for p in (40, 41, 42)]
    print(json.dumps({"ok": ok, "frames": frames}))
"""


def test_full_disk_keeps_working_from_memory(tiny_model: Path, tmp_path: Path) -> None:
    """A real write failure (file size limit → EFBIG), in a child process to spare pytest."""
    run = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_SCRIPT, str(tiny_model), str(tmp_path / "notes")],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"ok": True, "frames": [64000, 64000, 64000]}
    assert run.stderr.count("keeping notes in memory only") == 1
    assert list((tmp_path / "notes").iterdir()) == []  # no half-written entry or temp file left


def test_a_failed_render_is_reported_and_retried_on_request(
    model: Model, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = model.generate
    failures = [RuntimeError("backend out of memory")]  # the real model fails once, then works

    def generate(z: np.ndarray, pitches: np.ndarray) -> np.ndarray:
        if failures:
            raise failures.pop()
        return real(z, pitches)

    monkeypatch.setattr(model, "generate", generate)
    z = random_latent(1)
    with NoteCache(model, 16000, cache_dir=None) as cache:
        timbre = cache.request(z, [60], Priority.WAITING)
        with pytest.raises(CacheError, match="pitch 60 failed: backend out of memory"):
            cache.wait(timbre, [60], WAIT_S)
        assert cache.lookup(timbre, 60) is None
        cache.request(z, [60], Priority.WAITING)
        assert cache.wait(timbre, [60], WAIT_S)
    assert "rendering 1 note(s) failed" in caplog.text


def test_bad_requests_name_the_problem(model: Model) -> None:
    cache = NoteCache(model, OUTPUT_RATE, cache_dir=None)
    with pytest.raises(ModelError, match=r"pitch 23 .*24.84"):
        cache.request(random_latent(1), [60, 23])
    with pytest.raises(ModelError, match=r"shape \(255,\)"):
        cache.request(random_latent(1, 255), [60])
    with pytest.raises(CacheError, match="sample rate"):
        NoteCache(model, 0)


def test_cache_commands_warm_info_clear(
    model: Model,
    spy: GenerateSpy,
    tiny_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bank = tmp_path / "gig.yaml"
    bank.write_text(
        "name: gig\nprograms: {0: felt-keys}\nmorph: {path: [felt-keys, glass-bell], steps: 3}\n"
    )
    cache_dir = tmp_path / "notes"
    args = ["--cache-dir", str(cache_dir)]
    warm = ["cache", "warm", "--model", str(tiny_model), "--sample-rate", "16000", *args]
    assert main([*warm, "--bank", str(bank), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "preset glass-bell: timbre" in out and "seed 3: timbre" in out and "61 notes" in out

    # What the engine will play for this bank is all on disk: a fresh cache renders nothing.
    path = [
        Timbre.from_preset(find_preset(n), model.latent_size) for n in ("felt-keys", "glass-bell")
    ]
    latents = [t.latent for t in (*path, *morph_steps(path, 3))] + [random_latent(3)]
    with NoteCache(model, 16000, cache_dir) as cache:
        timbres = {cache.request(z, model.pitches) for z in latents}
        assert all(cache.wait(t, model.pitches, WAIT_S) for t in timbres)
    assert spy.calls == []
    entries = len(timbres) * len(model.pitches)
    assert len(list(cache_dir.glob("*.note"))) == entries

    assert main(["cache", "info", *args]) == 0
    info = capsys.readouterr().out
    assert (
        str(cache_dir) in info and f"{entries} notes (1 model(s), {len(timbres)} timbre(s))" in info
    )

    assert main(["cache", "clear", *args]) == 0
    assert f"removed {entries} files" in capsys.readouterr().out
    assert list(cache_dir.iterdir()) == []


def test_cache_command_errors_are_one_line(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_dir = tmp_path / "notes"
    warm = ["cache", "warm", "--model", str(tiny_model), "--cache-dir", str(cache_dir)]
    (tmp_path / "a-file").write_text("x")
    for argv, problem in (
        ([*warm, "no-such-preset"], "no-such-preset"),
        (warm, "nothing to warm"),
        (["cache", "info", "--cache-dir", str(tmp_path / "a-file")], "not a directory"),
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and problem in err[0], err
    assert not cache_dir.exists()  # nothing written by a failed command


def test_each_timbre_is_levelled_by_its_reference_note_kept_on_disk(
    model: Model, spy: GenerateSpy, tmp_path: Path
) -> None:
    """Two timbres of different loudness: each one's middle C plays at the target peak, other
    pitches keep their level relative to it; the reference goes to disk with every note, so a
    restart that reads one pitch neither renders nor reads the middle C again."""
    pitches = [36, 48]
    levelled = {}
    for seed in (1, 7):
        notes = fill(model, tmp_path, pitches, seed=seed)
        assert sorted(spy.pitches()) == [36, 48, 60]  # the reference note came with the batch
        spy.calls.clear()
        timbre = latent_digest(random_latent(seed))
        with NoteCache(model, OUTPUT_RATE, tmp_path) as cache:
            cache.request(random_latent(seed), [60])
            assert cache.wait(timbre, [60], WAIT_S)
            reference = cache.lookup(timbre, 60)
        assert spy.calls == []
        played = np.abs(reference.to_float()).max()
        assert played == pytest.approx(TARGET_PEAK, rel=1e-5)
        raw_peak = reference.gain * 32767
        for pitch in pitches:
            note = notes[pitch]
            assert note.reference == pytest.approx(raw_peak)
            played = np.abs(note.to_float()).max()
            assert played == pytest.approx(note.gain * 32767 * TARGET_PEAK / raw_peak, rel=1e-5)
        levelled[seed] = raw_peak
    assert levelled[1] != pytest.approx(levelled[7], rel=0.05)  # really two loudnesses

    spy.calls.clear()
    middle_c = NoteKey(model.digest, latent_digest(random_latent(1)), 60, OUTPUT_RATE)
    os.remove(tmp_path / middle_c.file_name())
    again = fill(model, tmp_path, [48])  # from disk, reference in its header
    assert spy.calls == []
    assert again[48].reference == pytest.approx(levelled[1])


def test_notes_stored_before_levelling_are_levelled_and_rewritten(
    model: Model, spy: GenerateSpy, tmp_path: Path
) -> None:
    fill(model, tmp_path, [48, 60], seed=3)
    timbre = latent_digest(random_latent(3))
    store = DiskStore(tmp_path)
    for pitch in (48, 60):  # as an older version wrote them: no reference in the header
        key = NoteKey(model.digest, timbre, pitch, OUTPUT_RATE)
        old = store.load(key)
        store.save(key, dataclasses.replace(old, reference=0.0))
        assert store.load(key).reference == 0.0
    spy.calls.clear()
    notes = fill(model, tmp_path, [48], seed=3)
    assert spy.calls == []  # the reference note was read from disk, not made again
    assert notes[48].reference > 0.0
    key = NoteKey(model.digest, timbre, 48, OUTPUT_RATE)
    assert store.load(key).reference == notes[48].reference  # written back with it
