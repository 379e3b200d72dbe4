"""The subcommands, one module each (as mido keeps its scripts apart): each turns the parsed
arguments into plain values for the domain modules and prints what the user should see.
``cli.py`` builds the parser and calls each module's ``run``; no domain module parses arguments
or prints.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gansynth_instrument.metadata import ModelInfo
    from gansynth_instrument.model import Model


def model_info_from_args(args: argparse.Namespace) -> ModelInfo:
    """The metadata of the model ``--model`` names (else ``$GANSYNTH_MODEL``, else the bundled
    one), read without starting a backend: what presets and banks are checked against (its own
    timbres, the model presets are made for) before the model loads."""
    from gansynth_instrument.model import model_path, read_info

    return read_info(model_path(args.model))


def load_model_from_args(args: argparse.Namespace) -> Model:
    """The model the shared model options name (``cli.add_model_options``): ``--model`` (else
    ``$GANSYNTH_MODEL``, else the bundled model) on ``--backend`` with ``--threads`` and
    ``--precision``. Imports onnxruntime: call it once the other arguments are checked."""
    from gansynth_instrument.model import load_model, model_path

    return load_model(
        model_path(args.model), backend=args.backend, threads=args.threads, precision=args.precision
    )
