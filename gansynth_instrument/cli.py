"""Command line: the parser, and the dispatch of each subcommand to its module in ``commands/``.

Errors a user can cause arrive as ``GansynthError`` and are printed as one line (``--debug`` for the
traceback); the exit status is 1 for those, 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.interrupts import import_whole
from gansynth_instrument.surfaces.osc_addresses import OSC_ADDRESSES


def _add_export(sub: argparse._SubParsersAction) -> None:
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


def _add_info(sub: argparse._SubParsersAction) -> None:
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


def _add_devices(sub: argparse._SubParsersAction) -> None:
    sub.add_parser(
        "devices",
        help="list audio outputs and MIDI inputs, with the names to pass to --device / --midi-in",
        description="List the audio outputs PortAudio can open and the MIDI input ports "
        "(JACK MIDI when a JACK server runs, else ALSA), with the names 'play' accepts.",
    )


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
    add_model_options(warm)
    warm.add_argument("presets", nargs="*", help="preset names or .yaml paths")
    warm.add_argument(
        "--bank", action="append", default=[], help="every preset of this bank (repeatable)"
    )
    warm.add_argument(
        "--seed", type=int, action="append", default=[], help="a timbre seed (repeatable)"
    )
    _add_sample_rate(warm, hint="; match your audio device")
    warm.add_argument("--batch-size", type=int, help="notes per model call (default 4)")
    warm.add_argument(
        "--max-disk-mb",
        type=float,
        help="disk cap; the least recently used notes go first (default 2048)",
    )
    _add_max_memory(warm)
    info = actions.add_parser("info", help="print the cache dir, its entries and size")
    clear = actions.add_parser("clear", help="delete every cached note")
    for action in (warm, info, clear):
        _add_cache_dir(action)


def _add_max_memory(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-memory-mb",
        type=float,
        help="notes held in memory; past it the least recently used drop to disk (default 512)",
    )


def _add_cache_dir(p: argparse.ArgumentParser, holds: str = "") -> None:
    p.add_argument(
        "--cache-dir",
        type=Path,
        help=f"note cache{holds} (default: the user cache dir)",
    )


# Output rates from telephone quality to the highest rate audio interfaces run at: outside them
# a rate is a typo (0 divided by zero, 100 Hz and 1 MHz were taken).
SAMPLE_RATES = (8000, 192000)


def _add_sample_rate(p: argparse.ArgumentParser, hint: str = "") -> None:
    """The output rate; the note cache keeps notes per rate, so warm, render and play share it
    (``check_sample_rate`` holds them to ``SAMPLE_RATES``)."""
    low, high = SAMPLE_RATES
    p.add_argument(
        "--sample-rate",
        "--samplerate",
        type=int,
        default=48000,
        help=f"output rate in Hz the notes are resampled to, {low}..{high}{hint} (default 48000)",
    )


def check_sample_rate(args: argparse.Namespace) -> None:
    """The one rule for every command's ``--sample-rate``: a one-line error naming the range."""
    rate = getattr(args, "sample_rate", None)
    low, high = SAMPLE_RATES
    if rate is not None and not low <= rate <= high:
        raise GansynthError(f"--sample-rate {rate} Hz is not an output rate (choose {low}..{high})")


def _add_preset_or_bank(
    p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup,
) -> None:
    """The timbres of render and play (play takes one or the other)."""
    p.add_argument("--preset", help="play every note with this preset, or drum kit (name or .yaml)")
    p.add_argument("--bank", help="bank: program changes + morph path (default: default)")


def _add_channels(p: argparse.ArgumentParser, flag: str) -> None:
    p.add_argument(
        flag,
        metavar="LIST",
        help="MIDI channels to play, counted 1-16: 1 or 1,2,10 or 1-4 (default: all)",
    )


def _add_drums(p: argparse.ArgumentParser) -> None:
    drums = p.add_mutually_exclusive_group()
    drums.add_argument(
        "--drums",
        metavar="KIT",
        help="play channel 10 (General MIDI percussion) with this drum kit, or a preset (each "
        "key at its own pitch); default: the bank's 'drums:' (the default bank's: gm-kit), "
        "gm-kit with --preset",
    )
    drums.add_argument(
        "--no-drums", action="store_true", help="do not play channel 10 (GM percussion)"
    )


def _add_preset_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gain-db", type=float, help="output gain in dB (-60..24)")
    p.add_argument("--attack-s", type=float, help="attack time in seconds (0..4)")
    p.add_argument("--release-s", type=float, help="release time in seconds after note-off (0..10)")
    p.add_argument("--program", type=int, help="General MIDI program 0-127 that selects it")
    p.add_argument("--bank", type=int, help="bank select (CC0) 0-127 that reaches --program (0)")
    p.add_argument(
        "--loop",
        action=argparse.BooleanOptionalAction,
        help="held notes loop the middle of the note instead of ending after 4 s (default off)",
    )
    p.add_argument("--description", help="a line of text shown by 'presets list'")
    p.add_argument("--force", action="store_true", help="replace a user preset of that name")


def _add_presets(sub: argparse._SubParsersAction) -> None:
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
    _add_model_path(listing)
    show = actions.add_parser("show", help="print a preset's (or bank's) YAML file")
    show.add_argument("name", help="preset name or .yaml path")
    show.add_argument("--bank", action="store_true", help="show the bank of that name")
    _add_model_path(show)
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
    add_model_options(new)
    new.add_argument(
        "--latent-size", type=int, default=256, help="latent size for seeds (default 256)"
    )
    _add_preset_fields(new)
    save = actions.add_parser("save", help="copy a preset to your presets, renamed or edited")
    save.add_argument("source", help="preset name or .yaml path")
    save.add_argument("--as", dest="as_name", metavar="NAME", help="save under this name")
    _add_model_path(save)
    _add_preset_fields(save)
    rm = actions.add_parser("rm", help="delete one of your presets (shipped ones are read-only)")
    rm.add_argument("name")


def _add_model_path(p: argparse.ArgumentParser) -> None:
    """--model alone: the model whose timbres and presets a command means."""
    p.add_argument(
        "--model",
        type=Path,
        help="an exported .onnx model (default: $GANSYNTH_MODEL, else the package's bundled "
        "models/default.onnx when it has one)",
    )


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--model/--backend/--threads/--precision, read by commands.load_model_from_args."""
    _add_model_path(p)
    p.add_argument(
        "--backend",
        choices=("auto", "cuda", "openvino", "cpu"),
        default="auto",
        help="inference backend; auto = CUDA if it works, else OpenVINO, else onnxruntime's CPU",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for inference (default: all cores; play leaves one free for the audio)",
    )
    p.add_argument(
        "--precision",
        choices=("f32", "bf16"),
        default="f32",
        help="bf16: OpenVINO on CPUs with native bf16, ~2x faster but audibly different: "
        "spectral SNR vs f32 about 10 dB mean / 7 dB worst on a full-size model, 7.6 dB on "
        "magenta-tiny (benchmarks/bench_generate.py); default f32",
    )


def _add_offline(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser(
        "generate",
        help="random notes to WAV files, like gansynth_generate",
        description="Write 4 s notes (float32 WAV, 16 kHz) from random or preset timbres.",
    )
    add_model_options(gen)
    gen.add_argument("--count", type=int, help="number of notes (default: one per pitch, else 8)")
    gen.add_argument("--pitch", type=int, action="append", help="MIDI pitch (repeatable)")
    gen.add_argument("--pitches", help="comma-separated MIDI pitches, e.g. 48,52,55")
    gen.add_argument("--seed", type=int, help="seed for the random timbres and pitches")
    gen.add_argument("--preset", help="use this preset's timbre (name or .yaml) for every note")
    gen.add_argument(
        "--normalize",
        action="store_true",
        help="scale each note to a peak of 1.0, as Magenta's MIDI renderer does (default: raw)",
    )
    gen.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="default: here")

    hal = sub.add_parser(
        "hallucinate",
        help="a long evolving sound from overlapping notes along a timbre path (course patch)",
        description=(
            "The course's hallucination: random keypoint timbres (or --through presets), slerp "
            "steps between them, one enveloped note per point every --spacing-s seconds. The "
            "--trim/--attack/--sustain/--release weights share the note's 4 s, as in the patch. "
            "Each note is levelled by its timbre as the instrument plays it (not normalised as in "
            "Magenta); a limiter keeps the sum below -1 dBFS."
        ),
    )
    add_model_options(hal)
    hal.add_argument("-o", "--output", required=True, type=Path, help="the .wav file to write")
    hal.add_argument("--notes", type=int, default=5, help="random keypoint timbres (default 5)")
    hal.add_argument("--steps", type=int, default=5, help="slerp steps between keypoints (5)")
    hal.add_argument("--spacing-s", type=float, default=2.0, help="seconds between notes (2)")
    hal.add_argument("--trim", type=float, default=0.0, help="start-trim weight (default 0)")
    hal.add_argument("--attack", type=float, default=0.5, help="attack weight (default 0.5)")
    hal.add_argument("--sustain", type=float, default=1.0, help="sustain weight (default 1)")
    hal.add_argument("--release", type=float, default=0.5, help="release weight (default 0.5)")
    hal.add_argument("--pitch", type=int, help="MIDI pitch (default 32 if the model has it)")
    hal.add_argument("--seed", type=int, help="seed for the keypoint timbres")
    hal.add_argument("--through", nargs="+", metavar="TIMBRE", help="presets or seeds as keypoints")
    _add_gain_db(hal, "the clip")

    itp = sub.add_parser(
        "interpolate",
        help="notes along the slerp path between two presets or seeds",
        description="Write --steps notes from timbre A (t=0) to B (t=1): interp_00.wav, ...",
    )
    itp.add_argument("a", nargs="?", help="preset name, .yaml path or seed")
    itp.add_argument("b", nargs="?", help="preset name, .yaml path or seed")
    add_model_options(itp)
    itp.add_argument(
        "--grid",
        nargs=4,
        metavar=("A", "B", "C", "D"),
        help="a 2-D grid between 4 timbres at the corners (0,0) (1,0) (0,1) (1,1): "
        "grid_ROW_COLUMN.wav, each the bilinear slerp of the corners",
    )
    itp.add_argument("--size", type=int, default=5, help="--grid points per side (5)")
    itp.add_argument("--steps", type=int, default=5, help="points including both ends (5)")
    itp.add_argument("--pitch", type=int, default=60, help="MIDI pitch (default 60)")
    _add_gain_db(itp, "each note")
    itp.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="default: here")

    ren = sub.add_parser(
        "render",
        help="render a MIDI file to WAV",
        description=(
            "Render a MIDI file through the instrument (voices, envelopes, pedal, program change, "
            "morph CC, timbre knobs and XY pad CCs; deterministic), or with --magenta exactly as "
            "gansynth_generate --midi_file does (pitches 36-84, a new random timbre every 6 s, "
            "16 kHz float WAV)."
        ),
    )
    ren.add_argument("midi_file", type=Path, help="the .mid file")
    ren.add_argument("-o", "--output", required=True, type=Path, help="the .wav file to write")
    add_model_options(ren)
    _add_preset_or_bank(ren)
    _add_sample_rate(ren)
    _add_cache_dir(ren)
    _add_channels(ren, "--channels")
    _add_drums(ren)
    ren.add_argument(
        "--subtype",
        choices=("PCM_16", "PCM_24", "FLOAT"),
        help=".wav sample format (default FLOAT: 32-bit float, never clips)",
    )
    ren.add_argument(
        "--no-knobs",
        action="store_true",
        help="ignore timbre-knob CCs in the file (by default a file that turns a knob has the "
        "model's knob directions found, once per model, as play does)",
    )
    _add_staging(ren)
    _add_mpe(ren)
    ren.add_argument(
        "--loudness",
        type=float,
        metavar="LUFS",
        help="integrated loudness of the file (ITU-R BS.1770), -40..-5 LUFS (default -16), true "
        "peak at most -1 dBTP; a song with too little sound to measure is written as it is",
    )
    ren.add_argument(
        "--no-normalize",
        action="store_true",
        help="write the mix at the level play has (master gain and limiter only)",
    )
    ren.add_argument("--magenta", action="store_true", help="gansynth_generate's MIDI mode")
    ren.add_argument("--seed", type=int, help="--magenta: seed for the random timbres")


def _add_mpe(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mpe",
        choices=("lower", "upper", "both"),
        help="MPE zones for a controller that does not send the MPE Configuration Message "
        "(lower: manager channel 1, members 2-16; upper: manager 16, members 15-1; both: 7 "
        "members each); without it, zones follow that message",
    )


def _add_staging(p: argparse.ArgumentParser) -> None:
    """The gain staging options of play and render (see levels.py)."""
    _add_velocity_curve(p)
    _add_gain_db(p, "chords")


def _add_gain_db(p: argparse.ArgumentParser, summed: str) -> None:
    """The master gain of every command that stages its output as the instrument does."""
    p.add_argument(
        "--gain-db",
        type=float,
        default=0.0,
        help=(
            "master gain in dB, -60..24 (default 0: a full-velocity middle C of any timbre peaks "
            f"near -12 dBFS; a limiter keeps {summed} below -1 dBFS)"
        ),
    )


def _add_velocity_curve(p: argparse.ArgumentParser) -> None:
    """A curve name, checked by ``levels.velocity_exponent`` (a one-line error names the
    choices; argparse ``choices`` would print usage too)."""
    p.add_argument(
        "--velocity-curve",
        default="gm",
        metavar="CURVE",
        help=(
            "how key velocity sets loudness, amplitude = (velocity/127)^e: gm (e = 2, General "
            "MIDI's curve, the default), linear (1), soft (0.5, louder at a light touch), fixed "
            "(0, every note full)"
        ),
    )


def _add_bake(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bake",
        help="bake presets or a bank into a sample pack (SFZ, DecentSampler) for any sampler",
        description=(
            "Write each preset as a sampler instrument: DIR/NAME.sfz and DIR/NAME.dspreset, "
            "with one WAV per model pitch in DIR/NAME/ (exact notes from the note cache), the "
            "preset's level, envelope and loop, and the instrument's velocity curve. A bank "
            "bakes each of its presets, plus its morph path as DIR/BANK-morph.*, where the "
            "bank's morph CC crossfades the morph steps. The pack appears only when complete."
        ),
    )
    p.add_argument("presets", nargs="*", help="preset names or .yaml paths")
    p.add_argument("--bank", help="every preset of this bank, and its morph path")
    p.add_argument("-o", "--output-dir", type=Path, required=True, help="folder for the pack")
    add_model_options(p)
    p.add_argument(
        "--format",
        default="sfz,dspreset",
        help="comma-separated: sfz, dspreset (DecentSampler), multisample (Bitwig, Studio One); "
        "default sfz,dspreset",
    )
    p.add_argument("--rate", type=int, default=48000, help="sample rate: 48000 or 44100 (48000)")
    p.add_argument("--bit-depth", type=int, default=24, help="WAV bits: 16 or 24 (default 24)")
    _add_velocity_curve(p)
    _add_cache_dir(p)


def _add_play(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="play the instrument live: MIDI in, low-latency audio out",
        description=(
            "Play notes from a MIDI keyboard (or any MIDI program) through the audio output. "
            "Program changes switch presets of the bank, the morph CC (mod wheel by default) "
            "morphs along its path, CC64 is the sustain pedal. Notes not cached yet play at once "
            "from the nearest cached pitch while the exact one renders. "
            "Timbre knobs: CC70-77 move the timbre along the model's 8 principal directions "
            "(GANSpace; found once per model in seconds, then cached; 64 = unchanged). "
            "XY pad: a bank's pad corners, moved by CC16 (x) and CC17 (y) unless the bank says "
            "otherwise. Buttons: CC80 draws a random timbre for the next notes, CC81 saves what "
            "plays (knobs included) as a new preset named found-DATE-TIME."
        ),
    )
    add_model_options(p)
    _add_preset_or_bank(p.add_mutually_exclusive_group())
    p.add_argument("--midi-in", action="append", metavar="PORT", help="MIDI input (repeatable)")
    p.add_argument(
        "--virtual-midi", metavar="NAME", help="virtual MIDI port name (default midi_in)"
    )
    p.add_argument("--device", help="audio output: number or name (see 'devices')")
    _add_sample_rate(p, hint="; match your audio device")
    p.add_argument(
        "--blocksize",
        type=int,
        default=128,
        help="frames per audio block, 16..2048; on JACK, the server's period (128)",
    )
    _add_channels(p, "--channel")
    _add_drums(p)
    p.add_argument("--polyphony", type=int, default=32, help="voices (32)")
    p.add_argument("--bend-range", type=float, default=2.0, help="pitch-bend semitones (2)")
    _add_staging(p)
    _add_mpe(p)
    p.add_argument(
        "--learn",
        action="store_true",
        help=(
            "bind the morph to the next CC moved and save it in the bank as 'morph: cc:' (a "
            "shipped bank is saved as your own copy in the user presets dir, which is used from "
            "then on); needs a bank with a morph path, so not with --preset"
        ),
    )
    p.add_argument(
        "--learn-knob",
        type=int,
        metavar="K",
        help="bind timbre knob K (1-8) to the next CC moved and save it in the bank as "
        "'knobs: cc:' (as --learn does)",
    )
    p.add_argument(
        "--no-knobs",
        action="store_true",
        help="no timbre knobs (skips finding them for a model played the first time)",
    )
    p.add_argument(
        "--keys",
        action="store_true",
        help="play from the computer keyboard too (r: random timbre, n: save it as a preset)",
    )
    ui = p.add_argument_group("browser control surface (extra: [ui])")
    ui.add_argument(
        "--ui",
        action="store_true",
        help="serve a control page (pad, knobs, presets, latent, piano, meters) and open it; "
        "the URL, with its access token, is printed",
    )
    ui.add_argument(
        "--ui-host",
        default="127.0.0.1",
        help="address to serve on (127.0.0.1: this machine only; anything else is reachable "
        "from other machines, with a warning)",
    )
    ui.add_argument("--ui-port", type=int, default=0, help="port (default 0: a free one)")
    ui.add_argument("--no-browser", action="store_true", help="print the URL, open no browser")
    osc = p.add_argument_group("OSC controls for Pd, Max and TouchOSC (extra: [osc])")
    osc.add_argument(
        "--osc",
        type=int,
        metavar="PORT",
        help="listen for OSC messages on this UDP port (0: a free one, printed); addresses: "
        f"{' '.join(a.address for a in OSC_ADDRESSES)} (the Browser and OSC guide)",
    )
    osc.add_argument(
        "--osc-host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1: this machine only; OSC has no token, so "
        "anything else lets other machines play, with a warning)",
    )
    _add_cache_dir(p, holds=", with the model's knob directions in knobs/")
    p.add_argument(
        "--renderer",
        choices=("thread", "process"),
        help="where notes render: a worker process (default: fewer xruns) or a thread",
    )
    _add_max_memory(p)


def _add_dataset(sub: argparse._SubParsersAction) -> None:
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


def _add_train(sub: argparse._SubParsersAction) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gansynth-instrument",
        description="A MIDI-playable instrument built on GANSynth: play it live, render MIDI files "
        "to WAV, convert Magenta checkpoints.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (
        _add_export,
        _add_info,
        _add_devices,
        _add_cache,
        _add_presets,
        _add_offline,
        _add_bake,
        _add_play,
        _add_dataset,
        _add_train,
    ):
        add(sub)
    return parser


def run_command(args: argparse.Namespace) -> int | None:
    """Import the subcommand's own module, ``commands/COMMAND.py`` (only it: ``--help`` stays
    fast), with Ctrl-C held back, and run it. Notices the library logs go through tqdm, so each
    has its own line above a progress bar rather than running on from the bar's."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    check_sample_rate(args)
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
