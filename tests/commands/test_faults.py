"""Faults during play and long jobs: each one handled as the instrument promises.

- The disk cache unwritable: the live player keeps playing rendered notes from memory, and says
  so once (the cache's own behaviour, full disk included, is in tests/notes/test_cache.py;
  corrupt or truncated entries being re-rendered, never played, too).
- The JACK server stopping under ``play``: one clear line, no hang, exit status 1.
- The JACK server freezing under ``play`` (SIGSTOP: the stream stays 'active' but gets no
  callback): noticed within seconds, one clear line, exit status 1, no hang on the way out.
- The audio process killed mid-note (SIGKILL): one line naming it, exit status 1, no shared
  memory left behind (/dev/shm, memory files) and no child process left running.
- A MIDI input port going away and coming back: a message each time, and reconnected.
- Ctrl-C (SIGINT) during ``cache warm`` and ``export``: exit 130, no partial or temporary file;
  every note file left by the warm is whole (its checksum holds).
- Ctrl-C inside the import of a C-extension package (onnx, onnxruntime): held back until the
  import is whole, then exit 130.

Everything is real: the tiny model, jackd, PortAudio, rtmidi, the CLI in a child process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import onnx
import pytest
from jackrig import JackServer, MidiSender, MidiSource, midi_input_port
from live.test_midi import Inbox
from live.test_player import MATCH, match, note, playing, record

from gansynth_instrument.live.midi import MidiInput
from gansynth_instrument.presets.preset_files import find_preset

WAIT_S = 120.0  # only bounds a hang


def test_unwritable_cache_dir_keeps_the_player_playing_from_memory(
    jack_server: JackServer, tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from gansynth_instrument.model.runtime import load_model

    blocker = tmp_path / "a-file"
    blocker.write_text("the cache dir's parent is a file: no process can write there")
    with (
        caplog.at_level(logging.WARNING, logger="gansynth_instrument.notes.cache"),
        playing(load_model(tiny_model), blocker / "notes", preset=find_preset("felt-keys")) as (
            player,
            sender,
        ),
    ):
        timbre = player.engine.timbre
        expected = note(player, timbre, 60)
        player.cache.wait(timbre.key, player.engine.pitches, WAIT_S)  # every save fails
        captured = record(sender, [(0.05, [0x90, 60, 110]), (0.5, [0x80, 60, 0])], seconds=0.8)
    assert match(captured[round(0.1 * 48000) : round(0.4 * 48000)], expected)[0] > MATCH
    warnings = [r.getMessage() for r in caplog.records if "memory only" in r.getMessage()]
    assert len(warnings) == 1 and str(blocker) in warnings[0]


def _start_play(argv: list[str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "gansynth_instrument", "play", *argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(stream, needle: str, timeout_s: float = WAIT_S) -> list[str]:
    """Lines read from ``stream`` up to the first holding ``needle`` (fails on timeout/EOF)."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in stream:
            lines.append(line)
            if needle in line:
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout_s), f"no {needle!r} in {timeout_s} s: {lines}"
    assert lines and needle in lines[-1], lines
    return lines


def test_jack_server_stopping_under_play_is_one_line_and_a_clean_exit(
    tiny_model: Path, tmp_path: Path
) -> None:
    with JackServer(realtime=True, sync=True) as server:  # private: this one is killed
        play = _start_play(["--model", str(tiny_model), "--cache-dir", str(tmp_path)])
        try:
            _wait_for_line(play.stdout, "Ctrl-C to stop")
            time.sleep(0.5)
            server.stop()
            stopped_s = time.monotonic()
            _, stderr = play.communicate(timeout=WAIT_S)
        finally:
            if play.poll() is None:
                play.kill()
    assert time.monotonic() - stopped_s < 30  # gone promptly, not after some long timeout
    ours = [line for line in stderr.splitlines() if line.startswith("gansynth-instrument")]
    assert play.returncode == 1, stderr  # not an abort (-6) in PortAudio's exit handler
    assert ours == [
        "gansynth-instrument play: error: the audio stream stopped (device gone, or JACK shut down)"
    ]


def test_a_frozen_jack_server_under_play_is_one_line_and_a_clean_exit(
    tiny_model: Path, tmp_path: Path
) -> None:
    with JackServer(realtime=True, sync=True) as server:  # private: this one is frozen
        assert server.pid is not None
        play = _start_play(["--model", str(tiny_model), "--cache-dir", str(tmp_path)])
        try:
            _wait_for_line(play.stdout, "Ctrl-C to stop")
            time.sleep(0.5)
            os.kill(server.pid, signal.SIGSTOP)
            frozen_s = time.monotonic()
            try:
                _, stderr = play.communicate(timeout=WAIT_S)
            finally:
                os.kill(server.pid, signal.SIGCONT)
        finally:
            if play.poll() is None:
                play.kill()
    assert time.monotonic() - frozen_s < 30  # noticed by the stall watchdog, not a hang
    ours = [line for line in stderr.splitlines() if line.startswith("gansynth-instrument")]
    assert play.returncode == 1, stderr
    assert ours == [
        "gansynth-instrument play: error: the audio stream stalled: no callback for 2 s "
        "(the JACK server or the audio driver hung)"
    ]


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _maps_memory_file(pid: int, name: str) -> bool:
    """Whether process ``pid`` maps the memory file (memfd) called ``name``."""
    try:
        return f"/memfd:{name}" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # it has exited
        return False


def test_the_audio_process_killed_mid_note_is_one_line_and_leaves_no_shared_memory(
    tiny_model: Path, tmp_path: Path
) -> None:
    with JackServer() as server:  # private: its /dev/shm files are known before play starts

        def shared_memory() -> set[str]:  # other jobs' servers come and go beside it
            return {e for e in os.listdir("/dev/shm") if server.name in e or "gansynth" in e}

        shm_before = shared_memory()
        play = _start_play(["--model", str(tiny_model), "--cache-dir", str(tmp_path)])
        try:
            _wait_for_line(play.stdout, "Ctrl-C to stop")
            audio = [c for c in _children(play.pid) if _maps_memory_file(c, "gansynth-audio")]
            assert len(audio) == 1, _children(play.pid)
            children = _children(play.pid)  # the note worker too: none may outlive play
            with MidiSender() as sender:
                sender.connect(midi_input_port(sender.client, "gansynth-instrument.*:midi_in"))
                sender.send([0x90, 60, 110])
                time.sleep(0.3)  # sounding
                os.kill(audio[0], signal.SIGKILL)
                killed_s = time.monotonic()
                _, stderr = play.communicate(timeout=WAIT_S)
        finally:
            if play.poll() is None:
                play.kill()
        assert time.monotonic() - killed_s < 30
        # The server frees a dead client's semaphores when it notices: on a loaded machine that
        # can be after play has exited.
        settled_by = time.monotonic() + 10
        while (left := shared_memory() - shm_before) and time.monotonic() < settled_by:
            time.sleep(0.1)
    ours = [line for line in stderr.splitlines() if line.startswith("gansynth-instrument")]
    assert play.returncode == 1, stderr
    assert ours == [
        f"gansynth-instrument play: error: the audio process (pid {audio[0]}) ended: "
        "killed by signal SIGKILL"
    ], stderr
    assert left == set(), left
    # The note worker sees its parent gone and exits on its own: give it the same time.
    settled_by = time.monotonic() + 10
    while (alive := [c for c in children if Path(f"/proc/{c}").exists()]) and (
        time.monotonic() < settled_by
    ):
        time.sleep(0.1)
    assert not alive, alive


def test_a_midi_input_that_goes_away_is_reported_once_and_reconnected(
    jack_server: JackServer,
) -> None:
    inbox = Inbox()
    sender = MidiSender(name="fault-keys")
    with MidiInput(inbox.handle, ports=["fault-keys"]) as midi_in:
        sender.wait_connected()
        sender.send([0x90, 60, 100])
        assert inbox.wait(1) == [[0x90, 60, 100]]
        assert midi_in.check_ports() == []
        sender.close()  # unplugged
        assert midi_in.check_ports() == [
            "MIDI input 'fault-keys:out' is gone; playing on, reconnecting when back"
        ]
        assert midi_in.check_ports() == []  # said once
        with MidiSender(name="fault-keys") as again:  # plugged in again
            assert midi_in.check_ports() == ["MIDI input 'fault-keys:out' is back; reconnected"]
            again.wait_connected()
            again.send([0x90, 62, 100])
            assert inbox.wait(2)[1:] == [[0x90, 62, 100]]


def test_play_says_when_its_midi_input_goes_and_comes_back(
    jack_server: JackServer, tiny_model: Path, tmp_path: Path
) -> None:
    source = MidiSource("stage-keys")
    argv = ["--model", str(tiny_model), "--cache-dir", str(tmp_path), "--midi-in", "stage-keys"]
    play = _start_play(argv)
    try:
        _wait_for_line(play.stdout, "Ctrl-C to stop")
        source.close()
        _wait_for_line(play.stdout, "MIDI input 'stage-keys:out' is gone")
        source = MidiSource("stage-keys")
        _wait_for_line(play.stdout, "MIDI input 'stage-keys:out' is back; reconnected")
        play.send_signal(signal.SIGINT)
        assert play.wait(WAIT_S) == 0
    finally:
        source.close()
        if play.poll() is None:
            play.kill()


def _interrupted(process: subprocess.Popen[str]) -> str:
    """Ctrl-C ``process``; its stderr after it exited with the CLI's status for an interrupt."""
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 130, stderr
    assert stderr.rstrip().endswith("interrupted"), stderr
    return stderr


def test_ctrl_c_during_cache_warm_leaves_only_whole_notes(tiny_model: Path, tmp_path: Path):
    cache_dir = tmp_path / "notes"
    command = [sys.executable, "-m", "gansynth_instrument", "cache", "warm", "felt-keys"]
    command += ["--model", str(tiny_model), "--cache-dir", str(cache_dir), "--batch-size", "1"]
    warm = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT_S
        while len(list(cache_dir.glob("*.note"))) < 3:  # mid-way: some notes written, not all
            assert warm.poll() is None and time.monotonic() < deadline, warm.communicate()
            time.sleep(0.01)
        _interrupted(warm)
    finally:
        if warm.poll() is None:
            warm.kill()
    files = sorted(cache_dir.iterdir())
    assert all(not f.name.startswith(".") for f in files), files  # no temporary left
    assert 3 <= len(files) < 61  # interrupted before the 61st pitch
    for f in files:
        data = f.read_bytes()
        assert hashlib.sha256(data[:-32]).digest() == data[-32:], f  # whole, as written


# Fault injection at the worst moment: the model file fully written under its temporary name,
# not yet renamed. The real export, the real file, a real SIGINT to the process itself.
_EXPORT_INTERRUPTED_AFTER_WRITE = """
import os, signal, sys, time
import onnx
from gansynth_instrument.cli import main

real_save = onnx.save_model

def save_then_ctrl_c(model, path, *args, **kwargs):
    real_save(model, path, *args, **kwargs)
    print(f"wrote {os.path.getsize(path)} bytes to {os.path.basename(path)}", flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)  # the KeyboardInterrupt lands here

onnx.save_model = save_then_ctrl_c
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_during_export_leaves_no_file(magenta_tiny: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "models"
    out_dir.mkdir()
    command = [sys.executable, "-c", _EXPORT_INTERRUPTED_AFTER_WRITE, "export"]
    command += [str(magenta_tiny), "-o", str(out_dir / "tiny.onnx")]
    run = subprocess.run(command, capture_output=True, text=True, timeout=WAIT_S, check=False)
    assert run.returncode == 130, run.stderr
    assert run.stderr.rstrip().endswith("interrupted")
    assert "bytes to .tiny." in run.stdout  # the interrupt came with the temporary file written
    assert list(out_dir.iterdir()) == []


# Fault injection inside an import: the real SIGINT arrives while a C-extension package (onnx for
# export; onnxruntime, imported when a model loads) is being imported, with Python code still to
# run there. Unless Ctrl-C is held back, the KeyboardInterrupt lands in that code and the package
# is left half imported (in its extension: an ImportError, an abort or a segfault).
_CTRL_C_INSIDE_IMPORT = """
import atexit, os, signal, sys, time
from gansynth_instrument.cli import main

PACKAGE, PART = sys.argv.pop(1), sys.argv.pop(1)

class CtrlCOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == PACKAGE:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # Python code inside the import: an unheld interrupt lands here
        return None

sys.meta_path.insert(0, CtrlCOnImport())
atexit.register(lambda: print("imported whole:", PART in sys.modules))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("package", "part", "command"),
    [
        ("onnx", "onnx.helper", ["export", "MAGENTA_TINY", "-o", "OUT/tiny.onnx"]),
        (
            "onnxruntime",
            "onnxruntime.capi._pybind_state",
            ["generate", "--model", "TINY_MODEL", "--backend", "cpu", "--count", "1", "-o", "OUT"],
        ),
    ],
    ids=["export", "generate"],
)
def test_ctrl_c_inside_an_import_waits_for_it_then_exits_130(
    package: str,
    part: str,
    command: list[str],
    magenta_tiny: Path,
    tiny_model: Path,
    tmp_path: Path,
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    paths = {"MAGENTA_TINY": str(magenta_tiny), "TINY_MODEL": str(tiny_model)}
    argv = [paths.get(arg, arg.replace("OUT", str(out_dir))) for arg in command]
    run = subprocess.run(
        [sys.executable, "-c", _CTRL_C_INSIDE_IMPORT, package, part, *argv],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert run.returncode == 130, run.stderr
    assert run.stderr.rstrip().endswith("interrupted")
    assert "imported whole: True" in run.stdout
    assert list(out_dir.iterdir()) == []


def test_ctrl_c_at_any_moment_of_an_export_leaves_nothing_or_a_whole_model(
    magenta_tiny: Path, tmp_path: Path
) -> None:
    """Real timing: Ctrl-C at spread-out moments; each run leaves nothing, or a loadable model."""
    left_nothing = 0
    for delay_s in (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5):
        out_dir = tmp_path / f"after-{delay_s}"
        out_dir.mkdir()
        command = [sys.executable, "-m", "gansynth_instrument", "export", str(magenta_tiny)]
        export = subprocess.Popen(
            [*command, "-o", str(out_dir / "tiny.onnx")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay_s)
        export.send_signal(signal.SIGINT)
        _, stderr = export.communicate(timeout=WAIT_S)
        # 130: the CLI caught it; -2: Python was still starting or already shutting down.
        assert export.returncode in (0, 130, -signal.SIGINT), stderr
        files = list(out_dir.iterdir())
        if files:
            assert [f.name for f in files] == ["tiny.onnx"], (delay_s, files)
            onnx.checker.check_model(str(files[0]))
        else:
            assert export.returncode != 0
            left_nothing += 1
    assert left_nothing > 0  # at least one run was really cut short
