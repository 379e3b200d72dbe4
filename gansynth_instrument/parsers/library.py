"""The arguments of the commands that manage what the instrument plays from: export and info
(models), devices, the note cache and presets.
"""

from __future__ import annotations

import argparse

from gansynth_instrument.parsers import options


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="convert a Magenta GANSynth checkpoint into one ONNX instrument model",
        description=(
            "Convert a Magenta GANSynth checkpoint (a release zip, its unpacked folder, a training "
            "dir or one stage_* dir) into a single self-describing ONNX file. No TensorFlow "
            "needed. With --random, build a model of the released shapes with random weights "
            "instead."
        ),
    )
    p.add_argument("checkpoint", nargs="?", help="checkpoint dir, stage_* dir or .zip")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument(
        "--random",
        action="store_true",
        help="no checkpoint: random weights in the released all_instruments shapes (benchmarks)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for --random weights (default 0)")
    p.add_argument(
        "--timbre-prefix",
        default="",
        help="a regression run's instrument timbres are stored in the model under General MIDI "
        "names (piano, nylon-guitar-soft, ...) or their dataset names; this goes before each",
    )
    p.add_argument(
        "--family",
        default="",
        help="the model family: a model trained on from another (train --init-from) shares its "
        "latent space, so give it that model's family and the presets made for it play here "
        "too (see 'info'). Default: none, presets made for this model record its digest",
    )


def add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="print what an ONNX instrument model holds (pitches, latent size, timbres, source)",
        description="Print the metadata stored in an exported instrument model; with no "
        "argument, of the model the commands use without --model ($GANSYNTH_MODEL, else the "
        "bundled one).",
    )
    p.add_argument(
        "model",
        nargs="?",
        help="an .onnx file written by 'gansynth-instrument export' (default: the model the "
        "commands use)",
    )


def add_devices(sub: argparse._SubParsersAction) -> None:
    sub.add_parser(
        "devices",
        help="list audio outputs and MIDI inputs, with the names to pass to --device / --midi-in",
        description="List the audio outputs PortAudio can open and the MIDI input ports "
        "(JACK MIDI when a JACK server runs, else ALSA), with the names 'play' accepts.",
    )


def add_cache(sub: argparse._SubParsersAction) -> None:
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
    options.add_model_options(warm)
    warm.add_argument("presets", nargs="*", help="preset names or .yaml paths")
    warm.add_argument(
        "--bank", action="append", default=[], help="every preset of this bank (repeatable)"
    )
    warm.add_argument(
        "--seed", type=int, action="append", default=[], help="a timbre seed (repeatable)"
    )
    options.add_sample_rate(warm, hint="; match your audio device")
    warm.add_argument("--batch-size", type=int, help="notes per model call (default 4)")
    warm.add_argument(
        "--max-disk-mb",
        type=float,
        help="disk cap; the least recently used notes go first (default 2048)",
    )
    options.add_max_memory(warm)
    info = actions.add_parser("info", help="print the cache dir, its entries and size")
    clear = actions.add_parser("clear", help="delete every cached note")
    for action in (warm, info, clear):
        options.add_cache_dir(action)


def add_presets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "presets",
        help="list, show, create, copy/edit and delete timbre presets",
        description=(
            "Presets are YAML files: a timbre (a seed or a latent vector), gain and envelope, "
            "and an optional program number. Yours live in the user presets dir (see 'presets "
            "list'); shipped ones are read-only, but 'presets save NAME' makes an editable copy."
        ),
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="all presets and banks, with where they live and which suit the model",
        description="All presets and banks: the model's own timbres (stored in it), yours and "
        "the shipped ones. Seed presets suit every model; a preset with an explicit latent "
        "suits the model it was made for, and the others are marked.",
    )
    options.add_model_path(listing)
    show = actions.add_parser("show", help="print a preset's (or bank's) YAML file")
    show.add_argument("name", help="preset name or .yaml path")
    show.add_argument("--bank", action="store_true", help="show the bank of that name")
    options.add_model_path(show)
    new = actions.add_parser(
        "new", help="make a preset from a seed, at random, between two, or from one with knobs"
    )
    new.add_argument("name", help="the new preset's name (letters, digits, '-', '_')")
    how = new.add_mutually_exclusive_group(required=True)
    how.add_argument("--seed", type=int, help="timbre = random_latent(SEED), 0..2^32-1")
    how.add_argument("--random", action="store_true", help="a fresh random seed (printed)")
    how.add_argument("--between", nargs=2, metavar=("A", "B"), help="a point between two presets")
    how.add_argument(
        "--from", dest="from_preset", metavar="PRESET", help="a preset moved by --knob offsets"
    )
    new.add_argument(
        "--at", type=float, default=0.5, help="position from A (0) to B (1), default 0.5"
    )
    new.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="K=OFFSET",
        help="with --from: turn timbre knob K (1-8) by OFFSET standard deviations, e.g. 1=+2.5 "
        "(repeatable; the knobs are the model's, found once and cached, see 'play --help')",
    )
    options.add_model_options(new)
    new.add_argument(
        "--latent-size", type=int, default=256, help="latent size for seeds (default 256)"
    )
    options.add_preset_fields(new)
    save = actions.add_parser("save", help="copy a preset to your presets, renamed or edited")
    save.add_argument("source", help="preset name or .yaml path")
    save.add_argument("--as", dest="as_name", metavar="NAME", help="save under this name")
    options.add_model_path(save)
    options.add_preset_fields(save)
    rm = actions.add_parser("rm", help="delete one of your presets (shipped ones are read-only)")
    rm.add_argument("name")
