"""``gansynth-instrument train``: the optional PyTorch trainer (``[train]`` extra)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from gansynth_instrument.errors import TrainingError


def run(args: argparse.Namespace) -> int | None:
    try:
        from gansynth_instrument.training.train import TrainOptions, train
    except ImportError as err:
        raise TrainingError(
            f"training needs PyTorch ({err}): pip install 'gansynth-instrument[train]'"
        ) from None
    options = TrainOptions(**{f.name: getattr(args, f.name) for f in fields(TrainOptions)})
    return train(options, report=print)
