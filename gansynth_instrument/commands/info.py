"""``gansynth-instrument info [MODEL]``: what an exported model holds (default: the model the
commands use without ``--model``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gansynth_instrument.live.compiled_mixer import mixer_in_use
from gansynth_instrument.model.knob_qualities import knob_summary
from gansynth_instrument.model.metadata import format_pitches
from gansynth_instrument.model.runtime import MODEL_ENV, available_backends, model_path, read_info


def run(args: argparse.Namespace) -> int:
    """Print what an exported model holds, its timbres included."""
    if args.model is None:
        path = model_path()
        which = f"; ${MODEL_ENV}" if os.environ.get(MODEL_ENV) else "; the bundled model"
        which += ", what commands use without --model"
    else:
        path, which = Path(args.model), ""
    info = read_info(path)
    rep = info.representation
    # A timbre's program as presets list shows it: PROGRAM in bank 0, else BANK:PROGRAM.
    timbres = ", ".join(
        t.name if t.program is None else f"{t.name} ({f'{t.bank}:' if t.bank else ''}{t.program})"
        for t in info.timbres
    )
    rows = [
        ("file", f"{path} ({path.stat().st_size / 2**20:.1f} MiB{which})"),
        ("source", f"{info.source or '?'} (step {info.source_step}, progress {info.progress:g})"),
        ("pitches", f"{format_pitches(info.pitches)} ({len(info.pitches)} MIDI notes)"),
        ("latent size", str(info.latent_size)),
        (
            "audio",
            f"{info.audio_length} samples at {info.sample_rate} Hz "
            f"({info.audio_length / info.sample_rate:g} s per note)",
        ),
        (
            "representation",
            f"{rep.data_type}, {rep.frames} frames × {rep.bins} bins, n_fft {rep.n_fft}, "
            f"hop {rep.hop_length}, ifreq {rep.ifreq}",
        ),
        ("timbres", f"{len(info.timbres)}: {timbres}" if timbres else "none stored"),
        ("digest", info.digest),
        ("family", info.family or "none (its presets record its digest)"),
        ("knobs", _knobs_text(info.digest, info.latent_size)),
        ("exporter", f"{info.exporter_version or '?'} (format {info.format_version})"),
        ("backends here", ", ".join(available_backends())),
        ("mixer here", mixer_in_use()),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _knobs_text(digest: str, latent_size: int) -> str:
    """What each timbre knob's + side does, as measured when the knobs were found."""
    from gansynth_instrument.presets.ganspace import cached_knobs  # onnx: only for this line

    knobs = cached_knobs(digest, latent_size)
    if knobs is None:
        return "not measured yet (the first play or presets new --knob finds them)"
    return knob_summary(knobs.qualities)
