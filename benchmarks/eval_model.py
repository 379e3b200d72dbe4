"""Quality figures of a model: pitch accuracy, and whether different timbres sound different.

    python benchmarks/eval_model.py --model MODEL.onnx [--latents 8] [--seed 0]
                                    [--presets NAME ...] [--cents 30]

Pitch: for ``--latents`` random timbres (``random_latent(seed + i)``), every pitch of the model is
generated and its fundamental detected (``dataset.detect_pitch``, YIN); the figure is the
fraction within ``--cents`` of the requested pitch (issue 6 asks ≥ 90 % at 30 cents).

Timbre: the distance between two notes is the RMS difference, in dB, of their time-averaged
log-mel power spectra (the model's own channel 0). Printed: the mean distance between different
timbres at the same pitch, against that between two pitches a whole tone apart of the same timbre
(ratio > 1: timbres differ more than neighbouring notes of one timbre do). Timbres are
``--presets`` if given, else the random latents.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from gansynth_instrument.dataset import detect_pitch
from gansynth_instrument.latent import random_latent
from gansynth_instrument.model import Model, load_model
from gansynth_instrument.presets import find_preset
from gansynth_instrument.spectral import spectrogram_to_audio

DB_PER_NEPER_POWER = 10.0 / np.log(10.0)  # ln power → dB
TIMBRE_PITCHES = (36, 48, 60, 72)


def _notes(model: Model, z: np.ndarray, pitches: list[int], batch_size: int):
    """(spectrograms, audio) for one timbre at ``pitches``, in batches."""
    specs, audio = [], []
    for start in range(0, len(pitches), batch_size):
        part = pitches[start : start + batch_size]
        spec = model.generate_spectrogram(np.repeat(z[None], len(part), axis=0), part)
        specs.append(spec)
        audio.append(
            spectrogram_to_audio(spec, model.info.representation, sample_rate=model.sample_rate)
        )
    return np.concatenate(specs), np.concatenate(audio)


def pitch_score(model: Model, latents: list[np.ndarray], cents: float, batch_size: int) -> float:
    pitches = list(model.pitches)
    print(f"{'timbre':>6} {'within':>7} {'unpitched':>9} {'median |error| cents':>21}")
    hits = total = 0
    for i, z in enumerate(latents):
        _, audio = _notes(model, z, pitches, batch_size)
        detected = [detect_pitch(note, model.sample_rate) for note in audio]
        errors = [abs(d - p) * 100 for d, p in zip(detected, pitches, strict=True) if d is not None]
        within = sum(e <= cents for e in errors)
        hits, total = hits + within, total + len(pitches)
        median = f"{np.median(errors):.0f}" if errors else "-"
        print(f"{i:>6} {within:>3}/{len(pitches):<3} {len(pitches) - len(errors):>9} {median:>21}")
    print(f"pitch: {hits}/{total} = {100 * hits / total:.1f} % within {cents:g} cents")
    return hits / total


def timbre_distances(model: Model, timbres: list[np.ndarray], batch_size: int) -> None:
    centres = [p for p in TIMBRE_PITCHES if p in model.pitches and p + 2 in model.pitches]
    if not centres or len(timbres) < 2:
        print("timbre: needs >= 2 timbres and pitches p, p+2 in the model")
        return
    asked = sorted({q for p in centres for q in (p, p + 2)})
    profiles = []  # [timbre] → {pitch: mean log-mel power in dB}
    for z in timbres:
        spec, _ = _notes(model, z, asked, batch_size)
        means = spec[..., 0].mean(axis=1) * DB_PER_NEPER_POWER
        profiles.append(dict(zip(asked, means, strict=True)))

    def rms(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sqrt(np.mean((a - b) ** 2)))

    across = [rms(a[p], b[p]) for p in centres for a, b in itertools.combinations(profiles, 2)]
    within = [rms(t[p], t[p + 2]) for p in centres for t in profiles]
    print(
        f"timbre: different timbres, same pitch {np.mean(across):.2f} dB; same timbre, a whole "
        f"tone apart {np.mean(within):.2f} dB; ratio {np.mean(across) / np.mean(within):.2f} "
        f"({len(timbres)} timbres, pitches {', '.join(map(str, centres))})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--latents", type=int, default=8, help="random timbres for pitch (8)")
    parser.add_argument("--seed", type=int, default=0, help="first latent seed (0)")
    parser.add_argument("--presets", nargs="+", help="timbres for the distance figure")
    parser.add_argument("--cents", type=float, default=30.0, help="pitch tolerance (30)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    model = load_model(args.model)
    latents = [random_latent(args.seed + i, model.latent_size) for i in range(args.latents)]
    print(f"model {args.model}: {len(model.pitches)} pitches, backend {model.backend}")
    pitch_score(model, latents, args.cents, args.batch_size)
    timbres = (
        [find_preset(name).latent_vector(model.latent_size) for name in args.presets]
        if args.presets
        else latents
    )
    timbre_distances(model, timbres, args.batch_size)


if __name__ == "__main__":
    main()
