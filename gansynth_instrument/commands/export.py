"""``gansynth-instrument export``: a Magenta checkpoint to one ONNX model (``gansynth_export``)."""

from __future__ import annotations

import argparse

from gansynth_export.cli import run_export


def run(args: argparse.Namespace) -> int | None:
    return run_export(args)
