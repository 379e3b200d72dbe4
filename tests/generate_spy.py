"""A spy on a real model's ``generate``: every note still comes from the real model, and a test
can count the calls or hold one "in progress" (the ``spy`` fixture in conftest.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gansynth_instrument.model.runtime import Model


class GenerateSpy:
    """Wraps the real ``model.generate``: records the pitches of each call, can hold calls."""

    def __init__(self, model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[int]] = []
        self.entered = threading.Event()  # a call has started
        self.opened = threading.Event()  # calls may proceed to the real generate
        self.opened.set()
        real = model.generate

        def generate(z: np.ndarray, pitches: np.ndarray) -> np.ndarray:
            self.calls.append([int(p) for p in pitches])
            self.entered.set()
            self.opened.wait()
            return real(z, pitches)

        monkeypatch.setattr(model, "generate", generate)

    def hold(self) -> None:
        """The next generate call parks (render in progress) until ``release``."""
        self.entered.clear()
        self.opened.clear()

    def release(self) -> None:
        self.opened.set()

    def pitches(self) -> list[int]:
        return [p for call in self.calls for p in call]
