"""Gain staging: how loud a note comes out, from the model's raw waveform to the output.

A note's samples reach the output as::

    waveform × level(timbre) × velocity_gain(velocity) × 10^(preset gain_db / 20)
             × 10^(master gain_db / 20)  →  the master-bus limiter

- ``level``: the model makes some timbres far louder than others (tens of dB apart), so each
  timbre is levelled once: its ``reference`` is the peak of its note at ``REFERENCE_PITCH``,
  measured when the timbre's notes are made and kept with them, and every note of the timbre is
  scaled by ``TARGET_PEAK / reference``. A timbre's notes keep their loudness relative to each
  other (the model's own balance across the keyboard); every timbre's middle C at full velocity
  peaks at ``TARGET_PEAK_DBFS`` before preset and master gain.
- ``velocity_gain``: ``(velocity / 127) ** exponent`` with a named exponent (``VELOCITY_CURVES``);
  the default ``gm`` is General MIDI's curve (DLS level 1: 40·log10(velocity/127) dB).
- preset ``gain_db`` (presets.py) balances one preset against others; master ``gain_db``
  (``MASTER_GAIN_DB_RANGE``) sets the whole instrument's level.
- ``Limiter``: chords add up; the master bus never exceeds ``LIMIT_DBFS`` (a look-ahead limiter
  that leaves audio below it untouched), so the output never clips. ``TARGET_PEAK_DBFS`` leaves
  room enough that it is a safety net, not a compressor on a whole song.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gansynth_instrument.errors import GansynthError

if TYPE_CHECKING:
    from gansynth_instrument.notes.timbre import Timbre

REFERENCE_PITCH = 60  # middle C; a model without it is levelled at its nearest pitch
# A levelled timbre's middle C at velocity 127 on a channel at its GM defaults: clearly heard
# alone, 11 dB below the limiter for a band's chords to add up (the limiter's share of a General
# MIDI song's frames: benchmarks/bench_songs.py).
TARGET_PEAK_DBFS = -12.0
TARGET_PEAK = 10.0 ** (TARGET_PEAK_DBFS / 20.0)
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
RELEASE_DB_PER_S = 80.0  # gain recovers at this rate after a peak (6 dB in 75 ms)


def reference_pitch(pitches: tuple[int, ...] | list[int]) -> int:
    """The pitch a model's timbres are levelled at: ``REFERENCE_PITCH`` or the nearest one."""
    return min(pitches, key=lambda p: (abs(p - REFERENCE_PITCH), p))


def peak(audio: np.ndarray) -> float:
    """Largest absolute sample (0.0 for an empty or silent waveform)."""
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def level_gain(reference: float) -> float:
    """The factor that levels a timbre whose reference note peaks at ``reference`` (a silent
    timbre stays silent rather than being blown up)."""
    return TARGET_PEAK / reference if reference > 0.0 else 1.0


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
    audio that stays below it passes unchanged (delayed by ``delay_frames``).

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
        if not 0.0 < limit <= 1.0:
            raise ValueError(f"limit must be in (0, 1], got {limit}")
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
    """Master gain then the limiter, in place on the mixer's stereo bus (``channels`` 2: left,
    right; see the module docstring); allocation-free like ``Limiter``. ``gain_db`` is checked
    where it is set (``master_gain``: the play and render settings, the clip commands), not here.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        gain_db: float = 0.0,
        channels: int = 2,
        max_block_frames: int = 1024,
    ) -> None:
        self.gain = db_to_gain(gain_db)
        self.limiter = Limiter(sample_rate, channels=channels, max_block_frames=max_block_frames)

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
    "LIMIT",
    "LIMIT_DBFS",
    "MASTER_GAIN_DB_RANGE",
    "REFERENCE_PITCH",
    "TARGET_PEAK",
    "TARGET_PEAK_DBFS",
    "VELOCITY_CURVES",
    "Limiter",
    "MasterBus",
    "db_to_gain",
    "level_gain",
    "master_clip",
    "master_gain",
    "normalize_peak",
    "note_amplitude",
    "peak",
    "reference_pitch",
    "velocity_exponent",
    "velocity_gain",
]
