"""Shared test fixtures: Magenta's reference checkpoints, an exported tiny model, a JACK server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from generate_spy import GenerateSpy
from jackrig import JackServer, RigError

from gansynth_instrument.model.runtime import Model, load_model

REPO = Path(__file__).resolve().parent.parent


def _fixtures_root() -> Path:
    return Path(os.environ.get("GANSYNTH_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def magenta_tiny() -> Path:
    """Magenta-made tiny checkpoint dir with reference outputs (the ground truth)."""
    path = _fixtures_root() / "magenta-tiny"
    if not (path / "experiment.json").is_file():
        raise FileNotFoundError(f"Magenta fixtures not found at {path}; set GANSYNTH_FIXTURES")
    return path


@pytest.fixture(scope="module")
def jack_server() -> Iterator[JackServer]:
    """A private JACK dummy server (48 kHz, 128 frames) that PortAudio and JACK clients use.

    One per test module: a module that leaves a stalled client behind (in synchronous mode a
    stalled client slows every cycle) cannot slow the modules after it.

    Fails (never skips) when jackd is missing: live-audio tests must run wherever the suite runs.
    Tests must close their streams and clients before the session ends; PortAudio is terminated
    before jackd stops (see tests/jackrig.py).
    """
    # Real-time scheduling keeps the dummy driver on pace while other work loads the cores
    # (realtime-rig.md). Synchronous mode: the cycle waits for every client, so a late PortAudio
    # callback does not leave the recorder reading half-written ports.
    yield from serve_jack(period_frames=128)


def serve_jack(period_frames: int) -> Iterator[JackServer]:
    """A started private dummy server at 48 kHz, real-time and synchronous, stopped after the
    yield (a fixture's body); a server that will not start fails the test."""
    server = JackServer(sample_rate=48000, period_frames=period_frames, realtime=True, sync=True)
    try:
        server.start()
    except RigError as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()


def _export_tiny(tmp_path_factory: pytest.TempPathFactory, stage_dir: Path) -> Path:
    from gansynth_instrument.export.checkpoint import read_checkpoint
    from gansynth_instrument.export.onnx_model import export_model

    out = tmp_path_factory.mktemp("tiny_model") / f"magenta-tiny-{stage_dir.name}.onnx"
    export_model(read_checkpoint(stage_dir), out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, magenta_tiny: Path) -> Path:
    """magenta-tiny's stage_00012 (progress 6) exported to ONNX by gansynth_instrument.export."""
    return _export_tiny(tmp_path_factory, magenta_tiny / "stage_00012")


@pytest.fixture(scope="session")
def tiny_model_stage11(tmp_path_factory: pytest.TempPathFactory, magenta_tiny: Path) -> Path:
    """magenta-tiny's mid-transition stage_00011 (progress 5.5, LOD blend) exported to ONNX."""
    return _export_tiny(tmp_path_factory, magenta_tiny / "stage_00011")


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> Model:
    """The exported tiny model, loaded once per test module (a module may define its own)."""
    return load_model(tiny_model)


@pytest.fixture
def spy(model: Model, monkeypatch: pytest.MonkeyPatch) -> Iterator[GenerateSpy]:
    """Counts (and can hold) the calls of ``model.generate``."""
    spy = GenerateSpy(model, monkeypatch)
    yield spy
    spy.release()  # never leave a note worker parked


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real, tiny filesystem (a 200 KiB tmpfs) that a render or a pack fills: libsndfile's and
    the kernel's own failure (ENOSPC), not a simulated one. Needs root (mount); skips only where
    the mount is refused."""
    import subprocess

    where = tmp_path / "full"
    where.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(where)]
    done = subprocess.run(mount, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
