"""``gansynth-instrument dataset chop|pad|make|from-soundfont``."""

from __future__ import annotations

import argparse

from gansynth_instrument.dataset import run_dataset


def run(args: argparse.Namespace) -> int | None:
    return run_dataset(args)
