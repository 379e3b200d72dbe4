"""The note cache's process renderer: real worker processes (spawned) running the real tiny model.

What is checked: the same notes as the thread renderer, the disk store shared by both, no child
left after close() (or after Ctrl-C), a killed worker reported as a failed render and replaced,
a worker that cannot load the model reported in one line.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from gansynth_instrument.errors import CacheError
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.model.runtime import Model, load_model
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.note_queue import Priority

WAIT_S = 300  # only bounds a hang; no test measures time
OUTPUT_RATE = 48000
PITCHES = [24, 36, 60, 61, 84]  # more than one batch (DEFAULT_BATCH_SIZE 4)


def workers(name: str = "note-renderer") -> list[multiprocessing.process.BaseProcess]:
    """This process's renderer workers of that name (active_children also reaps finished
    ones): the niced one, or with "note-renderer-first" the one for new timbres' first notes."""
    return [p for p in multiprocessing.active_children() if p.name == name]


def renderers() -> list[multiprocessing.process.BaseProcess]:
    """Every renderer worker of this process."""
    return workers() + workers("note-renderer-first")


def gone(pid: int) -> bool:
    """No such process, not even a zombie waiting to be reaped."""
    return not Path(f"/proc/{pid}").exists()


def fill(model: Model, cache_dir: Path | None, renderer: str, seed: int = 1) -> dict:
    with NoteCache(model, OUTPUT_RATE, cache_dir, renderer=renderer) as cache:
        timbre = cache.request(random_latent(seed), PITCHES, Priority.WAITING)
        assert cache.wait(timbre, PITCHES, WAIT_S)
        return {p: cache.lookup(timbre, p) for p in PITCHES}


def test_process_renderer_fills_the_same_notes_as_the_thread_renderer(model: Model) -> None:
    in_thread = fill(model, None, "thread")
    in_process = fill(model, None, "process")
    for pitch in PITCHES:
        a, b = in_thread[pitch], in_process[pitch]
        # Same backend, same batches, same post-processing: bit-identical int16 and gain.
        np.testing.assert_array_equal(b.pcm, a.pcm)
        assert b.gain == a.gain
        assert (b.pitch, b.sample_rate) == (pitch, OUTPUT_RATE)
        assert b.pcm.dtype == np.int16 and not b.pcm.flags.writeable
        assert b.pcm.base is None  # its own memory (not a view of the batch): freed alone
    assert renderers() == []


def test_restart_reuses_the_disk_store_without_a_worker(model: Model, tmp_path: Path) -> None:
    first = fill(model, tmp_path, "process")
    assert len(list(tmp_path.glob("*.note"))) == len(PITCHES)
    with NoteCache(model, OUTPUT_RATE, tmp_path, renderer="process") as cache:
        timbre = cache.request(random_latent(1), PITCHES, Priority.WAITING)
        assert cache.wait(timbre, PITCHES, WAIT_S)
        assert renderers() == []  # every note came from the disk: no model loaded anywhere
        for pitch in PITCHES:
            np.testing.assert_array_equal(cache.lookup(timbre, pitch).pcm, first[pitch].pcm)
    in_thread = fill(model, tmp_path, "thread")  # one store, whichever renderer wrote it
    for pitch in PITCHES:
        assert in_thread[pitch].gain == first[pitch].gain


def test_close_ends_the_worker_even_mid_render(model: Model) -> None:
    with NoteCache(model, OUTPUT_RATE, None, renderer="process") as cache:
        timbre = cache.request(random_latent(2), [60, 61])
        assert cache.wait(timbre, [60, 61], WAIT_S)
        pids = [worker.pid for worker in renderers()]
        assert len(pids) == 2  # the niced worker, and the first-note worker it started
        cache.request(random_latent(3), model.pitches)  # keeps the worker busy at close()
        cache.request(random_latent(4), [60], Priority.WAITING)  # and the first-note worker
    assert renderers() == []
    assert all(gone(pid) for pid in pids)


def test_a_killed_worker_is_reported_and_replaced_while_lookups_go_on(
    model: Model, caplog: pytest.LogCaptureFixture
) -> None:
    z = random_latent(4)
    with NoteCache(model, OUTPUT_RATE, None, renderer="process") as cache:
        timbre = cache.request(z, [60])
        assert cache.wait(timbre, [60], WAIT_S)
        (worker,) = workers()  # the niced one: a note of z is ready, so it makes 61 too
        pid = worker.pid
        os.kill(pid, signal.SIGKILL)
        worker.join(WAIT_S)
        cache.request(z, [61], Priority.WAITING)
        with pytest.raises(CacheError, match=r"pitch 61 failed: the renderer process died"):
            cache.wait(timbre, [61], WAIT_S)
        assert cache.lookup(timbre, 60) is not None  # what was cached still plays
        assert cache.nearest(timbre, 61) is cache.lookup(timbre, 60)
        assert gone(pid)
        cache.request(z, [61], Priority.WAITING)  # asking again starts a new worker
        assert cache.wait(timbre, [61], WAIT_S)
        (replacement,) = workers()
        assert replacement.pid != pid
    assert "exit code -9" in caplog.text
    assert renderers() == []


def test_a_worker_that_keeps_dying_is_not_restarted_forever(model: Model) -> None:
    z = random_latent(8)
    with NoteCache(model, OUTPUT_RATE, None, renderer="process") as cache:
        timbre = cache.request(z, [], Priority.WAITING)
        errors = []
        for pitch in (60, 61, 62):  # each worker is killed as soon as it has loaded the model
            cache.request(z, [pitch])  # not WAITING: the niced worker makes it
            deadline = time.monotonic() + WAIT_S
            while not workers() and time.monotonic() < deadline:
                time.sleep(0.01)
            (worker,) = workers()
            os.kill(worker.pid, signal.SIGKILL)
            with pytest.raises(CacheError) as err:
                cache.wait(timbre, [pitch], WAIT_S)
            errors.append(str(err.value))
        assert "a new one renders the next batch" in errors[0]
        assert errors[-1].endswith("3 deaths in a row: not restarting it")
        cache.request(z, [63])
        with pytest.raises(CacheError, match="died 3 times in a row; not restarting it"):
            cache.wait(timbre, [63], WAIT_S)
        assert workers() == []


def test_a_worker_that_cannot_load_the_model_is_one_line(tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(tiny_model.read_bytes())
    model = load_model(path)
    path.write_bytes(b"not an onnx file")  # replaced after this process loaded it
    with NoteCache(model, OUTPUT_RATE, None, renderer="process") as cache:
        timbre = cache.request(random_latent(5), [60, 61], Priority.WAITING)
        with pytest.raises(CacheError) as err:
            cache.wait(timbre, [60], WAIT_S)
        message = str(err.value)
        assert "could not load the model" in message and str(path) in message
        assert "\n" not in message
    assert renderers() == []


def test_unknown_renderer_is_one_line(model: Model) -> None:
    with pytest.raises(CacheError, match="unknown renderer 'fork' \\(choose from thread, process"):
        NoteCache(model, OUTPUT_RATE, None, renderer="fork")


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from gansynth_instrument.notes.cache import NoteCache, Priority
    from gansynth_instrument.model.latent import random_latent
    from gansynth_instrument.model.runtime import load_model

    if __name__ == "__main__":
        model = load_model(sys.argv[1])
        with NoteCache(model, 48000, None, renderer="process") as cache:
            timbre = cache.request(random_latent(6), [60], Priority.WAITING)
            cache.wait(timbre, [60], 300)
            busy = cache.request(random_latent(7), model.pitches)  # for the niced worker
            cache.wait(busy, model.pitches[:1], 300)  # its first batch: it is up, and busy
            import multiprocessing
            pids = [worker.pid for worker in multiprocessing.active_children()]
            print(*pids, flush=True)
            time.sleep(300)
    """
)


def test_ctrl_c_closes_the_worker(tiny_model: Path, tmp_path: Path) -> None:
    script = tmp_path / "play_like.py"
    script.write_text(CTRL_C_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tiny_model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        worker_pids = [int(pid) for pid in proc.stdout.readline().split()]
        assert len(worker_pids) == 2  # the niced worker and the first-note worker
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group gets SIGINT
        _, stderr = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in stderr  # the parent stopped; the worker ignored SIGINT
    assert stderr.count("Traceback") == 1  # ...and printed nothing of its own
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in worker_pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # the parent reaped them; /proc may lag a moment
    assert all(gone(pid) for pid in worker_pids)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        if int(text.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_play_with_the_process_renderer_leaves_no_child_after_ctrl_c(
    jack_server, tiny_model: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "gansynth_instrument", "play", "--model", str(tiny_model)]
    command += ["--virtual-midi", f"keys-{os.getpid()}", "--cache-dir", str(tmp_path)]
    play = subprocess.Popen(
        [*command, "--renderer", "process"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        assert play.stdout.readline().startswith("model ")
        deadline = time.monotonic() + WAIT_S
        while not list(tmp_path.glob("*.note")) and time.monotonic() < deadline:
            time.sleep(0.1)  # notes of the bank's first preset arrive from the worker
        assert list(tmp_path.glob("*.note"))
        # The note renderer, the first-note renderer (it starts with the first note made), the
        # audio process, and multiprocessing's resource tracker.
        while len(spawned := children(play.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [p for p in spawned if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 3  # the two note renderers and the audio process
        os.killpg(play.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
        _, stderr = play.communicate(timeout=60)
    finally:
        play.kill()
    assert play.returncode == 0 and "Traceback" not in stderr, stderr
    assert all(gone(worker) for worker in workers)  # ended and reaped by play itself
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in spawned) and time.monotonic() < deadline:
        time.sleep(0.05)  # the resource tracker quits when play's end of its pipe closes
    assert all(gone(pid) for pid in spawned)
