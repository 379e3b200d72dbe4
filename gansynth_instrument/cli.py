"""Command line: argument parsing only. Each subcommand hands its parsed arguments to one module.

Errors a user can cause arrive as ``GansynthError`` and are printed as one line (``--debug`` for the
traceback); the exit status is 1 for those, 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gansynth_instrument.errors import GansynthError

Handler = Callable[[argparse.Namespace], int | None]


def _cmd_export(args: argparse.Namespace) -> int | None:
    from gansynth_export.cli import run_export

    return run_export(args)


def _cmd_info(args: argparse.Namespace) -> int | None:
    from gansynth_instrument.model import print_info

    return print_info(args.model)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="convert a Magenta GANSynth checkpoint into one ONNX instrument model",
        description=(
            "Convert a Magenta GANSynth checkpoint (a release zip, its unpacked folder, a training dir "
            "or one stage_* dir) into a single self-describing ONNX file. No TensorFlow needed. "
            "With --random, build a model of the released shapes with random weights instead."
        ),
    )
    p.add_argument("checkpoint", nargs="?", help="checkpoint dir, stage_* dir or .zip")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument(
        "--random",
        action="store_true",
        help="no checkpoint: random weights with the released all_instruments shapes (for benchmarks)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for --random weights (default 0)")
    p.set_defaults(handler=_cmd_export)


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="print what an ONNX instrument model holds (pitches, latent size, source, digest)",
        description="Print the metadata stored in an exported instrument model.",
    )
    p.add_argument("model", help="an .onnx file written by 'gansynth-instrument export'")
    p.set_defaults(handler=_cmd_info)


def _cmd_cache(args: argparse.Namespace) -> int | None:
    from gansynth_instrument import cache

    if args.action == "warm":
        return cache.run_warm(
            args.model,
            args.seed,
            args.sample_rate,
            args.cache_dir,
            batch_size=args.batch_size,
            max_disk_mb=args.max_disk_mb,
        )
    if args.action == "info":
        return cache.run_info(args.cache_dir)
    return cache.run_clear(args.cache_dir)


def _add_cache(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cache",
        help="warm, inspect or empty the note cache (rendered notes kept on disk)",
        description=(
            "Every note the instrument plays is rendered once per (model, timbre, pitch, output "
            "rate) and kept in a size-capped disk cache, so a restart does not render it again. "
            "'warm' renders presets ahead of a gig."
        ),
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    warm = actions.add_parser("warm", help="render every pitch of some timbres into the cache")
    warm.add_argument("--model", required=True, type=Path, help="an exported .onnx model")
    warm.add_argument(
        "--seed", type=int, action="append", default=[], help="a timbre seed (repeatable)"
    )
    warm.add_argument(
        "--sample-rate",
        type=int,
        default=48000,
        help="output rate the notes are resampled to; match your audio device (default 48000)",
    )
    warm.add_argument("--batch-size", type=int, help="notes per model call (default 4)")
    warm.add_argument(
        "--max-disk-mb",
        type=float,
        help="disk cap; the least recently used notes go first (default 2048)",
    )
    info = actions.add_parser("info", help="print the cache dir, its entries and size")
    clear = actions.add_parser("clear", help="delete every cached note")
    for action in (warm, info, clear):
        action.add_argument(
            "--cache-dir", type=Path, help="cache location (default: the user cache dir)"
        )
    p.set_defaults(handler=_cmd_cache)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gansynth-instrument",
        description="A MIDI-playable instrument built on GANSynth: play it live, render MIDI files "
        "to WAV, convert Magenta checkpoints.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_export, _add_info, _add_cache):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except GansynthError as err:
        if args.debug:
            raise
        print(f"gansynth-instrument {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
