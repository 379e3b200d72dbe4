"""Sample packs: presets and a bank's morph path baked into SFZ, DecentSampler and Bitwig/PreSonus
``.multisample`` instruments.

A pack puts the instrument's timbres into any sampler. Each instrument is ``DIR/NAME.sfz``,
``DIR/NAME.dspreset`` and/or ``DIR/NAME.multisample`` with its samples in ``DIR/NAME/`` (a
``.multisample`` is a ZIP that holds its own copy of them, stored uncompressed beside its
``multisample.xml``, as Bitwig Studio and Studio One read it):

- one WAV per model pitch, the cache's own note (never pitch-shifted), written losslessly: the
  cache holds int16 with a per-note scale, so the WAV holds those integers and the region's
  volume carries the scale times the timbre's levelling (``note.level``, levels.py) times the
  note's level (``engine.note_amplitude`` at velocity 127);
- each sample plays the keys nearest to it, as the engine does (ties go down, at most
  ``DEFAULT_MAX_SHIFT_SEMITONES`` away); the preset's attack and release are the envelope;
- velocity → amplitude is the instrument's curve: SFZ ``amp_velcurve_N`` for every velocity;
  DecentSampler tracks velocity only linearly, so velocity layers add the rest (within
  ``DS_VELOCITY_TOLERANCE_DB``);
- a looping preset's samples are ``voices.loop_note``'s layout (the crossfaded seam live play
  loops), looped while the key is held (SFZ ``loop_sustain``);
- a bank's morph path is one instrument with a group per morph step, crossfaded by the bank's
  morph controller as the engine does (linear gains, neighbouring steps): SFZ ``xfin_locc`` /
  ``xfout_locc``, DecentSampler group-volume bindings, ``.multisample`` select ranges with fades
  (the sampler's Select dimension, which the user maps to the controller);
- ``.multisample`` maps keys and velocities only: the envelope and the velocity curve are the
  sampler's own settings.

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
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from gansynth_instrument.errors import GansynthError, OutputError
from gansynth_instrument.fileio import check_writable_dir, disk_full_error, no_space_left
from gansynth_instrument.live.engine import (
    DEFAULT_MAX_SHIFT_SEMITONES,
    DEFAULT_VELOCITY_EXPONENT,
    note_amplitude,
)
from gansynth_instrument.notes.cache import NoteCache, Priority
from gansynth_instrument.notes.disk_store import DEFAULT_CACHE_DIR
from gansynth_instrument.notes.make import NoteModel
from gansynth_instrument.notes.note import Note, loop_note
from gansynth_instrument.notes.timbre import Timbre, morph_steps
from gansynth_instrument.presets.preset import Bank, Preset
from gansynth_instrument.presets.preset_files import bank_preset

FORMATS = ("sfz", "dspreset", "multisample")
DEFAULT_FORMATS = ("sfz", "dspreset")
RATES = (48000, 44100)
BIT_DEPTHS = (16, 24)
DEFAULT_BIT_DEPTH = 24
DS_VELOCITY_TOLERANCE_DB = 0.5  # DecentSampler's velocity layers stay this close to the curve
MORPH_SUFFIX = "-morph"
WAIT_S = 600.0  # per timbre; only bounds a hang (a full-size model on a slow CPU)
INT16_SCALE = 32768.0  # a 16-bit WAV sample of value v plays as v / 32768
_STAGING_PREFIX = ".bake-"


@dataclass(frozen=True)
class Step:
    """One timbre of an instrument; in a morph, the CC values where it fades in, is at full level
    and fades out (``None`` at an end of the path)."""

    timbre: Timbre
    fade_in: tuple[int, int] | None = None
    fade_out: tuple[int, int] | None = None


@dataclass(frozen=True)
class Instrument:
    """What becomes ``NAME.sfz`` / ``NAME.dspreset``: a preset (one step) or a morph path."""

    name: str
    steps: tuple[Step, ...]
    cc: int | None = None  # the morph controller


@dataclass(frozen=True)
class Sample:
    """One WAV of an instrument and where it plays."""

    path: str  # relative to the pack folder, "/"-separated
    pitch: int
    keys: tuple[int, int]
    volume_db: float  # the WAV's content → the instrument's level at velocity 127
    loop: tuple[int, int] | None  # first and last frame of the loop (both played)


@dataclass(frozen=True)
class BakeResult:
    """What ``bake`` wrote."""

    files: tuple[Path, ...]  # instrument files, in the order baked
    instruments: int
    samples: int


def bake_instruments(
    presets: Sequence[Preset], bank: Bank | None, latent_size: int
) -> list[Instrument]:
    """The instruments a bake makes: one per preset (given, then the bank's), then the bank's
    morph path as one instrument named ``BANK-morph``. Names must differ."""
    chosen = list(presets)
    if bank is not None:
        chosen += [bank_preset(bank, name) for name in bank.preset_names()]
    unique = list({p.name: p for p in chosen}.values())
    instruments = [Instrument(p.name, (Step(Timbre.from_preset(p, latent_size)),)) for p in unique]
    if bank is not None and len(bank.morph_path) >= 2:
        path = [Timbre.from_preset(bank_preset(bank, n), latent_size) for n in bank.morph_path]
        instruments.append(
            morph_instrument(
                bank.name + MORPH_SUFFIX, morph_steps(path, bank.morph_steps), bank.morph_cc
            )
        )
    names = [i.name for i in instruments]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash is not None:
        raise GansynthError(f"two instruments would be named '{clash}'; rename one preset")
    if not instruments:
        raise GansynthError("nothing to bake: name presets or a --bank")
    return instruments


def morph_instrument(name: str, steps: Sequence[Timbre], cc: int) -> Instrument:
    """Morph steps as crossfade layers: step i is full at CC ≈ i·127/(n-1) and fades linearly
    into its neighbours, so at every controller value the gains sum to one, as in the engine."""
    centres = [round(i * 127 / (len(steps) - 1)) for i in range(len(steps))]
    return Instrument(
        name,
        tuple(
            Step(
                timbre,
                (centres[i - 1], centres[i]) if i > 0 else None,
                (centres[i], centres[i + 1]) if i < len(steps) - 1 else None,
            )
            for i, timbre in enumerate(steps)
        ),
        cc,
    )


def key_ranges(
    pitches: Sequence[int], max_shift: int = DEFAULT_MAX_SHIFT_SEMITONES
) -> dict[int, tuple[int, int]]:
    """The keys each model pitch plays: the nearest (ties to the lower), at most ``max_shift``
    semitones away, as ``Engine.model_pitch`` chooses."""
    ordered = sorted(pitches)
    ranges = {}
    for i, pitch in enumerate(ordered):
        lo = (
            pitch - max_shift
            if i == 0
            else max((ordered[i - 1] + pitch) // 2 + 1, pitch - max_shift)
        )
        hi = (
            pitch + max_shift
            if i == len(ordered) - 1
            else min((pitch + ordered[i + 1]) // 2, pitch + max_shift)
        )
        ranges[pitch] = (max(0, lo), min(127, hi))
    return ranges


def velocity_curve(timbre: Timbre, exponent: float) -> list[float]:
    """Amplitude at velocities 0..127 relative to velocity 127 (the sample's own level)."""
    full = note_amplitude(timbre, 127, exponent)
    return [note_amplitude(timbre, v, exponent) / full for v in range(128)]


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


# --- SFZ ------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.6g}"


def sfz_text(
    instrument: Instrument, steps: Sequence[Sequence[Sample]], curve: Sequence[float]
) -> str:
    """The instrument as SFZ: the velocity curve in ``<global>``, a ``<group>`` per step
    (envelope, crossfade), a ``<region>`` per sample."""
    lines = [
        f"// {instrument.name}: baked by gansynth-instrument",
        "<global>",
        "amp_veltrack=100",
    ]
    points = [f"amp_velcurve_{v}={_number(curve[v])}" for v in range(1, 128)]
    lines += [" ".join(points[i : i + 8]) for i in range(0, len(points), 8)]
    if instrument.cc is not None:
        lines.append("xf_cccurve=gain")
    for step, samples in zip(instrument.steps, steps, strict=True):
        group = [
            "<group>",
            f"ampeg_attack={_number(step.timbre.attack_s)}",
            f"ampeg_release={_number(step.timbre.release_s)}",
        ]
        cc = instrument.cc
        if step.fade_in is not None:
            group.append(f"xfin_locc{cc}={step.fade_in[0]} xfin_hicc{cc}={step.fade_in[1]}")
        if step.fade_out is not None:
            group.append(f"xfout_locc{cc}={step.fade_out[0]} xfout_hicc{cc}={step.fade_out[1]}")
        lines.append(" ".join(group))
        for sample in samples:
            region = [
                f"<region> sample={sample.path}",
                f"pitch_keycenter={sample.pitch} lokey={sample.keys[0]} hikey={sample.keys[1]}",
                f"volume={sample.volume_db:.4f}",
            ]
            if sample.loop is not None:
                region.append(
                    f"loop_mode=loop_sustain loop_start={sample.loop[0]} loop_end={sample.loop[1]}"
                )
            lines.append(" ".join(region))
    return "\n".join(lines) + "\n"


# --- DecentSampler --------------------------------------------------------------------------------


def ds_velocity_layers(
    curve: Sequence[float], tolerance_db: float = DS_VELOCITY_TOLERANCE_DB
) -> list[tuple[int, int, float]]:
    """(lowest, highest velocity, gain) layers: DecentSampler's linear velocity tracking (gain
    v/127) times the layer's gain stays within ``tolerance_db`` of ``curve`` at every velocity."""
    extra = [curve[v] * 127 / v for v in range(1, 128)]  # what linear tracking leaves out
    layers = []
    lo = 1
    while lo <= 127:
        hi = lo
        while hi < 127:
            span = extra[lo - 1 : hi + 1]
            if 20 * math.log10(max(span) / min(span)) > 2 * tolerance_db:
                break
            hi += 1
        span = extra[lo - 1 : hi]
        layers.append((lo, hi, math.sqrt(max(span) * min(span))))
        lo = hi + 1
    return layers


def _fade_gain(step: Step, value: int) -> float:
    """The linear crossfade gain of a step at a controller value (SFZ's ``xf_cccurve=gain``)."""
    gain = 1.0
    if step.fade_in is not None:
        lo, hi = step.fade_in
        gain *= min(1.0, max(0.0, (value - lo) / (hi - lo)))
    if step.fade_out is not None:
        lo, hi = step.fade_out
        gain *= min(1.0, max(0.0, (hi - value) / (hi - lo)))
    return gain


def dspreset_text(
    instrument: Instrument, steps: Sequence[Sequence[Sample]], curve: Sequence[float]
) -> str:
    """The instrument as a DecentSampler preset: a ``<group>`` per step with linear envelope
    curves (as the engine's), velocity layers per sample, and for a morph a CC binding per group
    that sets its volume to the crossfade gain."""
    root = ET.Element("DecentSampler", minVersion="1.0.0")
    groups = ET.SubElement(
        root, "groups", attackCurve="0", releaseCurve="0", decay="0", sustain="1"
    )
    layers = ds_velocity_layers(curve)
    for step, samples in zip(instrument.steps, steps, strict=True):
        group = ET.SubElement(
            groups,
            "group",
            attack=_number(step.timbre.attack_s),
            release=_number(step.timbre.release_s),
            ampVelTrack="1",
            volume=_number(_fade_gain(step, 0)),
        )
        for sample in samples:
            for lo, hi, gain in layers:
                attrs = {
                    "path": sample.path,
                    "rootNote": str(sample.pitch),
                    "loNote": str(sample.keys[0]),
                    "hiNote": str(sample.keys[1]),
                    "loVel": str(lo),
                    "hiVel": str(hi),
                    "volume": f"{sample.volume_db + 20 * math.log10(gain):.4f}dB",
                }
                if sample.loop is not None:
                    attrs |= {
                        "loopStart": str(sample.loop[0]),
                        "loopEnd": str(sample.loop[1]),
                        "loopEnabled": "true",
                    }
                ET.SubElement(group, "sample", attrs)
    if instrument.cc is not None:
        cc = ET.SubElement(ET.SubElement(root, "midi"), "cc", number=str(instrument.cc))
        for position, step in enumerate(instrument.steps):
            corners = {0, 127} | {v for fade in (step.fade_in, step.fade_out) if fade for v in fade}
            table = ";".join(f"{v},{_number(_fade_gain(step, v))}" for v in sorted(corners))
            ET.SubElement(
                cc,
                "binding",
                type="amp",
                level="group",
                position=str(position),
                parameter="AMP_VOLUME",
                translation="table",
                translationTable=table,
            )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- Bitwig / PreSonus .multisample ---------------------------------------------------------------


def multisample_xml(instrument: Instrument, steps: Sequence[Sequence[Sample]]) -> str:
    """The instrument as ``multisample.xml``: a group per step, a ``<sample>`` per WAV with its
    keys, every velocity, and for a morph the step's crossfade as its select range."""
    root = ET.Element("multisample", name=instrument.name)
    ET.SubElement(root, "generator").text = "gansynth-instrument"
    ET.SubElement(root, "category").text = ""
    ET.SubElement(root, "creator").text = ""
    ET.SubElement(root, "description").text = instrument.steps[0].timbre.name
    for step in instrument.steps:
        ET.SubElement(root, "group", name=step.timbre.name)
    for index, (step, samples) in enumerate(zip(instrument.steps, steps, strict=True)):
        fade_in = step.fade_in or (0, 0)  # CC values: silent → full; then full → silent
        fade_out = step.fade_out or (127, 127)
        select = {
            "low": fade_in[0],
            "high": fade_out[1],
            "low-fade": fade_in[1] - fade_in[0],
            "high-fade": fade_out[1] - fade_out[0],
        }
        for sample in samples:
            element = ET.SubElement(
                root, "sample", file=sample.path, gain=f"{sample.volume_db:.4f}", group=str(index)
            )
            ET.SubElement(
                element,
                "key",
                root=str(sample.pitch),
                track="1",
                low=str(sample.keys[0]),
                high=str(sample.keys[1]),
            )
            ET.SubElement(element, "velocity", low="1", high="127")
            ET.SubElement(element, "select", {k: str(v) for k, v in select.items()})
            if sample.loop is not None:  # stop: the frame after the last one played
                start, last = sample.loop
                ET.SubElement(element, "loop", mode="loop", start=str(start), stop=str(last + 1))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_multisample(
    path: Path, instrument: Instrument, steps: Sequence[Sequence[Sample]]
) -> None:
    """``path`` (in the staging folder, beside the WAVs) as a ``.multisample``: the XML and every
    sample it names, stored uncompressed so a sampler can stream them from the file."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as pack:
        pack.writestr("multisample.xml", multisample_xml(instrument, steps))
        for sample in (s for samples in steps for s in samples):
            pack.write(path.parent / sample.path, sample.path)
