"""No dependency's telemetry: a render and a play (on the JACK dummy server) with a fresh home
leave no identifier there (onnxruntime's ``~/.cache/Microsoft/DeveloperTools``, OpenVINO's
``~/intel/openvino_ga_cid``), whichever runtime plays."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import mido
import pytest
from jackrig import JackServer
from midi_writer import write_midi

from live.test_player import start_play, stop

TELEMETRY = ("intel", ".cache/Microsoft")


def _fresh_home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        env.pop(name, None)  # the user's folders are the fresh home's defaults
    return home, env


def _left_in(home: Path) -> list[str]:
    return [where for where in TELEMETRY if (home / where).exists()]


@pytest.mark.parametrize("backend", ["cpu", "openvino"])
def test_render_writes_no_telemetry_into_home(backend: str, tiny_model: Path, tmp_path: Path):
    home, env = _fresh_home(tmp_path)
    on, off = mido.Message("note_on", note=60, velocity=100), mido.Message("note_off", note=60)
    midi = write_midi(tmp_path / "song.mid", [(0.0, on), (0.2, off)])
    command = [sys.executable, "-m", "gansynth_instrument", "render", str(midi)]
    command += ["-o", str(tmp_path / "song.wav"), "--model", str(tiny_model), "--backend", backend]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (home / ".cache" / "gansynth-instrument").is_dir()  # the fresh home was the one used
    assert _left_in(home) == []


def test_play_writes_no_telemetry_into_home(
    jack_server: JackServer, tiny_model: Path, tmp_path: Path
):
    home, env = _fresh_home(tmp_path)
    play, _ = start_play(tiny_model, tmp_path / "cache", f"keys-{uuid.uuid4().hex[:6]}", env=env)
    err = stop(play)
    assert play.returncode == 0, err
    assert _left_in(home) == []
