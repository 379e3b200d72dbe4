"""A finished note as every later stage reads it: int16 samples plus one gain, and its timbre's
loudness reference (``levels.py``: every note of a timbre is scaled by ``level`` when played).

``Note`` is what making a note produces (``make.py``), the cache keeps and the mixer plays.
``LoopedNote`` is the same note laid out for a crossfaded loop (``loop_note``): made on the control
side, once per note, so the mixer only wraps a read position.

Looping lays a note out as ``note[:e] + seam + note[e:]``. The seam is ``note[s:e]`` (s = 1/4 of
the note, e ≈ 3/4, moved by up to a pitch period to where the two regions line up best) whose
first ``crossfade`` frames fade from ``note[e:]`` into ``note[s:]``. The seam starts where
``note[:e]`` stops and ends where ``note[e:]`` starts, so playing on from either end of it is
seamless, and so is jumping from its end back to its start.

Pure NumPy: the audio process imports this module, and nothing heavier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gansynth_instrument.notes.levels import level_gain


@dataclass(frozen=True, eq=False)
class Note:
    """A finished, immutable note. The model's float output = ``pcm * gain``; played, it is
    ``pcm * gain * level``.

    int16 with a per-note scale (peak ↦ 32767) halves memory against float32; the quantisation
    noise sits ~96 dB below the note's peak. ``reference``: the peak of its timbre's note at
    ``levels.REFERENCE_PITCH``, which the note cache measures once per timbre and keeps with every
    note of it (0.0: not known, played as made).
    """

    pcm: np.ndarray  # int16 mono at sample_rate, read-only
    gain: float
    pitch: int
    sample_rate: int
    reference: float = 0.0

    @property
    def level(self) -> float:
        """The timbre's levelling factor (``levels.level_gain`` of its reference)."""
        return level_gain(self.reference)

    def to_float(self) -> np.ndarray:
        """float32 copy of the waveform as it plays, levelled (allocates: not for the audio
        thread); divided by ``level`` it is the model's output."""
        return self.pcm.astype(np.float32) * np.float32(self.gain * self.level)


# Loop region as fractions of the note (1.0 s → 3.0 s of a 4 s note): past the attack, and before
# the end, so a released voice still has a second of the note's own tail to play on into.
LOOP_START = 0.25
LOOP_END = 0.75
LOOP_CROSSFADE_S = 0.1  # long enough to hide a level step, short enough not to smear a decay


@dataclass(frozen=True, eq=False)
class LoopedNote:
    """A note laid out for a crossfaded loop (``loop_note``): frames ``[loop_start, loop_end)`` of
    ``pcm`` repeat seamlessly while the voice is held. Same fields as a cache ``Note`` otherwise."""

    pcm: np.ndarray  # int16 mono at sample_rate, read-only
    gain: float
    pitch: int
    sample_rate: int
    loop_start: int
    loop_end: int
    reference: float = 0.0

    @property
    def level(self) -> float:
        return level_gain(self.reference)


def loop_note(note: Note, crossfade_s: float = LOOP_CROSSFADE_S) -> LoopedNote:
    """``note`` rearranged for looping (see the module docstring); allocates: control side only.

    The loop end is moved by up to one pitch period (``note.pitch``) to where the audio after it
    best matches the audio after the loop start, so the crossfade joins similar waveforms.
    """
    pcm = note.pcm
    frames = len(pcm)
    start = round(LOOP_START * frames)
    fade = max(1, min(round(crossfade_s * note.sample_rate), (frames - start) // 8))
    period = note.sample_rate / (440.0 * 2.0 ** ((note.pitch - 69) / 12.0))
    reach = max(0, min(math.ceil(period), fade, frames - round(LOOP_END * frames) - fade))
    nominal = round(LOOP_END * frames)
    end = _best_end(pcm, start, nominal - reach, 2 * reach + 1, fade)
    # seam[i] for i < fade: (1 - w) note[end + i] + w note[start + i]; then note[start + i].
    w = np.arange(1, fade + 1, dtype=np.float64) / (fade + 1)
    blend = (1.0 - w) * pcm[end : end + fade] + w * pcm[start : start + fade]
    seam = np.concatenate([np.round(blend).astype(np.int16), pcm[start + fade : end]])
    out = np.concatenate([pcm[:end], seam, pcm[end:]])
    out.flags.writeable = False
    return LoopedNote(
        out, note.gain, note.pitch, note.sample_rate, end, end + len(seam), note.reference
    )


def looped_frames_bound(frames: int) -> int:
    """At most how many frames ``loop_note`` makes of a note of ``frames`` frames: the note plus
    its seam, which spans half the note plus at most one crossfade (an eighth of the rest)."""
    return frames + frames // 2 + frames // 8 + 2


def _best_end(pcm: np.ndarray, start: int, first: int, count: int, width: int) -> int:
    """Which of the ``count`` frames from ``first`` on is followed by the audio most like
    ``pcm[start : start + width]`` (largest dot product, computed by FFT)."""
    target = pcm[start : start + width].astype(np.float64)
    search = pcm[first : first + count - 1 + width].astype(np.float64)
    size = 1 << (len(search) + width - 1).bit_length()
    spectrum = np.fft.rfft(search, size) * np.conj(np.fft.rfft(target, size))
    dots = np.fft.irfft(spectrum, size)[:count]
    return first + int(np.argmax(dots))


# A drum hit's decay ends at this level (−60 dB, the usual reverberation-time floor).
HIT_FLOOR_DB = -60.0


def shape_hit(note: Note, hold_s: float, decay_s: float) -> Note:
    """``note`` made into a drum hit: as made for ``hold_s``, then an exponential decay that
    reaches ``HIT_FLOOR_DB`` after ``decay_s`` more, where the hit ends. Allocates: control
    side only (the engine makes each once per cached note)."""
    hold = round(hold_s * note.sample_rate)
    decay = max(1, round(decay_s * note.sample_rate))
    frames = min(len(note.pcm), hold + decay)
    t = np.arange(max(0, frames - hold), dtype=np.float64) / decay
    envelope = np.concatenate([np.ones(min(hold, frames)), 10.0 ** (HIT_FLOOR_DB / 20.0 * t)])
    pcm = np.round(note.pcm[:frames] * envelope).astype(np.int16)
    pcm.flags.writeable = False
    return Note(pcm, note.gain, note.pitch, note.sample_rate, note.reference)
