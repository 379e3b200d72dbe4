"""Offline: notes, hallucinations and interpolations written to WAV files.

These replace what course users did with ``gansynth_generate`` and the Pd patches:

- ``generate_notes``: random notes like ``gansynth_generate`` without ``--midi_file``.
- ``hallucinate``: the course's hallucination patch (overlapping enveloped notes on a slerp path).
- ``interpolate``: notes along the slerp path between two timbres (``gansynth_multi.pd``, the
  NSynth Super grid).

A MIDI file through the instrument is ``render_engine.render_midi_engine``; Magenta's own MIDI
mode is ``magenta.render_magenta``.

WAVs are float32, written atomically; the output location is checked before any model runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from gansynth_instrument.errors import GansynthError, OutputError
from gansynth_instrument.fileio import atomic_path, check_writable_dir
from gansynth_instrument.model.latent import random_latent, slerp
from gansynth_instrument.model.metadata import check_pitches
from gansynth_instrument.model.runtime import Model
from gansynth_instrument.notes.levels import (
    db_to_gain,
    level_gain,
    master_clip,
    normalize_peak,
    peak,
    reference_pitch,
)
from gansynth_instrument.notes.timbre import Timbre, blend_settings
from gansynth_instrument.presets.pad import PAD_SIZE_RANGE, grid_latents
from gansynth_instrument.presets.preset_files import find_preset

BATCH_SIZE = 8  # notes per model call: Magenta's released batch size, and a good CPU batch here


# --- shared pieces --------------------------------------------------------------------------------


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono float32 audio as a 32-bit float WAV (Magenta's format), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(
            tmp, np.asarray(audio, dtype=np.float32), sample_rate, subtype="FLOAT", format="WAV"
        )
    return path


def check_output_file(path: Path) -> Path:
    """Fail before rendering if ``path`` cannot be written (its folder is missing or read-only)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give a file name like {path / 'out.wav'}")
    check_writable_dir(path.parent if str(path.parent) else Path("."))
    return path


def generate_in_batches(
    model: Model, latents: np.ndarray, pitches: Sequence[int], *, what: str = "notes"
) -> np.ndarray:
    """Run the model in batches with a progress bar; float32 [N, audio_length] at the model rate."""
    check_pitches(model.pitches, pitches)
    latents = np.asarray(latents, dtype=np.float32)
    out = np.empty((len(pitches), model.audio_length), dtype=np.float32)
    with tqdm(total=len(pitches), desc=what, unit="note", disable=None, leave=False) as bar:
        for start in range(0, len(pitches), BATCH_SIZE):
            stop = min(start + BATCH_SIZE, len(pitches))
            out[start:stop] = model.generate(latents[start:stop], np.asarray(pitches[start:stop]))
            bar.update(stop - start)
    return out


def _timbre(spec: str, model: Model) -> Timbre:
    """A timbre given as a seed (digits; gain 0 dB) or a preset name/path (its gain and
    envelope; the model's own timbres among them, one made for another model is an error)."""
    if spec.isdigit():
        return Timbre(f"seed {spec}", random_latent(int(spec), model.latent_size))
    return Timbre.from_preset(find_preset(spec, model=model.info), model.latent_size)


def levelled_notes(model: Model, latents: np.ndarray, pitch: int, *, what: str) -> np.ndarray:
    """Notes of ``latents`` at ``pitch``, each levelled as the instrument levels its timbre
    (``levels.py``): scaled so that the same latent's note at the reference pitch peaks at
    ``levels.TARGET_PEAK_DBFS``. Unless ``pitch`` is the reference, that note is made too.

    Returns:
        float32 [len(latents), audio_length] at the model rate.
    """
    count = len(latents)
    reference = reference_pitch(model.pitches)
    if pitch == reference:
        made = generate_in_batches(model, latents, [pitch] * count, what=what)
    else:
        both = np.concatenate([latents, latents])
        made = generate_in_batches(model, both, [pitch] * count + [reference] * count, what=what)
    gains = np.array([level_gain(peak(note)) for note in made[-count:]], dtype=np.float32)
    return made[:count] * gains[:, None]


# --- generate -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenNote:
    """One file written by ``generate_notes`` or ``interpolate``."""

    path: Path
    pitch: int
    timbre: str


def generate_notes(
    model: Model,
    out_dir: Path,
    *,
    count: int | None = None,
    pitches: Sequence[int] | None = None,
    seed: int | None = None,
    preset: str | None = None,
    normalize: bool = False,
) -> list[WrittenNote]:
    """Random notes to ``out_dir/generated_{i}.wav``, like ``gansynth_generate`` (random mode).

    Timbres: ``count`` latents drawn like Magenta (``np.random.seed(seed)``, then normal draws), or
    the preset's timbre for every note. Pitches: the given list, cycled; else drawn uniformly from
    the model's pitches (Magenta weights them by training-set counts, which an exported model does
    not carry). ``count`` defaults to the number of pitches given, else 8. The notes are the model's
    raw 4 s output (no gain or envelope), as Magenta writes them; ``normalize``: each scaled to a
    peak of 1.0, as Magenta's MIDI renderer scales every note it mixes (there by its largest
    positive sample; here by its largest magnitude, so no sample passes full scale).
    """
    if count is None:
        count = len(pitches) if pitches else BATCH_SIZE
    if count < 1:
        raise GansynthError(f"--count must be at least 1, got {count}")
    timbre = _timbre(preset, model) if preset is not None else None
    check_pitches(model.pitches, pitches or [])
    check_writable_dir(Path(out_dir), create=True)
    rng = np.random.RandomState(seed)
    if timbre is not None:
        latents = np.repeat(timbre.latent[None, :], count, axis=0)
        labels = [timbre.name] * count
    else:
        latents = rng.normal(size=(count, model.latent_size)).astype(np.float32)
        labels = [
            f"random {i}" + ("" if seed is None else f" of seed {seed}") for i in range(count)
        ]
    if pitches:
        note_pitches = [int(pitches[i % len(pitches)]) for i in range(count)]
    else:
        note_pitches = [int(p) for p in rng.choice(model.pitches, size=count)]
    audio = generate_in_batches(model, latents, note_pitches)
    if normalize:
        audio = np.stack([normalize_peak(note) for note in audio])
    return [
        WrittenNote(
            write_wav(Path(out_dir) / f"generated_{i}.wav", audio[i], model.sample_rate),
            note_pitches[i],
            labels[i],
        )
        for i in range(count)
    ]


# --- interpolate ----------------------------------------------------------------------------------


def _write_staged(
    path: Path, note: np.ndarray, gain_db: float, master_db: float, sample_rate: int
) -> Path:
    """A levelled note at its preset gain, through the master bus (gain, limiter), to a WAV."""
    staged = note * np.float32(db_to_gain(gain_db))
    return write_wav(path, master_clip(staged, sample_rate, master_db), sample_rate)


def interpolate(
    model: Model,
    a: str,
    b: str,
    out_dir: Path,
    *,
    steps: int = 5,
    pitch: int = 60,
    gain_db: float = 0.0,
) -> list[WrittenNote]:
    """``steps`` notes at evenly spaced points (t = 0 … 1) on the slerp path from timbre a to b.

    ``a`` and ``b`` are preset names/paths or seeds. Files: ``interp_{i:02d}.wav``. A point worth
    keeping becomes a preset with ``presets new NAME --between A B --at T``. Staged as the
    instrument stages a full-velocity note (``levels.py``): each point levelled (its middle C would
    peak at ``levels.TARGET_PEAK_DBFS``, so the files compare by timbre, not by the model's
    loudness), the presets' gain interpolated as a morph step's, master ``gain_db``, the limiter.
    """
    if steps < 2:
        raise GansynthError(f"--steps must be at least 2 (the two ends), got {steps}")
    timbre_a = _timbre(a, model)
    timbre_b = _timbre(b, model)
    check_pitches(model.pitches, [pitch])
    check_writable_dir(Path(out_dir), create=True)
    ts = np.linspace(0.0, 1.0, steps)
    audio = levelled_notes(
        model, slerp(timbre_a.latent, timbre_b.latent, ts), pitch, what="interpolating"
    )
    return [
        WrittenNote(
            _write_staged(
                Path(out_dir) / f"interp_{i:02d}.wav",
                audio[i],
                blend_settings(timbre_a, timbre_b, float(t))[0],
                gain_db,
                model.sample_rate,
            ),
            pitch,
            f"{timbre_a.name} → {timbre_b.name} at t={t:.3f}",
        )
        for i, t in enumerate(ts)
    ]


def interpolate_grid(
    model: Model,
    corners: Sequence[str],
    out_dir: Path,
    *,
    size: int = 5,
    pitch: int = 60,
    gain_db: float = 0.0,
) -> list[WrittenNote]:
    """The course's interpolation in two dimensions: a ``size``×``size`` grid of notes between
    four timbres A, B, C, D at (x, y) = (0, 0), (1, 0), (0, 1), (1, 1), each point the bilinear
    slerp of the corners (the XY pad's grid, ``pad.py``). Files: ``grid_{row}_{column}.wav``,
    row = y index, column = x index. The corners are preset names/paths or seeds. Staged as
    ``interpolate`` stages its points, the corners' preset gains interpolated bilinearly."""
    if len(corners) != 4:
        raise GansynthError(f"--grid takes 4 timbres (A B C D), got {len(corners)}")
    lo, hi = PAD_SIZE_RANGE
    if not lo <= size <= hi:
        raise GansynthError(f"--size must be {lo}..{hi} points per side, got {size}")
    timbres = [_timbre(spec, model) for spec in corners]
    check_pitches(model.pitches, [pitch])
    check_writable_dir(Path(out_dir), create=True)
    latents = grid_latents([t.latent for t in timbres], size).reshape(size * size, -1)
    audio = levelled_notes(model, latents, pitch, what="grid")
    along = np.linspace(0.0, 1.0, size)
    a, b, c, d = (t.gain_db for t in timbres)
    bottom, top = a + along * (b - a), c + along * (d - c)  # by column, at y = 0 and y = 1
    gains = bottom[None, :] + along[:, None] * (top - bottom)[None, :]  # [row, column]
    names = " ".join(t.name for t in timbres)
    return [
        WrittenNote(
            _write_staged(
                Path(out_dir) / f"grid_{i // size}_{i % size}.wav",
                audio[i],
                float(gains[i // size, i % size]),
                gain_db,
                model.sample_rate,
            ),
            pitch,
            f"{names} at x={i % size / (size - 1):.3f} y={i // size / (size - 1):.3f}",
        )
        for i in range(size * size)
    ]


# --- hallucinate ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hallucination:
    """The course patch's settings (``gansynth_hallucination.pd`` sliders, same defaults).

    ``trim``/``attack``/``sustain``/``release`` are weights: like the patch's ``weightedsum``, they
    are normalised to share the note's 4 s (defaults → 0 / 1 / 2 / 1 s).
    """

    note_count: int = 5
    interp_steps: int = 5
    spacing_s: float = 2.0
    trim: float = 0.0
    attack: float = 0.5
    sustain: float = 1.0
    release: float = 0.5

    def check(self) -> None:
        if self.note_count < 1:
            raise GansynthError(f"--notes must be at least 1, got {self.note_count}")
        if self.interp_steps < 0:
            raise GansynthError(f"--steps must be 0 or more, got {self.interp_steps}")
        if not (math.isfinite(self.spacing_s) and self.spacing_s > 0):
            raise GansynthError(f"--spacing-s must be above 0, got {self.spacing_s}")
        weights = (self.trim, self.attack, self.sustain, self.release)
        if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
            raise GansynthError(
                f"--trim/--attack/--sustain/--release must be 0 or more, not all 0; got {weights}"
            )


def hallucination_envelope(settings: Hallucination, length: int) -> np.ndarray:
    """Zeros for the trim, a linear 0→1 attack, ones, a linear 1→0 release: ``length`` samples."""
    weights = np.array([settings.trim, settings.attack, settings.sustain, settings.release])
    bounds = np.round(np.cumsum(weights) / weights.sum() * length).astype(int)
    trim, attack, sustain = np.diff(np.concatenate([[0], bounds]))[:3]
    release = length - trim - attack - sustain
    return np.concatenate(
        [
            np.zeros(trim),
            np.linspace(0.0, 1.0, attack),
            np.ones(sustain),
            np.linspace(1.0, 0.0, release),
        ]
    )


def hallucination_path(keypoints: np.ndarray, interp_steps: int) -> np.ndarray:
    """Every keypoint with ``interp_steps`` evenly spaced slerp points between neighbours.

    n keypoints give n + (n-1)·steps latents, as in the course, but each gap is split into
    steps+1 equal parts: the course's version (t = step/steps) repeats every keypoint and ends on
    a duplicate, so two identical notes follow each other.
    """
    path = [keypoints[0][None, :]]
    ts = np.arange(1, interp_steps + 1) / (interp_steps + 1)
    for a, b in itertools.pairwise(keypoints):
        if interp_steps:
            path.append(slerp(a, b, ts))
        path.append(b[None, :])
    return np.concatenate(path).astype(np.float32)


def hallucinate(
    model: Model,
    out_path: Path,
    settings: Hallucination,
    *,
    pitch: int | None = None,
    seed: int | None = None,
    through: Sequence[str] = (),
    gain_db: float = 0.0,
) -> tuple[Path, int, float]:
    """The course's hallucination: a long evolving sound from many overlapping notes → WAV.

    Keypoint timbres are ``settings.note_count`` random latents (Magenta's ``generate_z``), or the
    presets/seeds in ``through``. Notes sit ``spacing_s`` apart, each shaped by the envelope. The
    pitch defaults to the course's 32 when the model has it, else the model's lowest pitch. Unlike
    the course, the result is exactly as long as its notes (the patch played it 4× too long,
    reading a byte count as samples, and padded 2 spacings of silence), and it is staged as the
    instrument stages full-velocity notes (``levels.py``) instead of Magenta's normalisation: each
    note levelled by its timbre, at its keypoints' preset gain (interpolated along the path as a
    morph step's), the sum through master ``gain_db`` and the limiter.

    Returns:
        (path, number of notes, duration in seconds).
    """
    settings.check()
    check_output_file(out_path)
    if pitch is None:
        pitch = 32 if 32 in model.pitches else min(model.pitches)
    if through:
        if len(through) < 2:
            raise GansynthError("--through needs 2 or more presets or seeds")
        timbres = [_timbre(t, model) for t in through]
        keypoints = np.stack([t.latent for t in timbres])
        keypoint_gains = np.array([t.gain_db for t in timbres])
    else:
        keypoints = np.random.RandomState(seed).normal(
            size=(settings.note_count, model.latent_size)
        )
        keypoint_gains = np.zeros(settings.note_count)
    latents = hallucination_path(keypoints.astype(np.float32), settings.interp_steps)
    # Keypoint k is path point k·(steps + 1); the points between take gains in between.
    at_keypoints = np.arange(len(keypoints)) * (settings.interp_steps + 1)
    gains = db_to_gain(np.interp(np.arange(len(latents)), at_keypoints, keypoint_gains))
    audio = levelled_notes(model, latents, pitch, what="hallucinating")
    spacing = round(settings.spacing_s * model.sample_rate)
    length = (len(latents) - 1) * spacing + model.audio_length
    envelope = hallucination_envelope(settings, model.audio_length).astype(np.float32)
    clip = np.zeros(length, dtype=np.float32)
    for i, (note, gain) in enumerate(zip(audio, gains, strict=True)):
        clip[i * spacing : i * spacing + len(note)] += note * envelope * np.float32(gain)
    clip = master_clip(clip, model.sample_rate, gain_db)
    return write_wav(out_path, clip, model.sample_rate), len(latents), length / model.sample_rate
