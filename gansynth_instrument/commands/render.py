"""``gansynth-instrument render SONG.mid``: a MIDI file to an audio file through the instrument
(stereo, every channel with its own program; prints which preset each channel played and what it
skipped), or with ``--magenta`` to WAV as gansynth_generate does."""

from __future__ import annotations

import argparse
import sys

from gansynth_instrument.commands import (
    load_model_from_args,
    model_info_from_args,
    sounds_from_args,
)
from gansynth_instrument.live.channels import parse_channels
from gansynth_instrument.live.config import CacheConfig, EngineConfig
from gansynth_instrument.notes.disk_store import DEFAULT_CACHE_DIR
from gansynth_instrument.notes.levels import velocity_exponent
from gansynth_instrument.offline.audio_files import output_format
from gansynth_instrument.offline.loudness import DEFAULT_TARGET_LUFS
from gansynth_instrument.offline.magenta import MAGENTA_MAX_PITCH, MAGENTA_MIN_PITCH, render_magenta
from gansynth_instrument.offline.midi_file import read_midi
from gansynth_instrument.offline.render import check_output_file
from gansynth_instrument.offline.render_engine import (
    ENGINE_WAIT_S,
    EngineRender,
    RenderConfig,
    channel_lines,
    render_midi_engine,
)
from gansynth_instrument.presets.ganspace import knob_directions
from gansynth_instrument.presets.knobs import KNOB_CCS, turns_knobs
from gansynth_instrument.presets.mpe import MpeSettings


def render_config(args: argparse.Namespace) -> RenderConfig:
    """The engine render's settings from the arguments: each checked once as its config is
    made, before the model loads (a one-line error naming the option)."""
    channels = parse_channels("--channels", args.channels) if args.channels else None
    target = DEFAULT_TARGET_LUFS if args.loudness is None else args.loudness
    return RenderConfig(
        engine=EngineConfig(
            channels=channels,
            velocity_exponent=velocity_exponent(args.velocity_curve),
            wait_s=ENGINE_WAIT_S,
        ),
        cache=CacheConfig(args.cache_dir or DEFAULT_CACHE_DIR),
        sample_rate=args.sample_rate,
        subtype=args.subtype,
        gain_db=args.gain_db,
        mpe=args.mpe,
        loudness=None if args.no_normalize else target,
    )


def run(args: argparse.Namespace) -> int:
    """The engine mode, or --magenta; prints what it wrote."""
    if args.magenta:
        return _run_magenta(args)
    # Bad output, MIDI file, settings or presets fail before the model loads.
    check_output_file(args.output)
    output_format(args.output, args.subtype)
    config = render_config(args)
    events = read_midi(args.midi_file)
    sounds = sounds_from_args(args, model_info_from_args(args))
    model = load_model_from_args(args)
    bank = sounds.bank
    knob_ccs = bank.knob_ccs if bank is not None else KNOB_CCS
    knobs = None  # found (or read from the cache) as play does, for a song that turns a knob
    mpe = bank.mpe if bank is not None else MpeSettings()
    messages = [e.data for e in events]
    if not args.no_knobs and (turns_knobs(messages, knob_ccs) or mpe.turns_knobs(messages)):
        assert config.cache.cache_dir is not None  # the CLI always has a cache folder
        knobs = knob_directions(model, cache_dir=config.cache.cache_dir / "knobs")
    result = render_midi_engine(model, args.midi_file, args.output, sounds, config, knobs=knobs)
    clipped = f", {result.clipped} samples clipped" if result.clipped else ""
    print(
        f"wrote {result.path}  {result.notes} notes, {result.duration_s:.2f} s at "
        f"{args.sample_rate} Hz, stereo, peak {result.peak:.3f}{clipped}"
    )
    print(f"drums   channel 10: {result.drums}")
    print("\n".join(channel_lines(result.channels)))
    print("\n".join(loudness_lines(result, args.sample_rate)))
    if result.normalisation is not None and not result.normalisation.applied:
        print(result.normalisation.note, file=sys.stderr)  # the file is not at the target
    return 0


def loudness_lines(result: EngineRender, sample_rate: int) -> list[str]:
    """The mix's loudness as measured (and, at live play's level, its limiter's share), and what
    normalisation did (its true-peak limiter's share, where it limited)."""
    measured = result.loudness
    frames = max(1, round(result.duration_s * sample_rate))
    done = result.normalisation
    mix = f"  mix: {measured.lufs:.1f} LUFS, true peak {measured.true_peak_dbtp:.1f} dBTP"
    if done is None:  # at live play's level, through its limiter
        mix += f", limiter on {100 * result.limited_frames / frames:.2f} % of frames"
    lines = [mix]
    if done is None:
        lines.append("  not normalised (--no-normalize)")
    elif done.applied:
        written = done.written
        lufs = written.lufs if written else measured.lufs + done.gain_db
        true_peak = written.true_peak_dbtp if written else measured.true_peak_dbtp + done.gain_db
        lines.append(f"  {done.note}: now {lufs:.1f} LUFS, true peak {true_peak:.1f} dBTP")
    return lines


def _run_magenta(args: argparse.Namespace) -> int:
    check_output_file(args.output)  # a bad output path or MIDI file fails before the model loads
    read_midi(args.midi_file)
    result = render_magenta(load_model_from_args(args), args.midi_file, args.output, seed=args.seed)
    outside = f"outside {MAGENTA_MIN_PITCH}-{MAGENTA_MAX_PITCH}"
    dropped = f", {result.dropped} {outside} dropped" if result.dropped else ""
    print(
        f"wrote {result.path}  {result.notes} notes{dropped}, {result.timbres} timbres, "
        f"{result.duration_s:.2f} s"
    )
    return 0
