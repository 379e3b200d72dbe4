"""Sample packs: presets and a bank's morph path baked into SFZ, DecentSampler and Bitwig/PreSonus
``.multisample`` instruments, so any sampler plays the instrument's timbres.

Each instrument (``bake_plan``) is ``DIR/NAME.sfz``, ``DIR/NAME.dspreset`` and/or
``DIR/NAME.multisample`` (``sampler_formats``) with its samples in ``DIR/NAME/``:

- one WAV per model pitch, the cache's own note (never pitch-shifted), written losslessly: the
  cache holds int16 with a per-note scale, so the WAV holds those integers and the region's
  volume carries the scale times the timbre's levelling (``note.level``, levels.py) times the
  note's level (``engine.note_amplitude`` at velocity 127); the preset's attack and release are
  the envelope;
- a looping preset's samples are ``note.loop_note``'s layout (the crossfaded seam live play
  loops), looped while the key is held.

Notes come from the note cache (made once, reused). The pack is written into a hidden folder in
``DIR`` and renamed into place at the end, samples before the instrument files that name them;
a failed or interrupted bake removes that folder and leaves ``DIR`` as it was.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from gansynth_instrument.errors import GansynthError, OutputError
from gansynth_instrument.fileio import check_writable_dir, disk_full_error, no_space_left
from gansynth_instrument.live.engine import note_amplitude
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.disk_store import DEFAULT_CACHE_DIR
from gansynth_instrument.notes.levels import DEFAULT_VELOCITY_EXPONENT
from gansynth_instrument.notes.make import NoteModel
from gansynth_instrument.notes.note import Note, loop_note
from gansynth_instrument.notes.note_queue import Priority
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.offline.bake_plan import (
    Instrument,
    Sample,
    bake_instruments,
    key_ranges,
    velocity_curve,
)
from gansynth_instrument.offline.sampler_formats import dspreset_text, sfz_text, write_multisample
from gansynth_instrument.presets.bank import Bank
from gansynth_instrument.presets.preset import Preset

FORMATS = ("sfz", "dspreset", "multisample")
DEFAULT_FORMATS = ("sfz", "dspreset")
RATES = (48000, 44100)
BIT_DEPTHS = (16, 24)
DEFAULT_BIT_DEPTH = 24
WAIT_S = 600.0  # per timbre; only bounds a hang (a full-size model on a slow CPU)
INT16_SCALE = 32768.0  # a 16-bit WAV sample of value v plays as v / 32768
_STAGING_PREFIX = ".bake-"


@dataclass(frozen=True)
class BakeResult:
    """What ``bake`` wrote."""

    files: tuple[Path, ...]  # instrument files, in the order baked
    instruments: int
    samples: int


def check_settings(formats: Sequence[str], rate: int, bit_depth: int, out_dir: Path) -> None:
    """One-line errors for values a bake does not offer and an output folder it cannot use,
    before any work (the command calls it before loading the model)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise GansynthError(
            f"--format {','.join(formats)}: choose from {', '.join(FORMATS)} (comma-separated)"
        )
    if rate not in RATES:
        raise GansynthError(f"--rate {rate} is not offered (choose {' or '.join(map(str, RATES))})")
    if bit_depth not in BIT_DEPTHS:
        raise GansynthError(
            f"--bit-depth {bit_depth} is not offered (choose {' or '.join(map(str, BIT_DEPTHS))})"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is a file, not a folder for the pack")
    if out_dir.is_dir():
        check_writable_dir(out_dir)


def bake(
    model: NoteModel,
    out_dir: Path,
    presets: Sequence[Preset] = (),
    bank: Bank | None = None,
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    rate: int = RATES[0],
    bit_depth: int = DEFAULT_BIT_DEPTH,
    velocity_exponent: float = DEFAULT_VELOCITY_EXPONENT,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    progress: bool = True,
) -> BakeResult:
    """Bake ``presets`` and ``bank`` (``bake_instruments``) into a sample pack in ``out_dir``
    (created if missing); see the module docstring. Replaces earlier packs of the same names;
    nothing else in ``out_dir`` changes."""
    check_settings(formats, rate, bit_depth, out_dir)
    if velocity_exponent < 0:
        raise GansynthError(f"velocity exponent must be 0 or above, got {velocity_exponent}")
    instruments = bake_instruments(presets, bank, model.latent_size)
    out_dir = Path(out_dir)
    check_writable_dir(out_dir, create=True)
    for instrument in instruments:
        _check_replaceable(out_dir, instrument.name, formats)
    ranges = key_ranges(model.pitches)
    try:
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=out_dir))
    except OSError as err:
        raise OutputError(f"{out_dir}: cannot write the pack ({err.strerror})") from None
    try:
        with NoteCache(model, rate, cache_dir=cache_dir) as cache:
            made = _make_samples(
                cache, staging, instruments, ranges, bit_depth, progress, model.pitches
            )
        for instrument in instruments:
            samples = made[instrument.name]
            curve = velocity_curve(instrument.steps[0].timbre, velocity_exponent)
            if "sfz" in formats:
                text = sfz_text(instrument, samples, curve)
                (staging / f"{instrument.name}.sfz").write_text(text, encoding="utf-8")
            if "dspreset" in formats:
                text = dspreset_text(instrument, samples, curve)
                (staging / f"{instrument.name}.dspreset").write_text(text, encoding="utf-8")
            if "multisample" in formats:
                write_multisample(staging / f"{instrument.name}.multisample", instrument, samples)
        files = _commit(staging, out_dir, [i.name for i in instruments], formats)
    except (OSError, sf.SoundFileError) as err:
        if isinstance(err, sf.SoundFileError) and no_space_left(staging):
            err = disk_full_error()  # libsndfile's own words for it are "System error."
        reason = getattr(err, "strerror", None) or str(err)
        raise OutputError(f"{out_dir}: cannot write the pack ({reason})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    count = sum(len(step) for steps in made.values() for step in steps)
    return BakeResult(tuple(files), len(instruments), count)


def _check_replaceable(out_dir: Path, name: str, formats: Sequence[str]) -> None:
    """An earlier pack of this name may be replaced; anything else in the way is an error."""
    folder = out_dir / name
    if folder.exists() and not (
        folder.is_dir() and all(p.suffix == ".wav" for p in folder.iterdir())
    ):
        raise OutputError(f"{folder}: exists and is not a baked sample folder; move it away")
    for fmt in formats:
        target = out_dir / f"{name}.{fmt}"
        if target.is_dir():
            raise OutputError(f"{target}: is a folder; move it away")


def _make_samples(
    cache: NoteCache,
    staging: Path,
    instruments: Sequence[Instrument],
    ranges: dict[int, tuple[int, int]],
    bit_depth: int,
    progress: bool,
    pitches: Sequence[int],
) -> dict[str, list[list[Sample]]]:
    """Every step's notes from the cache (the next timbre renders while one is written), as
    WAVs in ``staging/NAME/``; the samples per instrument, per step."""
    jobs = [(inst, s, step.timbre) for inst in instruments for s, step in enumerate(inst.steps)]
    made: dict[str, list[list[Sample]]] = {inst.name: [] for inst in instruments}
    total = len(jobs) * len(pitches)
    with tqdm(total=total, unit="note", desc="bake", disable=not progress, leave=False) as bar:
        if jobs:
            cache.request(jobs[0][2].latent, pitches, Priority.NEAR)
        for j, (inst, s, timbre) in enumerate(jobs):
            if j + 1 < len(jobs):
                cache.request(jobs[j + 1][2].latent, pitches, Priority.BACKGROUND)
            done = bar.n
            deadline = time.monotonic() + WAIT_S
            while not cache.wait(timbre.key, pitches, 0.25):
                bar.update(done + cache.progress(timbre.key)[0] - bar.n)
                if time.monotonic() > deadline:
                    raise GansynthError(f"notes of '{timbre.name}' not made within {WAIT_S:.0f} s")
            bar.update(done + len(pitches) - bar.n)
            folder = staging / inst.name
            folder.mkdir(exist_ok=True)
            prefix = f"step{s:02d}_" if len(inst.steps) > 1 else ""
            samples = []
            for pitch in pitches:
                note = _cached_note(cache, timbre, pitch)
                name = f"{inst.name}/{prefix}{pitch:03d}.wav"
                samples.append(_write_sample(staging / name, name, note, timbre, ranges, bit_depth))
            made[inst.name].append(samples)
    return made


def _cached_note(cache: NoteCache, timbre: Timbre, pitch: int) -> Note:
    """A note that was made; read back from the disk cache if the memory cap dropped it."""
    deadline = time.monotonic() + WAIT_S
    while (note := cache.lookup(timbre.key, pitch)) is None:
        cache.request(timbre.latent, [pitch], Priority.WAITING)
        if not cache.wait(timbre.key, [pitch], max(0.0, deadline - time.monotonic())):
            raise GansynthError(f"note {pitch} of '{timbre.name}' not made within {WAIT_S:.0f} s")
    return note


def _write_sample(
    path: Path,
    name: str,
    note: Note,
    timbre: Timbre,
    ranges: dict[int, tuple[int, int]],
    bit_depth: int,
) -> Sample:
    """The note's int16 samples as they are (a looping timbre's in ``loop_note``'s layout)."""
    loop = None
    pcm = note.pcm
    if timbre.loop:
        looped = loop_note(note)
        pcm, loop = looped.pcm, (looped.loop_start, looped.loop_end - 1)
    if bit_depth == 16:
        sf.write(path, pcm, note.sample_rate, subtype="PCM_16", format="WAV")
    else:  # soundfile keeps an int32's top 24 bits: the int16 value, 8 zero bits below
        data = pcm.astype(np.int32) << 16
        sf.write(path, data, note.sample_rate, subtype="PCM_24", format="WAV")
    level = note.gain * note.level * INT16_SCALE * note_amplitude(timbre, 127)
    return Sample(name, note.pitch, ranges[note.pitch], 20.0 * math.log10(level), loop)


def _commit(
    staging: Path, out_dir: Path, names: Sequence[str], formats: Sequence[str]
) -> list[Path]:
    """Move the staged pack into ``out_dir``: sample folders first (an earlier pack's folder is
    swapped out and deleted), then the instrument files that name them, each by one rename."""
    for name in names:
        target = out_dir / name
        if target.exists():
            os.rename(target, staging / f".old-{name}")
        os.rename(staging / name, target)
    files = []
    for name in names:
        for fmt in formats:
            os.replace(staging / f"{name}.{fmt}", out_dir / f"{name}.{fmt}")
            files.append(out_dir / f"{name}.{fmt}")
    return files
