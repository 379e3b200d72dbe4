"""Shared test fixtures: Magenta's reference checkpoints, an exported tiny model, a JACK dummy server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
