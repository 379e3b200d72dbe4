"""Command line: the parser (each subcommand's arguments in ``parsers/``), and the dispatch of
each subcommand to its module in ``commands/``.

Errors a user can cause arrive as ``GansynthError`` and are printed as one line (``--debug`` for the
traceback); the exit status is 1 for those, 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.interrupts import import_whole
from gansynth_instrument.parsers import library, offline, play, training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gansynth-instrument",
        description="A MIDI-playable instrument built on GANSynth: play it live, render MIDI files "
        "to WAV, convert Magenta checkpoints.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (
        library.add_export,
        library.add_info,
        library.add_devices,
        library.add_cache,
        library.add_presets,
        offline.add_offline,
        offline.add_bake,
        play.add_play,
        training.add_dataset,
        training.add_train,
    ):
        add(sub)
    return parser


def run_command(args: argparse.Namespace) -> int | None:
    """Import the subcommand's own module, ``commands/COMMAND.py`` (only it: ``--help`` stays
    fast), with Ctrl-C held back, and run it. Notices the library logs go through tqdm, so each
    has its own line above a progress bar rather than running on from the bar's."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        module = import_whole(f"gansynth_instrument.commands.{args.command}")
        return module.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(run_command(args) or 0)
    except GansynthError as err:
        if args.debug:
            raise
        print(f"gansynth-instrument {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
