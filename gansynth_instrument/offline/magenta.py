"""Magenta's MIDI mode, reproduced: ``gansynth_generate --midi_file`` (gansynth_generate.py +
generate_util.py), with its random timbre timeline and ``combine_notes`` mix (see
``render_magenta`` for the two Magenta bugs left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gansynth_instrument.errors import MidiFileError
from gansynth_instrument.model.latent import slerp
from gansynth_instrument.model.runtime import Model
from gansynth_instrument.offline.midi_file import midi_notes, read_midi
from gansynth_instrument.offline.render import (
    check_output_file,
    generate_in_batches,
    write_wav,
)

# Magenta's MIDI mode (gansynth_generate.py + generate_util.py), in seconds at the model rate.
MAGENTA_MIN_PITCH, MAGENTA_MAX_PITCH = 36, 84
MAGENTA_SECS_PER_INSTRUMENT = 6.0
MAGENTA_ATTACK_S = 0.010
MAGENTA_MAX_SUSTAIN_S = 3.0
MAGENTA_RELEASE_S = 0.3
MAGENTA_TAIL_S = 3.0  # clip length = int(last note end + 3 s) seconds


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
