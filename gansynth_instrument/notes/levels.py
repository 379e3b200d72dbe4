"""Gain staging: how loud a note comes out, from the model's raw waveform to the output.

A note's samples reach the output as::

    waveform × level(note) × attack_gain(note, attack) × velocity_gain(velocity)
             × 10^(preset gain_db / 20) × channel volume, expression and pan
             × 10^(master gain_db / 20)  →  the master-bus limiter

- ``level``: the model makes some timbres far louder than others (tens of dB apart), so each
  timbre is levelled once: its ``reference`` is the peak of its note at ``REFERENCE_PITCH`` over
  that note's first ``LEVEL_WINDOW_S`` (what a played note reaches, not a swell few notes are
  held long enough to reach), measured when the timbre's notes are made and kept with them. A
  note is scaled by ``TARGET_PEAK`` over the larger of that reference and its own peak (the
  same window; ``note_level``): a timbre's quieter notes keep the model's balance across the
  keyboard, and no note, of any model, timbre or pitch, passes ``TARGET_PEAK_DBFS`` at full
  velocity on a channel at its GM defaults, before preset and master gain.
- ``attack_gain``: a preset's slow attack lowers a note whose peak comes early; the engine makes
  that up (``attack_gain``, at most ``MAX_ATTACK_GAIN_DB``), so a note's peak *as it sounds* is
  the one levelled.
- ``velocity_gain``: ``(velocity / 127) ** exponent`` with a named exponent (``VELOCITY_CURVES``);
  the default ``gm`` is General MIDI's curve (DLS level 1: 40·log10(velocity/127) dB).
- preset ``gain_db`` (presets.py) balances one preset against others; master ``gain_db``
  (``MASTER_GAIN_DB_RANGE``) sets the whole instrument's level.
- ``Limiter``: chords add up; the master bus never exceeds ``LIMIT_DBFS`` (a look-ahead limiter
  that leaves audio below it untouched), so the output never clips. ``TARGET_PEAK_DBFS`` leaves
  room enough that it is a safety net, not a compressor on a whole song (its share of a General
  MIDI song's frames: benchmarks/bench_songs.py).
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Protocol

import numpy as np

from gansynth_instrument.errors import GansynthError

if TYPE_CHECKING:
    from gansynth_instrument.notes.timbre import Timbre

REFERENCE_PITCH = 60  # middle C; a model without it is levelled at its nearest pitch
# A levelled note at velocity 127 on a channel at its GM defaults: clearly heard alone, 11 dB
# below the limiter for a band's chords to add up.
TARGET_PEAK_DBFS = -12.0
TARGET_PEAK = 10.0 ** (TARGET_PEAK_DBFS / 20.0)
LEVEL_WINDOW_S = 1.0  # a note is levelled by its peak over this much of its start
MAX_ATTACK_GAIN_DB = 6.0  # the most a slow attack is made up for
MASTER_GAIN_DB_RANGE = (-60.0, 24.0)
DEFAULT_VELOCITY_CURVE = "gm"
VELOCITY_CURVES = {
    "gm": 2.0,  # General MIDI / DLS: quiet keys stay quiet, as on most synths
    "linear": 1.0,  # amplitude proportional to velocity: more level at soft touch
    "soft": 0.5,  # for keyboards that are hard to play loud
    "fixed": 0.0,  # every note at full level, whatever the touch
}
DEFAULT_VELOCITY_EXPONENT = VELOCITY_CURVES[DEFAULT_VELOCITY_CURVE]
LIMIT_DBFS = -1.0  # the limiter acts only above this
LIMIT = 10.0 ** (LIMIT_DBFS / 20.0)
LOOKAHEAD_S = 0.00035  # gain comes down over this before a peak: added to the output latency
RELEASE_DB_PER_S = 200.0  # gain recovers at this rate after a peak (6 dB in 30 ms): a brief peak
# ducks the mix briefly (bench_songs.py: the share of frames limited)


def peak(audio: np.ndarray) -> float:
    """Largest absolute sample (0.0 for an empty or silent waveform)."""
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def reference_pitch(pitches: tuple[int, ...] | list[int]) -> int:
    """The pitch a model's timbres are levelled at: ``REFERENCE_PITCH`` or the nearest one."""
    return min(pitches, key=lambda p: (abs(p - REFERENCE_PITCH), p))


def window_peak(samples: np.ndarray, sample_rate: int) -> float:
    """A note's loudness reference in its samples' units: the largest magnitude over its first
    ``LEVEL_WINDOW_S`` (0.0 for silence)."""
    window = samples[: round(LEVEL_WINDOW_S * sample_rate)]
    if not window.size:
        return 0.0
    return max(float(window.max()), -float(window.min()))


def level_gain(reference: float) -> float:
    """The factor that brings a peak of ``reference`` to ``TARGET_PEAK`` (silence stays silent
    rather than being blown up)."""
    return TARGET_PEAK / reference if reference > 0.0 else 1.0


def note_level(reference: float, peak: float) -> float:
    """A note's levelling factor: its timbre's (``reference``), lowered for a note whose own
    ``peak`` is above it, so none passes ``TARGET_PEAK``; by its own peak before its timbre's
    reference is known; 1.0 with neither (samples already levelled)."""
    return level_gain(max(reference, peak))


def attack_gain(samples: np.ndarray, sample_rate: int, attack_s: float) -> float:
    """The factor that brings a note's peak under a linear ``attack_s`` fade-in (the voices'
    attack) back up to its ``window_peak``: 1.0 when its peak comes after the attack, at most
    ``MAX_ATTACK_GAIN_DB``. Allocates: control side, once per note and attack."""
    window = samples[: round(LEVEL_WINDOW_S * sample_rate)]
    reference = window_peak(window, sample_rate)
    if reference <= 0.0:
        return 1.0
    attack = max(1, round(attack_s * sample_rate))
    head = np.abs(window[:attack], dtype=np.float64)
    ramp = np.arange(1, len(head) + 1, dtype=np.float64) / attack
    heard = max(float((head * ramp).max()), window_peak(window[attack:], sample_rate))
    return min(reference / heard, db_to_gain(MAX_ATTACK_GAIN_DB))


class Samples(Protocol):
    """What ``AttackGains`` reads of a note (``note.Note``, ``note.LoopedNote``)."""

    pcm: np.ndarray
    sample_rate: int


class AttackGains:
    """``attack_gain`` of each note played and attack, worked out once (kept while the note is)."""

    def __init__(self) -> None:
        self._gains: weakref.WeakKeyDictionary[Samples, dict[float, float]] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self, note: Samples, attack_s: float) -> float:
        per_note = self._gains.setdefault(note, {})
        if attack_s not in per_note:
            per_note[attack_s] = attack_gain(note.pcm, note.sample_rate, attack_s)
        return per_note[attack_s]


def velocity_exponent(curve: str) -> float:
    """The exponent of a named velocity curve; a one-line error names the choices."""
    try:
        return VELOCITY_CURVES[curve]
    except KeyError:
        choices = ", ".join(VELOCITY_CURVES)
        raise GansynthError(
            f"--velocity-curve: unknown curve {curve!r}; choose one of {choices}"
        ) from None


def velocity_gain(velocity: int, exponent: float) -> float:
    """Amplitude factor of a MIDI velocity (1-127) under the curve ``(velocity/127)^exponent``."""
    return (velocity / 127.0) ** exponent


def db_to_gain(gain_db: float) -> float:
    return 10.0 ** (gain_db / 20.0)


def note_amplitude(
    timbre: Timbre, velocity: int, exponent: float = DEFAULT_VELOCITY_EXPONENT
) -> float:
    """A note's amplitude factor: the velocity curve, (velocity/127)^exponent, times the timbre's
    gain. Live play, ``render`` and baked sample packs (``bake.py``) all take a note's level from
    here, so a change of level staging reaches them all."""
    return velocity_gain(velocity, exponent) * db_to_gain(timbre.gain_db)


def master_gain(gain_db: float) -> float:
    """The master gain factor; a one-line error names the range."""
    low, high = MASTER_GAIN_DB_RANGE
    if not (math.isfinite(gain_db) and low <= gain_db <= high):
        raise GansynthError(f"--gain-db must be {low:g}..{high:g} dB, got {gain_db:g}")
    return db_to_gain(gain_db)


def normalize_peak(audio: np.ndarray, target: float = 1.0) -> np.ndarray:
    """``audio`` scaled so its peak is ``target`` (as Magenta's MIDI renderer scales each note);
    silence stays silence."""
    top = peak(audio)
    return audio * np.float32(target / top) if top > 0.0 else audio


class Limiter:
    """A look-ahead peak limiter for the master bus: the output never exceeds ``limit``, and
    audio that stays below it passes unchanged (delayed by ``delay_frames``). With ``limit`` inf
    it never acts: the delayed input, for a mix that a later stage brings to its level (render's
    loudness target).

    The signal is delayed by ``delay_frames`` (D). Output is made in segments of at most D
    frames; a segment's gain moves linearly from the previous segment's end gain to a new end
    gain no higher than ``limit`` over the peak of the segment and the D frames after it. Both
    ends are then within the bound for every sample of the segment, and so is the straight line
    between them: no sample comes out above ``limit``. The end gain rises by at most
    ``release_db_per_s``, so the gain comes back smoothly after a peak.

    ``process`` allocates nothing but scalars: every buffer is made here, for blocks up to
    ``max_block_frames``. Linked across channels (one gain for all), so the stereo image holds.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        channels: int = 1,
        max_block_frames: int = 1024,
        limit: float = LIMIT,
        lookahead_s: float = LOOKAHEAD_S,
        release_db_per_s: float = RELEASE_DB_PER_S,
    ) -> None:
        if not (0.0 < limit <= 1.0 or limit == math.inf):
            raise ValueError(f"limit must be in (0, 1] or inf, got {limit}")
        self.limit = float(limit)
        self.delay_frames = max(1, round(lookahead_s * sample_rate))
        self.release_per_frame = 10.0 ** (release_db_per_s / 20.0 / sample_rate)
        self._gain = 1.0
        self.limited_frames = 0  # frames that came out with a gain below 1 (for meters)
        span = self.delay_frames + max_block_frames
        self._max_block = max_block_frames
        self._signal = np.zeros((span, channels), dtype=np.float32)
        self._delay = np.zeros((self.delay_frames, channels), dtype=np.float32)
        self._abs = np.empty((span, channels), dtype=np.float32)
        self._magnitude = np.empty(span, dtype=np.float32)
        self._count = np.arange(1, self.delay_frames + 1, dtype=np.float32)
        self._gains = np.empty((self.delay_frames, 1), dtype=np.float32)

    @property
    def gain(self) -> float:
        """The gain applied to the last frame that came out (1.0 while idle)."""
        return self._gain

    def follow(self, gain: float, limited_frames: int) -> None:
        """Take ``gain`` and ``limited_frames`` from a limiter with these settings that runs
        elsewhere (the compiled mixer core's), so that their readers see the one that plays."""
        self._gain = gain
        self.limited_frames = limited_frames

    def process(self, block: np.ndarray, out: np.ndarray) -> None:
        """Limit ``block`` ([frames, channels] float32) into ``out`` (same shape; may be
        ``block`` itself). The output lags the input by ``delay_frames``."""
        n, delay = len(block), self.delay_frames
        if n > self._max_block:
            raise ValueError(f"a block of {n} frames; this limiter takes up to {self._max_block}")
        signal = self._signal[: delay + n]
        signal[:delay] = self._delay
        signal[delay:] = block
        self._delay[:] = signal[n:]
        magnitude = self._magnitude[: delay + n]
        np.max(np.abs(signal, out=self._abs[: delay + n]), axis=1, out=magnitude)
        gain = self._gain
        if gain == 1.0 and magnitude.max() <= self.limit:
            out[:n] = signal[:n]  # idle: the delayed input, bit for bit
            return
        start = 0
        while start < n:
            end = min(start + delay, n)
            length = end - start
            loudest = float(magnitude[start : end + delay].max())
            bound = self.limit / loudest if loudest > self.limit else 1.0
            target = min(bound, gain * self.release_per_frame**length)
            if gain == 1.0 and target == 1.0:
                out[start:end] = signal[start:end]
            else:
                gains = self._gains[:length]
                np.multiply(self._count[:length, None], (target - gain) / length, out=gains)
                np.add(gains, gain, out=gains)
                np.multiply(signal[start:end], gains, out=out[start:end])
                self.limited_frames += length
            gain = target
            start = end
        self._gain = gain


class MasterBus:
    """Master gain then the limiter (at ``limit``), in place on the mixer's stereo bus
    (``channels`` 2: left, right; see the module docstring); allocation-free like ``Limiter``.
    ``gain_db`` is checked where it is set (``master_gain``: the play and render settings, the
    clip commands), not here.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        gain_db: float = 0.0,
        channels: int = 2,
        max_block_frames: int = 1024,
        limit: float = LIMIT,
    ) -> None:
        self.gain = db_to_gain(gain_db)
        self.limiter = Limiter(
            sample_rate, channels=channels, max_block_frames=max_block_frames, limit=limit
        )

    @property
    def delay_frames(self) -> int:
        return self.limiter.delay_frames

    def process(self, block: np.ndarray) -> None:
        """Apply master gain and limiter to ``block`` ([frames, channels] float32) in place."""
        if self.gain != 1.0:
            np.multiply(block, np.float32(self.gain), out=block)
        self.limiter.process(block, block)


def master_clip(
    audio: np.ndarray, sample_rate: int, gain_db: float = 0.0, block_frames: int = 1024
) -> np.ndarray:
    """A whole clip (mono, or [frames, channels]) through a ``MasterBus``: master gain, then the
    limiter, with the limiter's look-ahead delay cut so the clip keeps its timing. Offline
    commands that make whole clips stage them as ``render`` stages a song."""
    clip = np.asarray(audio, dtype=np.float32)
    frames = clip.reshape(len(clip), -1)
    bus = MasterBus(
        sample_rate, gain_db=gain_db, channels=frames.shape[1], max_block_frames=block_frames
    )
    padded = np.concatenate([frames, np.zeros((bus.delay_frames, frames.shape[1]), np.float32)])
    for start in range(0, len(padded), block_frames):
        bus.process(padded[start : start + block_frames])
    return padded[bus.delay_frames :].reshape(clip.shape)


__all__ = [
    "DEFAULT_VELOCITY_CURVE",
    "DEFAULT_VELOCITY_EXPONENT",
    "LEVEL_WINDOW_S",
    "LIMIT",
    "LIMIT_DBFS",
    "MASTER_GAIN_DB_RANGE",
    "MAX_ATTACK_GAIN_DB",
    "REFERENCE_PITCH",
    "TARGET_PEAK",
    "TARGET_PEAK_DBFS",
    "VELOCITY_CURVES",
    "AttackGains",
    "Limiter",
    "MasterBus",
    "Samples",
    "attack_gain",
    "db_to_gain",
    "level_gain",
    "master_clip",
    "master_gain",
    "normalize_peak",
    "note_amplitude",
    "note_level",
    "peak",
    "reference_pitch",
    "velocity_exponent",
    "velocity_gain",
    "window_peak",
]
