"""Loudness of rendered audio (ITU-R BS.1770-4), measured as it streams, and the gain that
brings a render to a loudness target without passing a true-peak ceiling.

A render is measured while it is written, so memory does not grow with the song: each block is
K-weighted (pyloudnorm's BS.1770 filter stages, run with their state carried from block to
block) and its energy summed per 100 ms hop; the integrated loudness is then the gated mean of
the 400 ms blocks (75 % overlap) those hops make, absolute gate −70 LUFS, relative gate −10 LU, as
``pyloudnorm.Meter.integrated_loudness`` computes it on a whole array. True peak is the peak of
the signal oversampled 4× (BS.1770-4 Annex 2), through soxr's streaming resampler.

A song with too little sound above the absolute gate (silence, a lone click) has no loudness
worth matching: it is left as it is rather than amplified by tens of dB (``normalising_gain``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyloudnorm
import soxr
from scipy.signal import lfilter

from gansynth_instrument.errors import GansynthError

DEFAULT_TARGET_LUFS = -16.0
TARGET_RANGE_LUFS = (-40.0, -5.0)
TRUE_PEAK_CEILING_DBTP = -1.0
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_HOPS = 4  # a 400 ms gating block is 4 hops of 100 ms (75 % overlap)
HOP_S = 0.1
OVERSAMPLING = 4  # BS.1770-4 Annex 2: 4× at 48 kHz
MIN_GATED_S = 1.0  # less audio above the absolute gate than this is not normalised
MAX_GAIN_DB = 40.0  # nor is a song that would need more gain than this


def check_target(lufs: float) -> float:
    """A loudness target in ``TARGET_RANGE_LUFS``; a one-line error names the range."""
    low, high = TARGET_RANGE_LUFS
    if not (math.isfinite(lufs) and low <= lufs <= high):
        raise GansynthError(f"--loudness must be {low:g}..{high:g} LUFS, got {lufs:g}")
    return lufs


@dataclass(frozen=True)
class Loudness:
    """What a ``LoudnessMeter`` measured."""

    lufs: float  # integrated loudness; -inf when no block passes the absolute gate
    true_peak_dbtp: float  # -inf for digital silence
    gated_s: float  # seconds of audio (in 100 ms hops) that the gates kept


class LoudnessMeter:
    """Integrated loudness and true peak of [frames, channels] blocks fed in order (``add``)."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        # BS.1770's K-weighting: a +4 dB shelf above 1.5 kHz (the head), then a 38 Hz high-pass.
        stages = [
            pyloudnorm.IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf"),
            pyloudnorm.IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass"),
        ]
        self._coefficients = [(stage.b, stage.a, stage.passband_gain) for stage in stages]
        self._states = [np.zeros((len(a) - 1, channels)) for _, a, _ in self._coefficients]
        self._hop = round(HOP_S * sample_rate)
        self._sum = np.zeros(channels)
        self._filled = 0
        self._hops: list[np.ndarray] = []
        self._oversampler = soxr.ResampleStream(
            sample_rate, OVERSAMPLING * sample_rate, channels, dtype="float32"
        )
        self._channels = channels
        self._peak = 0.0

    def add(self, block: np.ndarray) -> None:
        """Measure the next ``block`` ([frames, channels] float32)."""
        if not len(block):
            return
        weighted = block.astype(np.float64)
        for i, (b, a, gain) in enumerate(self._coefficients):
            weighted, self._states[i] = lfilter(b, a, weighted, axis=0, zi=self._states[i])
            weighted *= gain
        squares = np.square(weighted)
        start = 0
        while start < len(squares):
            take = min(self._hop - self._filled, len(squares) - start)
            self._sum += squares[start : start + take].sum(axis=0)
            self._filled += take
            start += take
            if self._filled == self._hop:
                self._hops.append(self._sum)
                self._sum, self._filled = np.zeros(self._channels), 0
        self._note_peak(self._oversampler.resample_chunk(np.ascontiguousarray(block)))

    def _note_peak(self, oversampled: np.ndarray) -> None:
        if oversampled.size:
            self._peak = max(self._peak, float(np.abs(oversampled).max()))

    def result(self) -> Loudness:
        """The loudness of everything added (call once, after the last block)."""
        empty = np.zeros((0, self._channels), dtype=np.float32)
        self._note_peak(self._oversampler.resample_chunk(empty, last=True))
        true_peak = 20 * math.log10(self._peak) if self._peak > 0 else -math.inf
        hops = np.array(self._hops).reshape(-1, self._channels)
        if len(hops) < BLOCK_HOPS:
            return Loudness(-math.inf, true_peak, 0.0)
        running = np.concatenate([np.zeros((1, self._channels)), np.cumsum(hops, axis=0)])
        # Mean square per 400 ms block and channel; stereo channels weigh 1 each (BS.1770).
        blocks = (running[BLOCK_HOPS:] - running[:-BLOCK_HOPS]) / (BLOCK_HOPS * self._hop)
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10 * np.log10(blocks.sum(axis=1))
        kept = block_lufs >= ABSOLUTE_GATE_LUFS
        if not kept.any():
            return Loudness(-math.inf, true_peak, 0.0)
        relative = -0.691 + 10 * math.log10(blocks[kept].mean(axis=0).sum()) + RELATIVE_GATE_LU
        kept &= block_lufs > relative
        lufs = -0.691 + 10 * math.log10(blocks[kept].mean(axis=0).sum())
        return Loudness(lufs, true_peak, float(kept.sum()) * HOP_S)


@dataclass(frozen=True)
class Normalisation:
    """The gain ``normalising_gain`` chose, and why (a line for the render's summary)."""

    gain_db: float  # 0.0 when the audio is left as it is
    applied: bool
    note: str  # what was done, for a line of its own


def normalising_gain(measured: Loudness, target_lufs: float) -> Normalisation:
    """The gain that brings ``measured`` to ``target_lufs``, lowered where it would lift the true
    peak above ``TRUE_PEAK_CEILING_DBTP``. Audio with less than ``MIN_GATED_S`` above the gates
    (silence, a lone click), or that would need more than ``MAX_GAIN_DB``, is left as it is."""
    if measured.gated_s < MIN_GATED_S:
        return Normalisation(
            0.0,
            False,
            f"not normalised: only {measured.gated_s:.1f} s of sound above the "
            f"{ABSOLUTE_GATE_LUFS:g} LUFS gate (needs {MIN_GATED_S:g} s); written as it is",
        )
    wanted = target_lufs - measured.lufs
    if wanted > MAX_GAIN_DB:
        return Normalisation(
            0.0,
            False,
            f"not normalised: {measured.lufs:.1f} LUFS would need {wanted:+.1f} dB (more than "
            f"+{MAX_GAIN_DB:g} dB); written as it is",
        )
    room = TRUE_PEAK_CEILING_DBTP - measured.true_peak_dbtp
    if wanted <= room:
        return Normalisation(
            wanted, True, f"normalised to {target_lufs:g} LUFS: gain {wanted:+.1f} dB"
        )
    return Normalisation(
        room,
        True,
        f"gain {room:+.1f} dB, not the {wanted:+.1f} dB that {target_lufs:g} LUFS needs: the "
        f"true peak stays at {TRUE_PEAK_CEILING_DBTP:g} dBTP "
        f"({measured.lufs + room:.1f} LUFS)",
    )


__all__ = [
    "DEFAULT_TARGET_LUFS",
    "TARGET_RANGE_LUFS",
    "TRUE_PEAK_CEILING_DBTP",
    "Loudness",
    "LoudnessMeter",
    "Normalisation",
    "check_target",
    "normalising_gain",
]
