"""Quality figures of a model: pitch accuracy, level and brightness, and whether timbres differ.

    python benchmarks/eval_model.py --model MODEL.onnx [--latents 8] [--seed 0]
                                    [--presets NAME ...] [--cents 30]
                                    [--data DATASET [--prefix fluid-]]

Pitch: for ``--latents`` random timbres (``random_latent(seed + i)``), every pitch of the model is
generated and its fundamental detected (``pitch_labels.detect_pitch``, YIN); the figure is the
fraction within ``--cents`` of the requested pitch (issue 16 asks >= 95 % at 30 cents), with
the octave errors (detected within half a semitone of a whole number of octaves away) and the
in-tune fraction at pitches 30-40, where this model family errs most. Then, per pitch with misses:
how many of the latents missed it and their median distance in semitones (``-`` for unpitched).

Level and brightness (``--data``: the dataset the model was trained on): for each instrument
timbre (the model's own timbres from its metadata, else the ``--prefix`` presets named after the
dataset's instruments), notes at 48, 60 and 72 are generated and turned into audio as the model
makes them (no post-processing), and compared with the training notes of that instrument at
those pitches: level = RMS in dB, model minus training notes (issue 16: within 3 dB);
brightness = the 4-8 kHz band's share of the note's energy in dB, model minus training notes
(within 6 dB). ``floor`` columns: the same for the training notes through the representation and
back, the best any model of this representation can score.

Timbre: the distance between two notes is the RMS difference, in dB, of their time-averaged
log-mel power spectra (the model's own channel 0). Printed: the mean distance between different
timbres at the same pitch, against that between two pitches a whole tone apart of the same timbre
(ratio > 1: timbres differ more than neighbouring notes of one timbre do). Timbres are
``--presets`` if given, else the random latents.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.model.runtime import Model, load_model
from gansynth_instrument.model.spectral import audio_to_spectrogram, spectrogram_to_audio
from gansynth_instrument.presets.preset_files import find_preset
from gansynth_instrument.training.dataset import Dataset, read_dataset
from gansynth_instrument.training.pitch_labels import detect_pitch, level_db
from gansynth_instrument.training.timbre_presets import SOUNDFONT_NAME, preset_name

DB_PER_NEPER_POWER = 10.0 / np.log(10.0)  # ln power → dB
TIMBRE_PITCHES = (36, 48, 60, 72)
LOW_PITCHES = (30, 40)
LEVEL_PITCHES = (48, 60, 72)
BRIGHT_BAND_HZ = (4000.0, 8000.0)
LEVEL_TOLERANCE_DB = 3.0
BRIGHT_TOLERANCE_DB = 6.0


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


def _octave_error(detected: float | None, pitch: int) -> bool:
    """Detected within half a semitone of a whole number (not 0) of octaves from ``pitch``."""
    if detected is None:
        return False
    octaves = round((detected - pitch) / 12)
    return octaves != 0 and abs(detected - pitch - 12 * octaves) <= 0.5


def pitch_score(model: Model, latents: list[np.ndarray], cents: float, batch_size: int) -> float:
    pitches = list(model.pitches)
    low = [i for i, p in enumerate(pitches) if LOW_PITCHES[0] <= p <= LOW_PITCHES[1]]
    print(
        f"{'latent':>6} {'within':>7} {'unpitched':>9} {'median |error| cents':>21} "
        f"{'octave errors':>13} {'within at 30-40':>15}"
    )
    hits = total = low_hits = low_total = octaves_low = octaves_all = 0
    misses: dict[int, list[float | None]] = {p: [] for p in pitches}
    for i, z in enumerate(latents):
        _, audio = _notes(model, z, pitches, batch_size)
        detected = [detect_pitch(note, model.sample_rate) for note in audio]
        pairs = list(zip(detected, pitches, strict=True))
        near = [d is not None and abs(d - p) * 100 <= cents for d, p in pairs]
        errors = [abs(d - p) * 100 for d, p in pairs if d is not None]
        octave = [_octave_error(d, p) for d, p in pairs]
        within, within_low = sum(near), sum(near[j] for j in low)
        hits, total = hits + within, total + len(pitches)
        low_hits, low_total = low_hits + within_low, low_total + len(low)
        octaves_all += sum(octave)
        octaves_low += sum(octave[j] for j in low)
        for (d, p), ok in zip(pairs, near, strict=True):
            if not ok:
                misses[p].append(None if d is None else d - p)
        median = f"{np.median(errors):.0f}" if errors else "-"
        print(
            f"{i:>6} {within:>3}/{len(pitches):<3} {len(pitches) - len(errors):>9} {median:>21} "
            f"{sum(octave):>13} {within_low:>11}/{len(low):<3}"
        )
    print(
        f"pitch: {hits}/{total} = {100 * hits / total:.1f} % within {cents:g} cents "
        f"(target >= 95 %); octave errors {octaves_all}, at {LOW_PITCHES[0]}-{LOW_PITCHES[1]} "
        f"{octaves_low} (target 0); within at {LOW_PITCHES[0]}-{LOW_PITCHES[1]}: "
        f"{100 * low_hits / max(low_total, 1):.1f} %"
    )
    print("misses by pitch (pitch: latents missed, median semitones off):")
    print("  " + (", ".join(_misses(p, off) for p, off in misses.items() if off) or "none"))
    return hits / total


def _misses(pitch: int, off: list[float | None]) -> str:
    pitched = [d for d in off if d is not None]
    median = f"{np.median(pitched):+.1f}" if pitched else "-"
    return f"{pitch}: {len(off)} {median}"


def _band_share_db(audio: np.ndarray, sample_rate: int) -> float:
    """Energy in BRIGHT_BAND_HZ relative to the note's whole energy, in dB."""
    power = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    hz = np.fft.rfftfreq(audio.size, 1.0 / sample_rate)
    band = power[(hz >= BRIGHT_BAND_HZ[0]) & (hz < BRIGHT_BAND_HZ[1])].sum()
    return float(10 * np.log10(max(band, 1e-30) / max(power.sum(), 1e-30)))


def _instrument_timbres(
    model: Model, data: Dataset, prefix: str
) -> list[tuple[str, str, np.ndarray]]:
    """(name, dataset instrument, latent) of the model's own timbres, else of the ``prefix``
    presets named after the dataset's instruments."""
    if model.info.timbres:
        return [(t.name, t.instrument, np.array(t.latent, np.float32)) for t in model.info.timbres]
    names = sorted(set(data.instruments))
    velocities = [int(m[2]) for m in map(SOUNDFONT_NAME.fullmatch, names) if m is not None]
    loudest = max(velocities, default=0)
    presets = [find_preset(preset_name(n, prefix, loudest)) for n in names]
    return [
        (p.name, n, p.latent_vector(model.latent_size)) for p, n in zip(presets, names, strict=True)
    ]


def level_and_brightness(model: Model, data: Dataset, prefix: str, batch_size: int) -> None:
    """The table of level and brightness against the training notes; ``floor``: the training
    notes themselves through the model's representation and back (what a model that made
    them exactly would score; the inverse rebuilds phase from instantaneous frequency)."""
    print(
        f"{'timbre':>24} {'level dB':>9} {'model-data':>10} {'floor':>6} "
        f"{'4-8 kHz dB':>10} {'model-data':>10} {'floor':>6}   "
        f"(pitches {', '.join(map(str, LEVEL_PITCHES))})"
    )
    level_ok = bright_ok = 0
    rep = model.info.representation
    timbres = _instrument_timbres(model, data, prefix)
    for name, instrument, z in timbres:
        rows = [
            r
            for r, (i, p) in enumerate(zip(data.instruments, data.pitches, strict=True))
            if i == instrument and p in LEVEL_PITCHES and p in model.pitches
        ]
        if not rows:
            print(f"{name:>24} no training notes of {instrument} at {LEVEL_PITCHES}")
            continue
        pitches = [int(data.pitches[r]) for r in rows]
        real = np.stack([data.note(r) for r in rows])
        _, made = _notes(model, z, pitches, batch_size)
        rebuilt = spectrogram_to_audio(
            audio_to_spectrogram(real, rep), rep, sample_rate=model.sample_rate
        )

        def level(notes: np.ndarray) -> float:
            return float(np.mean([level_db(a) for a in notes]))

        def bright(notes: np.ndarray) -> float:
            return float(np.mean([_band_share_db(a, model.sample_rate) for a in notes]))

        level_diff, bright_diff = level(made) - level(real), bright(made) - bright(real)
        level_ok += abs(level_diff) <= LEVEL_TOLERANCE_DB
        bright_ok += abs(bright_diff) <= BRIGHT_TOLERANCE_DB
        print(
            f"{name:>24} {level(made):>9.1f} {level_diff:>+10.1f} "
            f"{level(rebuilt) - level(real):>+6.1f} {bright(made):>10.1f} {bright_diff:>+10.1f} "
            f"{bright(rebuilt) - bright(real):>+6.1f}"
        )
    print(
        f"level: {level_ok}/{len(timbres)} timbres within {LEVEL_TOLERANCE_DB:g} dB of their "
        f"training notes; brightness: {bright_ok}/{len(timbres)} within "
        f"{BRIGHT_TOLERANCE_DB:g} dB"
    )


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
    parser.add_argument("--data", type=Path, help="training dataset: level and brightness")
    parser.add_argument(
        "--prefix", default="fluid-", help="preset names of --data's instruments (fluid-)"
    )
    args = parser.parse_args()
    model = load_model(args.model)
    latents = [random_latent(args.seed + i, model.latent_size) for i in range(args.latents)]
    print(f"model {args.model}: {len(model.pitches)} pitches, backend {model.backend}")
    pitch_score(model, latents, args.cents, args.batch_size)
    if args.data is not None:
        level_and_brightness(model, read_dataset(args.data), args.prefix, args.batch_size)
    timbres = (
        [find_preset(name).latent_vector(model.latent_size) for name in args.presets]
        if args.presets
        else latents
    )
    timbre_distances(model, timbres, args.batch_size)


if __name__ == "__main__":
    main()
