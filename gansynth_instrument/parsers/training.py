"""The arguments of dataset and train (the ``[train]`` extra's commands)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_dataset(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dataset",
        help="make a training dataset: chop recordings, pad one-shots, render a soundfont",
        description=(
            "Turn sounds into 4 s, 16 kHz mono notes labelled by their detected pitch (silent "
            "and unpitched ones are dropped), then 'make' a dataset folder that 'train' reads, "
            "with Magenta's NSynth data.tfrecord + meta.json alongside."
        ),
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    chop = actions.add_parser("chop", help="cut long recordings into 4 s windows")
    chop.add_argument("--hop-s", type=float, default=4.0, help="window start spacing (4 s)")
    pad = actions.add_parser("pad", help="one-shots: normalise, pad or cut to 4 s (recursive)")
    for action in (chop, pad):
        action.add_argument("in_dir", type=Path, help="folder of audio files")
        action.add_argument("out_dir", type=Path, help="folder for <instrument>_<pitch>.wav")
        action.add_argument("--pitch", type=int, help="label every note this pitch (no detection)")
    make = actions.add_parser("make", help="<instrument>_<pitch>.wav notes → dataset folder")
    make.add_argument("in_dir", type=Path, help="folder of 4 s, 16 kHz mono notes")
    make.add_argument("out_dir", type=Path, help="dataset folder to write")
    font = actions.add_parser("from-soundfont", help="render NSynth-style notes with FluidSynth")
    font.add_argument("soundfont", type=Path, help="the .sf2 file")
    font.add_argument("out_dir", type=Path, help="dataset folder to write")
    font.add_argument(
        "--programs",
        default="0,4,19,24,32,40,56,73",
        help="GM programs; PROGRAM:V/V gives one its own velocities (e.g. 0,24,52:100)",
    )
    font.add_argument("--velocities", default="100,75", help="note-on velocities (100,75)")
    font.add_argument(
        "--keep-detuned", action="store_true", help="keep notes > 50 cents off their pitch"
    )
    for action in (chop, pad, font):
        action.add_argument("--pitch-range", default="24-84", help="pitches kept (24-84)")
        action.add_argument(
            "--silence-db", type=float, default=-50.0, help="drop notes below this RMS (-50 dBFS)"
        )


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a GANSynth model on a dataset (PyTorch; resumable, time-boxed chunks)",
        description=(
            "GANSynth's recipe (progressive growing, WGAN-GP, pitch classifier, EMA) on a "
            "dataset folder from 'dataset make' or 'dataset from-soundfont'. Run it again with "
            "the same train dir to go on where it stopped; 'export TRAIN_DIR' makes the ONNX "
            "model at any point. Several GPUs: torchrun --nproc_per_node N -m "
            "gansynth_instrument train ..."
        ),
    )
    p.add_argument("dataset", type=Path, help="dataset folder (index.json + audio.npy)")
    p.add_argument("train_dir", type=Path, help="run folder: checkpoints, samples, losses")
    p.add_argument(
        "--config",
        choices=("tiny", "cpu", "full", "bundled"),
        help="new run: full = Magenta's mel_prog_hires, cpu = widths capped at 32 (default), "
        "bundled = the shipped default model's (regression), tiny = tests; resuming: leave it out",
    )
    p.add_argument(
        "--objective",
        choices=("gan", "regression"),
        help="new run: gan = GANSynth's WGAN-GP (default, except for --config bundled); "
        "regression = fit the real notes from fixed per-instrument latents, no discriminator "
        "(learns pitch in CPU-hours, see training/regression.py)",
    )
    p.add_argument("--time-limit-min", type=float, help="stop (and save) after this many minutes")
    p.add_argument("--stop-after-images", type=int, help="stop (and save) at this image count")
    p.add_argument(
        "--checkpoint-every-min", type=float, default=10.0, help="save this often (10 min)"
    )
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: all)")
    p.add_argument("--seed", type=int, default=0, help="new run: seed for weights and data (0)")
    p.add_argument(
        "--init-from",
        metavar="MODEL.onnx|RUN_DIR",
        help="new run: start from an exported model's (or a train dir's) generator weights and "
        "image count, so the schedule goes on where it was; its shapes must fit --config",
    )
    p.add_argument(
        "--hparams",
        help="JSON of Magenta flag overrides, e.g. '{\"fmap_max\": 64}'; resuming: only the "
        "image counts, batch sizes and the losses' trainer_* options (the error lists them)",
    )
