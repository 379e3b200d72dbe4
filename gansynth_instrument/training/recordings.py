"""Recordings and one-shots → labelled 4 s, 16 kHz note WAVs (``dataset chop``/``pad``), and
those WAVs read back (``dataset make``).

The course's ``chop``/``pad`` label every note pitch 32 and keep silence; here each note is
labelled by its detected fundamental (``pitch_labels``), silent and unpitched notes are dropped,
and each step returns what it kept and dropped, and why. The WAVs are named
``<instrument>_<pitch>.wav`` (16-bit, 16 kHz, mono, 4 s), the course's naming, so ``make`` (or
the course's own make_dataset.py) reads them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile
import soxr
from tqdm import tqdm

from gansynth_instrument.errors import DatasetError
from gansynth_instrument.fileio import atomic_path, check_writable_dir
from gansynth_instrument.training.dataset import (
    AUDIO_SUFFIXES,
    NOTE_NAME,
    NOTE_SAMPLES,
    NSYNTH_PITCHES,
    SAMPLE_RATE,
    Note,
    Summary,
)
from gansynth_instrument.training.pitch_labels import label_note


def load_audio(path: Path) -> np.ndarray:
    """Any file libsndfile reads → float32 mono at 16 kHz (channels averaged, soxr resampling)."""
    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as err:
        raise DatasetError(f"{path}: cannot read audio ({err})") from None
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        soundfile.write(tmp, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")


def _audio_files(in_dir: Path, recursive: bool) -> list[Path]:
    if not in_dir.is_dir():
        raise DatasetError(f"{in_dir}: no such folder")
    pattern = "**/*" if recursive else "*"
    files = sorted(
        p for p in in_dir.glob(pattern) if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
    )
    if not files:
        raise DatasetError(f"{in_dir}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return files


def _slug(text: str) -> str:
    """A file-name-safe instrument name (no '_' so ``<instrument>_<pitch>`` parses back)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "sound"


def chop(
    in_dir: Path,
    out_dir: Path,
    *,
    hop_samples: int = NOTE_SAMPLES,
    silence_db: float = -50.0,
    pitch_range: tuple[int, int] = NSYNTH_PITCHES,
    fixed_pitch: int | None = None,
) -> Summary:
    """Cut recordings into 4 s windows every ``hop_samples``; keep the pitched, non-silent ones.

    As the course's chop.py, the last partial window is dropped. Window k of ``song.wav``
    becomes ``song-<k>_<pitch>.wav``.
    """
    if hop_samples < 1:
        raise DatasetError(f"--hop-s must be positive, got {hop_samples / SAMPLE_RATE:g} s")
    files = _audio_files(in_dir, recursive=False)
    check_writable_dir(out_dir, create=True)
    summary = Summary()
    for path in tqdm(files, desc="chop", unit="file", delay=1.0):
        audio = load_audio(path)
        starts = range(0, audio.size - NOTE_SAMPLES + 1, hop_samples)
        if not starts:
            summary.dropped["file shorter than 4 s"] += 1
        for k, start in enumerate(starts):
            window = audio[start : start + NOTE_SAMPLES]
            pitch, why = label_note(
                window, silence_db=silence_db, pitch_range=pitch_range, fixed_pitch=fixed_pitch
            )
            if why is not None:
                summary.dropped[why] += 1
                continue
            _write_wav(out_dir / f"{_slug(path.stem)}-{k}_{pitch}.wav", window)
            summary.kept += 1
    return summary


def pad(
    in_dir: Path,
    out_dir: Path,
    *,
    silence_db: float = -50.0,
    pitch_range: tuple[int, int] = NSYNTH_PITCHES,
    fixed_pitch: int | None = None,
) -> Summary:
    """One-shots (searched recursively) → peak-normalised, zero-padded or cut to 4 s.

    The silence rule is applied before normalising. ``kit/snare.wav`` becomes
    ``kit-snare_<pitch>.wav``.
    """
    files = _audio_files(in_dir, recursive=True)
    check_writable_dir(out_dir, create=True)
    summary = Summary()
    for path in tqdm(files, desc="pad", unit="file", delay=1.0):
        audio = load_audio(path)[:NOTE_SAMPLES]
        note = np.zeros(NOTE_SAMPLES, np.float32)
        note[: audio.size] = audio
        pitch, why = label_note(
            note[: max(audio.size, 1)],
            silence_db=silence_db,
            pitch_range=pitch_range,
            fixed_pitch=fixed_pitch,
        )
        if why is not None:
            summary.dropped[why] += 1
            continue
        note /= np.abs(note).max()
        name = _slug("-".join(path.relative_to(in_dir).with_suffix("").parts))
        _write_wav(out_dir / f"{name}_{pitch}.wav", note)
        summary.kept += 1
    return summary


def read_note_files(in_dir: Path) -> list[Note]:
    """``<instrument>_<pitch>.wav`` files, each checked to be 16 kHz mono and exactly 4 s."""
    if not in_dir.is_dir():
        raise DatasetError(f"{in_dir}: no such folder")
    notes = []
    paths = sorted(p for p in in_dir.iterdir() if p.suffix.lower() == ".wav")
    for path in tqdm(paths, desc="reading notes", unit="file", delay=1.0):
        match = NOTE_NAME.match(path.name)
        if not match:
            raise DatasetError(f"{path}: name is not <instrument>_<pitch>.wav")
        try:
            info = soundfile.info(path)
        except (soundfile.LibsndfileError, RuntimeError) as err:
            raise DatasetError(f"{path}: cannot read audio ({err})") from None
        if (info.samplerate, info.channels, info.frames) != (SAMPLE_RATE, 1, NOTE_SAMPLES):
            raise DatasetError(
                f"{path}: {info.samplerate} Hz, {info.channels} channel(s), {info.frames} frames; "
                f"a note must be {SAMPLE_RATE} Hz mono with exactly {NOTE_SAMPLES} frames (4 s; "
                "'dataset chop' or 'dataset pad' make such files)"
            )
        pitch = int(match.group(2))
        if pitch > 127:
            raise DatasetError(f"{path}: pitch {pitch} in the name is not a MIDI note (0..127)")
        audio, _ = soundfile.read(path, dtype="float32")
        notes.append(Note(instrument=match.group(1), pitch=pitch, audio=audio))
    if not notes:
        raise DatasetError(f"{in_dir}: no <instrument>_<pitch>.wav notes")
    return notes
