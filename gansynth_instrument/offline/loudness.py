"""Loudness of rendered audio (ITU-R BS.1770-4), measured as it streams, and the gain that
brings a render to a loudness target without passing a true-peak ceiling.

A render is measured while it is written, so memory does not grow with the song: each block is
K-weighted (pyloudnorm's BS.1770 filter stages, run with their state carried from block to
block) and its energy summed per 100 ms hop; the integrated loudness is then the gated mean of
the 400 ms blocks (75 % overlap) those hops make, absolute gate −70 LUFS, relative gate −10 LU, as
``pyloudnorm.Meter.integrated_loudness`` computes it on a whole array. True peak is the peak of
the signal oversampled 4× (BS.1770-4 Annex 2), through soxr's streaming resampler.

When the gain that reaches the target would lift the true peak over the ceiling, the gain is
applied in full through a true-peak look-ahead limiter (``limit_scaled``), as mastering tools do.

A song with too little sound above the absolute gate (silence, a lone click) has no loudness
worth matching: it is left as it is rather than amplified by tens of dB (``normalising_gain``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
import soxr
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter, resample_poly

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.offline.audio_files import BlockWriter, copy_scaled

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
LIMIT_LOOKAHEAD_S = 0.0015  # the limiter's gain is down before the peak it meets
LIMIT_RELEASE_S = 0.02  # time constant of its gain reduction (dB) coming back to 0: as fast as
# the master limiter (levels.RELEASE_DB_PER_S), so a brief peak ducks the song briefly
LIMIT_MARGIN_DB = 0.2  # it aims this far under the ceiling: its peak detector is not the meter's
LIMITED_DB = 0.1  # a frame turned down by more than this counts as limited
LIMIT_PASSES = 4  # measured gains tried before the one written


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
    limit: bool = False  # the gain needs the true-peak limiter (``limit_scaled``)
    written: Loudness | None = None  # the limited file's, as measured; None: measured + gain
    limited_percent: float = 0.0  # of the frames, turned down by the true-peak limiter


def normalising_gain(measured: Loudness, target_lufs: float) -> Normalisation:
    """The gain that brings ``measured`` to ``target_lufs``; ``limit`` where it would lift the
    true peak above ``TRUE_PEAK_CEILING_DBTP``, so the peaks must be limited. Audio with less than
    ``MIN_GATED_S`` above the gates (silence, a lone click), or that would need more than
    ``MAX_GAIN_DB``, is left as it is."""
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
        wanted,
        True,
        f"normalised to {target_lufs:g} LUFS: gain {wanted:+.1f} dB, true-peak limited",
        limit=True,
    )


def limited_gain(
    source: Path, measured: Loudness, target_lufs: float, sample_rate: int, channels: int
) -> tuple[float, Loudness]:
    """The gain (dB) that, through ``limit_scaled``, brings ``source`` to ``target_lufs``, and
    the loudness it gives: limiting takes loudness away, so each try is measured and the gain
    raised by what it missed (``LIMIT_PASSES`` tries at most; a pass reads the file once)."""

    def loudness_at(gain_db: float) -> Loudness:
        meter = LoudnessMeter(sample_rate, channels)
        limit_scaled(source, 10.0 ** (gain_db / 20.0), meter.add)
        return meter.result()

    gain_db = target_lufs - measured.lufs
    for _ in range(LIMIT_PASSES - 1):
        got = loudness_at(gain_db)
        if abs(got.lufs - target_lufs) < 0.05 or gain_db >= MAX_GAIN_DB:
            return gain_db, got
        gain_db = min(MAX_GAIN_DB, gain_db + target_lufs - got.lufs)
    return gain_db, loudness_at(gain_db)


def write_normalised(
    mix: Path, writer: BlockWriter, measured: Loudness, target_lufs: float
) -> Normalisation:
    """``mix`` (a sound file that measured ``measured``) into ``writer`` at ``target_lufs``: one
    gain for the whole file where the true peak stays under the ceiling (``normalising_gain``),
    else the full gain through the true-peak limiter (``limited_gain``, ``limit_scaled``)."""
    normalisation = normalising_gain(measured, target_lufs)
    if not normalisation.applied and measured.true_peak_dbtp > TRUE_PEAK_CEILING_DBTP:
        # Written as it is, yet over the ceiling (a loud chord in a short song): the limiter
        # alone, so that no format clips it.
        limited = limit_scaled(mix, 1.0, writer.write)
        share = limited.percent
        ceiling = f"{TRUE_PEAK_CEILING_DBTP:g} dBTP"
        note = f"{normalisation.note}; limited {share:.2f} % of frames to {ceiling}"
        return replace(normalisation, note=note, limit=True, limited_percent=share)
    if not normalisation.limit:
        copy_scaled(mix, writer, 10.0 ** (normalisation.gain_db / 20.0))
        return normalisation
    info = sf.info(str(mix))
    gain_db, written = limited_gain(mix, measured, target_lufs, info.samplerate, info.channels)
    limited = limit_scaled(mix, 10.0 ** (gain_db / 20.0), writer.write)
    return limited.normalisation(target_lufs, gain_db, written)


@dataclass(frozen=True)
class Limited:
    """What ``limit_scaled`` did."""

    frames: int  # frames it turned down
    total_frames: int
    max_reduction_db: float  # its deepest gain reduction

    @property
    def percent(self) -> float:
        """The share of the frames it turned down, in %."""
        return 100 * self.frames / max(1, self.total_frames)

    def normalisation(self, target_lufs: float, gain_db: float, written: Loudness) -> Normalisation:
        """What was done, for the render's summary."""
        return Normalisation(
            gain_db,
            True,
            f"normalised to {target_lufs:g} LUFS: gain {gain_db:+.1f} dB, limited "
            f"{self.percent:.2f} % of frames by up to {self.max_reduction_db:.1f} dB",
            limit=True,
            written=written,
            limited_percent=self.percent,
        )


def limit_scaled(
    source: Path,
    gain: float,
    sink: Callable[[np.ndarray], None],
    *,
    ceiling_dbtp: float = TRUE_PEAK_CEILING_DBTP - LIMIT_MARGIN_DB,
    block_frames: int = 65536,
) -> Limited:
    """``source`` (a sound file) times ``gain`` into ``sink`` block by block, through a
    stereo-linked true-peak limiter: each frame's peak is read on the signal oversampled 4×, the
    gain reduction (dB) needed under ``ceiling_dbtp`` is held over ``LIMIT_LOOKAHEAD_S`` ahead,
    released exponentially (``LIMIT_RELEASE_S``) and averaged over the look-ahead, so it is down
    in full by each peak and moves smoothly. Memory is a few blocks, whatever the file's length.
    """
    sample_rate = sf.info(str(source)).samplerate
    lookahead = max(1, round(LIMIT_LOOKAHEAD_S * sample_rate))
    tau = LIMIT_RELEASE_S * sample_rate
    margin = 16  # frames either side that make the 4× interpolation exact inside a window
    ceiling = 10.0 ** (ceiling_dbtp / 20.0)
    released = 0.0  # the reduction (dB) at the frame before the block
    history = None  # the reductions of the look-ahead's frames before the block
    frames = limited = 0
    deepest = 0.0
    with sf.SoundFile(str(source)) as file:
        total = file.frames
        for start in range(0, total, block_frames):
            end = min(start + block_frames, total)
            first = max(0, start - margin)
            file.seek(first)
            last = end + lookahead - 1 + margin
            window = file.read(last - first, dtype="float32", always_2d=True)
            window *= np.float32(gain)
            # Peak of each frame and the interpolated points either side of it, all channels.
            fine = np.abs(resample_poly(window, OVERSAMPLING, 1, axis=0)).max(axis=1)
            fine = np.pad(fine, (OVERSAMPLING, OVERSAMPLING))
            offset = (start - first) * OVERSAMPLING + OVERSAMPLING
            count = min(end + lookahead - 1, total) - start
            spans = sliding_window_view(fine[offset - OVERSAMPLING + 1 :], 2 * OVERSAMPLING - 1)
            peaks = spans[: count * OVERSAMPLING : OVERSAMPLING].max(axis=1)
            with np.errstate(divide="ignore"):
                needed = np.maximum(0.0, 20.0 * np.log10(peaks / ceiling))
            needed = np.pad(needed, (0, end - start + lookahead - 1 - len(needed)))
            held = sliding_window_view(needed, lookahead).max(axis=1)
            # Exponential release: reduction[n] = max over k ≤ n of held[k]·exp(-(n - k)/tau).
            steps = np.arange(len(held)) / tau
            with np.errstate(divide="ignore"):
                rising = np.maximum.accumulate(np.log(held) + steps) - steps
            carried = math.log(released) - (steps + 1 / tau) if released > 0 else -np.inf
            reduction = np.exp(np.maximum(rising, carried))
            if history is None:  # before the file, as at its first frame: down by its peaks
                history = np.full(lookahead - 1, reduction[0])
            smoothed = np.convolve(np.concatenate([history, reduction]), np.ones(lookahead))
            smoothed = smoothed[lookahead - 1 : lookahead - 1 + len(reduction)] / lookahead
            released = float(reduction[-1])
            history = np.concatenate([history, reduction])[len(reduction) :]
            block = window[start - first : end - first]
            if smoothed.max() > 0.0:
                block = block * (10.0 ** (-smoothed / 20.0)).astype(np.float32)[:, None]
                limited += int(np.count_nonzero(smoothed > LIMITED_DB))
                deepest = max(deepest, float(smoothed.max()))
            sink(block)
            frames += end - start
    return Limited(limited, frames, deepest)


__all__ = [
    "DEFAULT_TARGET_LUFS",
    "TARGET_RANGE_LUFS",
    "TRUE_PEAK_CEILING_DBTP",
    "Limited",
    "Loudness",
    "LoudnessMeter",
    "Normalisation",
    "check_target",
    "limit_scaled",
    "limited_gain",
    "normalising_gain",
    "write_normalised",
]
