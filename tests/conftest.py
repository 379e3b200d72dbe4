"""Shared test fixtures: Magenta's reference checkpoints, an exported tiny model, a JACK dummy server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from jackrig import JackServer, RigError

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


@pytest.fixture(scope="session")
def jack_server() -> Iterator[JackServer]:
    """A private JACK dummy server (48 kHz, 128 frames) that PortAudio and JACK clients use.

    Fails (never skips) when jackd is missing: live-audio tests must run wherever the suite runs.
    Tests must close their streams and clients before the session ends; PortAudio is terminated
    before jackd stops (see tests/jackrig.py).
    """
    server = JackServer(sample_rate=48000, period_frames=128)
    try:
        server.start()
    except RigError as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()
