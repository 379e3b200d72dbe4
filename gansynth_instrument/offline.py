"""Offline commands: notes, hallucinations, interpolations and MIDI renders written to WAV files.

These replace what course users did with ``gansynth_generate`` and the Pd patches:

- ``generate_notes``: random notes like ``gansynth_generate`` without ``--midi_file``.
- ``hallucinate``: the course's hallucination patch (overlapping enveloped notes on a slerp path).
- ``interpolate``: notes along the slerp path between two timbres (``gansynth_multi.pd``, the
  NSynth Super grid).
- ``render_magenta``: ``gansynth_generate --midi_file``, reproduced (see its docstring for the two
  Magenta bugs left out).

WAVs are float32 at the model rate (16 kHz), like Magenta's, and written atomically; the output
location is checked before any rendering starts. MIDI files are read with mido (``read_midi``),
whose raw-byte events also feed the engine-mode renderer.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import soundfile as sf
from tqdm import tqdm

from gansynth_instrument.audio_files import output_format, stream_to_file
from gansynth_instrument.channels import parse_channels
from gansynth_instrument.disk_store import DEFAULT_CACHE_DIR
from gansynth_instrument.engine import ChannelReport, Engine
from gansynth_instrument.errors import GansynthError, MidiFileError, ModelError, OutputError
from gansynth_instrument.fileio import atomic_path, check_writable_dir
from gansynth_instrument.instrument import assemble
from gansynth_instrument.latent import random_latent, slerp
from gansynth_instrument.mixer import Mixer
from gansynth_instrument.model import Model, format_pitches, load_model_from_options
from gansynth_instrument.presets import Bank, Preset, find_bank, find_preset

BATCH_SIZE = 8  # notes per model call: Magenta's released batch size, and a good CPU batch here
# MIDI files are untrusted input. A song longer than this is a crafted tempo or delta time (a
# 28-bit delta at the slowest tempo spans 140 years), and would make renders allocate or loop
# without end; refusing it costs nothing.
MAX_MIDI_DURATION_S = 3600.0


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
    check_pitches(model, pitches)
    latents = np.asarray(latents, dtype=np.float32)
    out = np.empty((len(pitches), model.audio_length), dtype=np.float32)
    with tqdm(total=len(pitches), desc=what, unit="note", disable=None, leave=False) as bar:
        for start in range(0, len(pitches), BATCH_SIZE):
            stop = min(start + BATCH_SIZE, len(pitches))
            out[start:stop] = model.generate(latents[start:stop], np.asarray(pitches[start:stop]))
            bar.update(stop - start)
    return out


def check_pitches(model: Model, pitches: Sequence[int]) -> None:
    """All pitches at once, before any work: the model checks each batch, maybe minutes in."""
    unknown = sorted({int(p) for p in pitches} - set(model.pitches))
    if unknown:
        raise ModelError(
            f"pitch {unknown[0]} is not one this model knows "
            f"(its pitches: {format_pitches(model.pitches)})"
        )


def overlap_add(
    audio: np.ndarray,
    envelopes: Sequence[np.ndarray],
    starts: Sequence[int],
    scales: Sequence[float],
    length: int,
) -> np.ndarray:
    """Mix enveloped notes the way Magenta's ``generate_util.combine_notes`` does.

    Each note is cut to its envelope's length, multiplied by it, divided by its own *signed*
    maximum (``note.max()``, as Magenta; skipped for a note with no positive sample, where Magenta
    would divide by zero), scaled, and added at its start sample. The clip is then divided by its
    maximum and by 2 (peak +0.5; a negative peak may be larger). Computed in float64 like Magenta.

    Returns:
        float32 [length].
    """
    clip = np.zeros(length, dtype=np.float64)
    for note_audio, env, start, scale in zip(audio, envelopes, starts, scales, strict=True):
        note = note_audio[: len(env)].astype(np.float64) * env
        peak = note.max()
        if peak > 0:
            note /= peak
        note *= scale
        end = min(start + len(note), length)
        clip[start:end] += note[: end - start]
    peak = clip.max()
    if peak > 0:
        clip /= peak
    clip /= 2.0
    return clip.astype(np.float32)


def _timbre(spec: str, latent_size: int) -> tuple[str, np.ndarray]:
    """A timbre given as a seed (digits) or a preset name/path → (label, latent)."""
    if spec.isdigit():
        return f"seed {spec}", random_latent(int(spec), latent_size)
    preset = find_preset(spec)
    return preset.name, preset.latent_vector(latent_size)


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
) -> list[WrittenNote]:
    """Random notes to ``out_dir/generated_{i}.wav``, like ``gansynth_generate`` (random mode).

    Timbres: ``count`` latents drawn like Magenta (``np.random.seed(seed)``, then normal draws), or
    the preset's timbre for every note. Pitches: the given list, cycled; else drawn uniformly from
    the model's pitches (Magenta weights them by training-set counts, which an exported model does
    not carry). ``count`` defaults to the number of pitches given, else 8. The notes are the model's
    raw 4 s output (no gain or envelope), as Magenta writes them.
    """
    if count is None:
        count = len(pitches) if pitches else BATCH_SIZE
    if count < 1:
        raise GansynthError(f"--count must be at least 1, got {count}")
    timbre = _timbre(preset, model.latent_size) if preset is not None else None
    check_pitches(model, pitches or [])
    check_writable_dir(Path(out_dir), create=True)
    rng = np.random.RandomState(seed)
    if timbre is not None:
        latents = np.repeat(timbre[1][None, :], count, axis=0)
        labels = [timbre[0]] * count
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
    return [
        WrittenNote(
            write_wav(Path(out_dir) / f"generated_{i}.wav", audio[i], model.sample_rate),
            note_pitches[i],
            labels[i],
        )
        for i in range(count)
    ]


# --- interpolate ----------------------------------------------------------------------------------


def interpolate(
    model: Model, a: str, b: str, out_dir: Path, *, steps: int = 5, pitch: int = 60
) -> list[WrittenNote]:
    """``steps`` notes at evenly spaced points (t = 0 … 1) on the slerp path from timbre a to b.

    ``a`` and ``b`` are preset names/paths or seeds. Files: ``interp_{i:02d}.wav``. A point worth
    keeping becomes a preset with ``presets new NAME --between A B --at T``.
    """
    if steps < 2:
        raise GansynthError(f"--steps must be at least 2 (the two ends), got {steps}")
    label_a, z_a = _timbre(a, model.latent_size)
    label_b, z_b = _timbre(b, model.latent_size)
    check_pitches(model, [pitch])
    check_writable_dir(Path(out_dir), create=True)
    ts = np.linspace(0.0, 1.0, steps)
    latents = slerp(z_a, z_b, ts)
    audio = generate_in_batches(model, latents, [pitch] * steps, what="interpolating")
    return [
        WrittenNote(
            write_wav(Path(out_dir) / f"interp_{i:02d}.wav", audio[i], model.sample_rate),
            pitch,
            f"{label_a} → {label_b} at t={t:.3f}",
        )
        for i, t in enumerate(ts)
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
) -> tuple[Path, int, float]:
    """The course's hallucination: a long evolving sound from many overlapping notes → WAV.

    Keypoint timbres are ``settings.note_count`` random latents (Magenta's ``generate_z``), or the
    presets/seeds in ``through``. Notes sit ``spacing_s`` apart, each shaped by the envelope and
    normalised, mixed like ``combine_notes`` (peak 0.5). The pitch defaults to the course's 32 when
    the model has it, else the model's lowest pitch. Unlike the course, the result is exactly as
    long as its notes (the patch played it 4× too long, reading a byte count as samples, and
    padded 2 spacings of silence).

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
        keypoints = np.stack([_timbre(t, model.latent_size)[1] for t in through])
    else:
        keypoints = np.random.RandomState(seed).normal(
            size=(settings.note_count, model.latent_size)
        )
    latents = hallucination_path(keypoints.astype(np.float32), settings.interp_steps)
    audio = generate_in_batches(model, latents, [pitch] * len(latents), what="hallucinating")
    spacing = round(settings.spacing_s * model.sample_rate)
    length = (len(latents) - 1) * spacing + model.audio_length
    envelope = hallucination_envelope(settings, model.audio_length)
    clip = overlap_add(
        audio,
        [envelope] * len(latents),
        [i * spacing for i in range(len(latents))],
        [1.0] * len(latents),
        length,
    )
    return write_wav(out_path, clip, model.sample_rate), len(latents), length / model.sample_rate


# --- MIDI files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MidiEvent:
    """A MIDI file's channel message at its time in seconds (raw bytes, for ``Engine.handle``)."""

    time_s: float
    data: tuple[int, ...]


@dataclass(frozen=True)
class MidiNote:
    pitch: int
    velocity: int
    start_s: float
    end_s: float


def read_midi(path: Path) -> list[MidiEvent]:
    """Every channel message of a MIDI file (type 0 or 1), merged and timed through its tempo map.

    Times come from absolute ticks, computed as pretty_midi (and so note_seq and Magenta) does:
    segment start + ticks · 60 / (bpm · ticks per beat), so note boundaries land on the same
    samples as in Magenta's render.
    Raises MidiFileError for a missing, malformed or type 2 file, one without notes, or one whose
    timing is absurd (tempo 0, SMPTE or zero ticks per beat, longer than ``MAX_MIDI_DURATION_S``).
    """
    path = Path(path)
    if not path.is_file():
        raise MidiFileError(f"{path}: no such file")
    try:
        midi = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
        reason = str(err) or type(err).__name__
        raise MidiFileError(f"{path}: not a readable MIDI file ({reason})") from None
    if midi.type == 2:
        raise MidiFileError(f"{path}: MIDI type 2 (independent sequences) is not supported")
    if not 0 < midi.ticks_per_beat < 0x8000:  # bit 15 set: SMPTE frames, which pretty_midi lacks
        raise MidiFileError(
            f"{path}: unsupported time division {midi.ticks_per_beat} (need 1-32767 ticks/beat)"
        )
    tick_s = 60.0 / (120.0 * midi.ticks_per_beat)  # MIDI's default tempo, 120 bpm
    tick = segment_tick = 0
    segment_s = 0.0
    events: list[MidiEvent] = []
    for msg in mido.merge_tracks(midi.tracks):
        tick += msg.time
        now_s = segment_s + (tick - segment_tick) * tick_s
        if now_s > MAX_MIDI_DURATION_S:
            raise MidiFileError(
                f"{path}: an event at {now_s:.0f} s (tick {tick}); files longer than "
                f"{MAX_MIDI_DURATION_S:.0f} s are refused (absurd tempo or delta time?)"
            )
        if msg.type == "set_tempo":
            if msg.tempo <= 0:
                raise MidiFileError(f"{path}: tempo 0 µs/beat at tick {tick}")
            tick_s = 60.0 / (6e7 / msg.tempo * midi.ticks_per_beat)
            segment_tick, segment_s = tick, now_s
        elif not msg.is_meta and msg.type != "sysex":
            events.append(MidiEvent(now_s, tuple(msg.bytes())))
    if not any(e.data[0] & 0xF0 == 0x90 and e.data[2] > 0 for e in events):
        raise MidiFileError(f"{path}: holds no notes")
    return events


def midi_notes(events: Sequence[MidiEvent]) -> list[MidiNote]:
    """Notes in the order they end, as note_seq lists them (it reads through pretty_midi).

    Like pretty_midi, a note-off ends every sounding note of that channel and key, a zero-length
    note is dropped, and a note still sounding when the file ends is dropped.
    """
    sounding: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes: list[MidiNote] = []
    for event in events:
        status, kind = event.data[0] & 0x0F, event.data[0] & 0xF0
        if kind not in (0x80, 0x90):
            continue
        key, velocity = (status, event.data[1]), event.data[2]
        if kind == 0x90 and velocity > 0:
            sounding.setdefault(key, []).append((event.time_s, velocity))
            continue
        for start_s, on_velocity in sounding.pop(key, []):
            if start_s < event.time_s:
                notes.append(MidiNote(key[1], on_velocity, start_s, event.time_s))
    return notes


# Magenta's MIDI mode (gansynth_generate.py + generate_util.py), in seconds at the model rate.
MAGENTA_MIN_PITCH, MAGENTA_MAX_PITCH = 36, 84
MAGENTA_SECS_PER_INSTRUMENT = 6.0
MAGENTA_ATTACK_S = 0.010
MAGENTA_MAX_SUSTAIN_S = 3.0
MAGENTA_RELEASE_S = 0.3
MAGENTA_TAIL_S = 3.0  # clip length = int(last note end + 3 s) seconds


def magenta_instruments(
    total_s: float, latent_size: int, seed: int | None, secs_per_instrument: float
) -> tuple[np.ndarray, np.ndarray]:
    """Timbres and their times: ``int(total/6)`` random latents at ``linspace(-0.0001, total, n)``.

    At least 2, so files shorter than 12 s render (Magenta: IndexError under 6 s, NaN latents from
    6 to 12 s). Drawn like Magenta after ``np.random.seed(seed)``: with the seed Magenta ran with,
    these are its latents.
    """
    n = max(2, int(total_s / secs_per_instrument))
    z = np.random.RandomState(seed).normal(size=(n, latent_size))
    return z, np.linspace(-0.0001, total_s, n)


def magenta_note_latents(
    start_times: np.ndarray, z_instruments: np.ndarray, t_instruments: np.ndarray
) -> np.ndarray:
    """One latent per note: slerp between the two timbres around its start (``get_z_notes``)."""
    out = []
    for t in start_times:
        idx = int(np.searchsorted(t_instruments, t, side="left")) - 1
        idx = min(max(idx, 0), len(t_instruments) - 2)
        t_left, t_right = t_instruments[idx], t_instruments[idx + 1]
        out.append(
            slerp(z_instruments[idx], z_instruments[idx + 1], (t - t_left) / (t_right - t_left))
        )
    return np.stack(out).astype(np.float32)


def magenta_envelope(duration_s: float, sample_rate: int) -> np.ndarray:
    """10 ms linear attack, hold up to 3 s, 300 ms linear release (``get_envelope``).

    The release is written after the attack, so it wins for notes shorter than the attack.
    """
    i_attack = int(sample_rate * MAGENTA_ATTACK_S)
    i_sustain = int(sample_rate * min(duration_s, MAGENTA_MAX_SUSTAIN_S))
    i_release = int(sample_rate * MAGENTA_RELEASE_S)
    env = np.ones(i_sustain + i_release)
    env[:i_attack] = np.linspace(0.0, 1.0, i_attack)
    env[i_sustain:] = np.linspace(1.0, 0.0, i_release)
    return env


def magenta_combine(
    audio: np.ndarray,
    start_times: Sequence[float],
    end_times: Sequence[float],
    velocities: Sequence[int],
    sample_rate: int,
) -> np.ndarray:
    """Magenta's ``combine_notes``: envelopes, per-note peak × velocity/127, final /max /2."""
    length = int(max(end_times) + MAGENTA_TAIL_S) * sample_rate
    return overlap_add(
        audio,
        [magenta_envelope(e - s, sample_rate) for s, e in zip(start_times, end_times, strict=True)],
        [int(s * sample_rate) for s in start_times],
        [v / 127.0 for v in velocities],
        length,
    )


@dataclass(frozen=True)
class MagentaRender:
    """What ``render_magenta`` did, for the command's report."""

    path: Path
    notes: int
    dropped: int
    timbres: int
    duration_s: float


def render_magenta(
    model: Model,
    midi_path: Path,
    out_path: Path,
    *,
    seed: int | None = None,
    secs_per_instrument: float = MAGENTA_SECS_PER_INSTRUMENT,
) -> MagentaRender:
    """``gansynth_generate --midi_file`` reproduced: a MIDI file → a 16 kHz float32 WAV.

    Notes outside 36-84 are dropped (as Magenta does, though models know 24-84); a new random
    timbre every 6 s, one slerped latent per note; 10 ms attack, at most 3 s hold, 300 ms release;
    each note normalised to its signed peak × velocity/127; the mix to peak 0.5. Two Magenta bugs
    are left out: files shorter than 12 s get 2 timbres instead of crashing (IndexError / NaN),
    and the timbre timeline spans to the latest note end rather than the end of the last-listed
    note. With Magenta's seed, the timbres are Magenta's.
    """
    check_output_file(out_path)
    all_notes = midi_notes(read_midi(midi_path))
    notes = [n for n in all_notes if MAGENTA_MIN_PITCH <= n.pitch <= MAGENTA_MAX_PITCH]
    if not notes:
        raise MidiFileError(
            f"{midi_path}: none of its {len(all_notes)} notes is in Magenta's range "
            f"{MAGENTA_MIN_PITCH}-{MAGENTA_MAX_PITCH}"
        )
    starts = np.array([n.start_s for n in notes])
    ends = np.array([n.end_s for n in notes])
    z_instruments, t_instruments = magenta_instruments(
        float(ends.max()), model.latent_size, seed, secs_per_instrument
    )
    latents = magenta_note_latents(starts, z_instruments, t_instruments)
    pitches = [n.pitch for n in notes]
    audio = generate_in_batches(model, latents, pitches, what="rendering")
    clip = magenta_combine(audio, starts, ends, [n.velocity for n in notes], model.sample_rate)
    write_wav(out_path, clip, model.sample_rate)
    return MagentaRender(
        Path(out_path),
        len(notes),
        len(all_notes) - len(notes),
        len(z_instruments),
        len(clip) / model.sample_rate,
    )


# --- engine mode: a MIDI file through the live instrument's own engine ----------------------------

ENGINE_BLOCK_FRAMES = 1024
ENGINE_POLYPHONY = 64  # offline can afford more voices than live play
ENGINE_WAIT_S = 600.0  # per note; only bounds a hang (a full-size model on a slow CPU)
DEFAULT_BANK = "default"  # the shipped bank: program changes and the mod-wheel morph work


@dataclass(frozen=True)
class EngineRender:
    """What ``render_midi_engine`` wrote."""

    path: Path
    notes: int
    duration_s: float
    peak: float  # largest |sample|; above 1.0 a float WAV holds it, other formats clip
    clipped: int  # samples clipped to ±1 (formats that cannot hold more)
    channels: list[ChannelReport]  # per MIDI channel: presets played, notes skipped


def render_blocks(
    engine: Engine,
    mixer: Mixer,
    events: Sequence[MidiEvent],
    *,
    block_frames: int = ENGINE_BLOCK_FRAMES,
    progress: bool = False,
) -> Iterator[np.ndarray]:
    """Feed timed MIDI to ``engine`` and yield ``mixer``'s audio ([frames, channels] float32)
    block by block until it falls silent, as long as the last event or the last sound.

    Each event's commands carry its exact frame, so the audio does not depend on
    ``block_frames``. Trailing silence is held back as a count, not as audio, and given out
    only as far as a later sound or the last event needs it: memory stays one block.
    """
    rate = mixer.sample_rate
    stamped = [(round(e.time_s * rate), e.data) for e in events]
    last_event = stamped[-1][0] if stamped else 0
    i = frame = given = 0
    silent = 0  # frames mixed after the last sound and not given out yet
    zeros = np.zeros((block_frames, mixer.channels), dtype=np.float32)
    with tqdm(
        total=round(last_event / rate, 1), unit="s", disable=not progress, leave=False
    ) as bar:
        while i < len(stamped) or mixer.voices_active or mixer.commands:
            end = frame + block_frames
            while i < len(stamped) and stamped[i][0] < end:
                engine.handle(stamped[i][1], stamped[i][0])
                i += 1
            block = np.empty((block_frames, mixer.channels), dtype=np.float32)
            mixer.mix(block, block_frames)
            sounding = np.flatnonzero(block.any(axis=1))
            if len(sounding):
                yield from _zeros(zeros, silent)
                last = int(sounding[-1]) + 1
                yield block[:last]
                given += silent + last
                silent = block_frames - last
            else:
                silent += block_frames
            frame = end
            bar.update(round(min(frame, last_event) / rate, 1) - bar.n)
    yield from _zeros(zeros, min(silent, max(0, last_event - given)))


def _zeros(zeros: np.ndarray, frames: int) -> Iterator[np.ndarray]:
    for start in range(0, frames, len(zeros)):
        yield zeros[: min(len(zeros), frames - start)]


def render_events(
    engine: Engine,
    mixer: Mixer,
    events: Sequence[MidiEvent],
    *,
    block_frames: int = ENGINE_BLOCK_FRAMES,
) -> np.ndarray:
    """``render_blocks`` gathered into one array ([frames, channels]): for short songs."""
    blocks = list(render_blocks(engine, mixer, events, block_frames=block_frames))
    if not blocks:
        return np.zeros((0, mixer.channels), dtype=np.float32)
    return np.concatenate(blocks)


def render_midi_engine(
    model: Model,
    midi_path: Path,
    out_path: Path,
    *,
    preset: Preset | None = None,
    bank: Bank | None = None,
    drums: Preset | None = None,
    channels: Collection[int] | None = None,
    sample_rate: int = 48000,
    subtype: str | None = None,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    block_frames: int = ENGINE_BLOCK_FRAMES,
    progress: bool = True,
) -> EngineRender:
    """A MIDI file → stereo audio file through the live engine: same channels, voices,
    envelopes, pedal, bend, morph.

    Unlike live play it waits for each exact note before its note-on instead of playing a
    nearest-pitch stand-in, so the result is deterministic. Notes come from (and go to) the note
    cache. ``channels`` (0-15) chooses the MIDI channels to play (None: all). The file is
    written as it renders (``audio_files.py``), in the format its extension names.
    """
    check_output_file(out_path)
    output_format(out_path, subtype)
    events = read_midi(midi_path)
    mixer = Mixer(
        sample_rate, polyphony=ENGINE_POLYPHONY, channels=2, max_block_frames=block_frames
    )
    instrument = assemble(
        model,
        mixer,
        preset=preset,
        bank=bank,
        drums=drums,
        cache_dir=cache_dir,
        wait_s=ENGINE_WAIT_S,
        channels=channels,
    )
    engine = instrument.engine
    with (
        instrument.cache as cache,
        stream_to_file(out_path, sample_rate, mixer.channels, subtype) as writer,
    ):
        # Ask for every note the song's programs will play up front, so the cache batches them.
        for timbre, pitches in engine.planned_notes(e.data for e in events).values():
            cache.request(timbre.latent, sorted(pitches))
        blocks = render_blocks(engine, mixer, events, block_frames=block_frames, progress=progress)
        for block in blocks:
            writer.write(block)
    report = engine.report()
    return EngineRender(
        Path(out_path),
        sum(sum(r.played.values()) for r in report),
        writer.frames / sample_rate,
        writer.peak,
        writer.clipped,
        report,
    )


def channel_lines(reports: Sequence[ChannelReport]) -> list[str]:
    """One line per MIDI channel (counted 1-16): the presets it played and what it skipped."""
    lines = []
    for r in reports:
        played = ", ".join(f"{name} ({count} notes)" for name, count in r.played.items())
        skipped = ", ".join(f"{count} {why}" for why, count in r.skipped.items())
        text = played or "nothing played"
        if skipped:
            text += f"; skipped {skipped}"
        lines.append(f"  channel {r.channel + 1:>2}: {text}")
    return lines


# --- command-line entry points (arguments parsed in cli.py) ---------------------------------------


def run_generate(args: argparse.Namespace) -> int:
    """``gansynth-instrument generate``: prints one line per file written."""
    pitches = list(args.pitch or []) + [int(p) for p in (args.pitches or "").split(",") if p]
    if args.preset is not None:
        find_preset(args.preset)  # a typo fails before the model loads
    written = generate_notes(
        load_model_from_options(args),
        args.output_dir,
        count=args.count,
        pitches=pitches or None,
        seed=args.seed,
        preset=args.preset,
    )
    for note in written:
        print(f"wrote {note.path}  pitch {note.pitch}  {note.timbre}")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    """``gansynth-instrument interpolate A B``: prints one line per file written."""
    for spec in (args.a, args.b):
        if not spec.isdigit():
            find_preset(spec)  # a typo fails before the model loads
    written = interpolate(
        load_model_from_options(args),
        args.a,
        args.b,
        args.output_dir,
        steps=args.steps,
        pitch=args.pitch,
    )
    for note in written:
        print(f"wrote {note.path}  pitch {note.pitch}  {note.timbre}")
    return 0


def run_hallucinate(args: argparse.Namespace) -> int:
    """``gansynth-instrument hallucinate``: prints what it wrote."""
    settings = Hallucination(
        note_count=args.notes,
        interp_steps=args.steps,
        spacing_s=args.spacing_s,
        trim=args.trim,
        attack=args.attack,
        sustain=args.sustain,
        release=args.release,
    )
    settings.check()
    check_output_file(args.output)  # bad settings or output fail before the model loads
    path, count, duration_s = hallucinate(
        load_model_from_options(args),
        args.output,
        settings,
        pitch=args.pitch,
        seed=args.seed,
        through=args.through or (),
    )
    print(f"wrote {path}  {count} notes, {duration_s:.2f} s")
    return 0


def run_render_magenta(args: argparse.Namespace) -> int:
    """``gansynth-instrument render SONG.mid --magenta``: prints what it wrote."""
    check_output_file(args.output)  # a bad output path or MIDI file fails before the model loads
    read_midi(args.midi_file)
    result = render_magenta(
        load_model_from_options(args), args.midi_file, args.output, seed=args.seed
    )
    dropped = f", {result.dropped} outside 36-84 dropped" if result.dropped else ""
    print(
        f"wrote {result.path}  {result.notes} notes{dropped}, {result.timbres} timbres, "
        f"{result.duration_s:.2f} s"
    )
    return 0


def run_render_engine(args: argparse.Namespace) -> int:
    """``gansynth-instrument render SONG.mid`` (engine mode): prints what it wrote."""
    # Bad output, MIDI file, channels or presets fail before the model loads.
    check_output_file(args.output)
    output_format(args.output, args.subtype)
    channels = parse_channels("--channels", args.channels) if args.channels else None
    read_midi(args.midi_file)
    preset = find_preset(args.preset) if args.preset else None
    bank = find_bank(args.bank) if args.bank else None
    drums = find_preset(args.drums) if args.drums else None
    if preset is None and bank is None:
        bank = find_bank(DEFAULT_BANK)
    result = render_midi_engine(
        load_model_from_options(args),
        args.midi_file,
        args.output,
        preset=preset,
        bank=bank,
        drums=drums,
        channels=channels,
        sample_rate=args.sample_rate,
        subtype=args.subtype,
        cache_dir=args.cache_dir or DEFAULT_CACHE_DIR,
    )
    clipped = f", {result.clipped} samples clipped" if result.clipped else ""
    print(
        f"wrote {result.path}  {result.notes} notes, {result.duration_s:.2f} s at "
        f"{args.sample_rate} Hz, stereo, peak {result.peak:.3f}{clipped}"
    )
    print("\n".join(channel_lines(result.channels)))
    return 0


def run_render(args: argparse.Namespace) -> int:
    """``gansynth-instrument render``: the engine mode, or --magenta."""
    if args.magenta:
        return run_render_magenta(args)
    return run_render_engine(args)
