"""What an output stream's callback measures, kept where another process can read it.

``StreamMeters``: callbacks, xruns, the last DAC latency and the ring of callback durations and
start times, in one float64 array the callback alone writes (the audio process places it in the
memory it shares with the player). ``StreamStats``: a summary read from them.

Standard library and NumPy only: the audio process imports this module.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StreamStats:
    """What the stream measured so far. Times in seconds; loads as fractions of a block period.

    ``latency_s`` is the output latency PortAudio reported when the stream opened;
    ``dac_latency_s`` is measured in the last callback, from PortAudio's timestamps: when that block
    reaches the DAC minus when the callback ran (on JACK it adds JACK's own playback latency). It
    is 0 or less where the host API gives no timestamps.
    """

    callbacks: int
    xruns: int
    block_period_s: float
    latency_s: float
    dac_latency_s: float
    callback_median_s: float
    callback_max_s: float

    @property
    def output_latency_s(self) -> float:
        """The stream's output latency, from the start of a block to its sound at the DAC: the
        measured ``dac_latency_s``, or the reported one where the host API gives no timestamps
        (or reports more). Every view shows this one figure under this name."""
        return max(self.latency_s, self.dac_latency_s)

    @property
    def callback_median_load(self) -> float:
        return self.callback_median_s / self.block_period_s

    @property
    def callback_max_load(self) -> float:
        return self.callback_max_s / self.block_period_s


class StreamMeters:
    """What the callback measures, in one float64 array that the callback alone writes.

    An array rather than attributes so that another process can read it: ``AudioProcess`` places
    it in memory shared with the process that runs the stream. Layout: callbacks, xruns, the last
    DAC latency, the ``perf_counter`` at the start of the last callback (the same clock in every
    process), then a ring of the last ``timing_blocks`` callback durations and one of their start
    times (``first_start_after``: which block played a command sent at a given time;
    ``bench_live.py --hops``).
    """

    _CALLBACKS, _XRUNS, _DAC_LATENCY, _LAST_START, _HEADER = range(5)

    def __init__(self, timing_blocks: int = 4096, buffer: np.ndarray | None = None) -> None:
        if buffer is None:
            buffer = np.zeros(self.size(timing_blocks))
        if buffer.shape != (self.size(timing_blocks),) or buffer.dtype != np.float64:
            raise ValueError(f"meters need {self.size(timing_blocks)} float64 values")
        self.values = buffer
        self._times = buffer[self._HEADER : self._HEADER + timing_blocks]
        self._starts = buffer[self._HEADER + timing_blocks :]

    @classmethod
    def size(cls, timing_blocks: int) -> int:
        """Number of float64 values the meters of ``timing_blocks`` callbacks take."""
        return cls._HEADER + 2 * timing_blocks

    def begin(self, xrun: bool) -> float:
        """At the start of a callback: its start time (pass it to ``end``)."""
        values = self.values
        start_s = time.perf_counter()
        values[self._LAST_START] = start_s
        self._starts[int(values[self._CALLBACKS]) % len(self._starts)] = start_s
        if xrun:
            values[self._XRUNS] += 1
        return start_s

    def end(self, start_s: float, dac_latency_s: float) -> None:
        """At the end of a callback that began at ``start_s``."""
        values = self.values
        count = int(values[self._CALLBACKS])
        self._times[count % len(self._times)] = time.perf_counter() - start_s
        values[self._DAC_LATENCY] = dac_latency_s
        values[self._CALLBACKS] = count + 1

    def restart_clock(self) -> None:
        """The stream starts now: the time since the last callback counts from here."""
        self.values[self._LAST_START] = time.perf_counter()

    @property
    def seconds_since_callback(self) -> float:
        """Since the last callback began (or since ``restart_clock``)."""
        return time.perf_counter() - float(self.values[self._LAST_START])

    def starts(self, since: int = 0) -> np.ndarray:
        """``perf_counter`` at the start of each callback after ``since`` (a ``callbacks`` count),
        as far as the ring still holds them."""
        count = int(self.values[self._CALLBACKS])
        first = max(since, count - len(self._starts), 0)
        return self._starts[np.arange(first, count) % len(self._starts)]

    def first_start_after(self, when_s: float) -> float | None:
        """The start (``perf_counter``) of the first callback that began at ``when_s`` or later:
        the block that played a command sent then, as each block takes the commands that arrived
        before it. None while no callback has begun since; NaN when the ring no longer holds the
        callbacks of that time."""
        starts = self.starts()
        later = starts[starts >= when_s]
        if not len(later):
            return None
        if int(self.values[self._CALLBACKS]) > len(starts) and later[0] == starts[0]:
            return math.nan  # the callbacks before the oldest held one are gone
        return float(later[0])

    def stats(self, block_period_s: float, latency_s: float, since: int = 0) -> StreamStats:
        """Counts so far, and callback times over the callbacks after ``since`` (a ``callbacks``
        count read earlier) as far as the ring still holds them."""
        values, times = self.values, self._times
        count = int(values[self._CALLBACKS])
        first = max(since, count - len(times), 0)
        times_s = times[np.arange(first, count) % len(times)]
        return StreamStats(
            callbacks=count,
            xruns=int(values[self._XRUNS]),
            block_period_s=block_period_s,
            latency_s=latency_s,
            dac_latency_s=float(values[self._DAC_LATENCY]),
            callback_median_s=float(np.median(times_s)) if len(times_s) else 0.0,
            callback_max_s=float(times_s.max()) if len(times_s) else 0.0,
        )


__all__ = ["StreamMeters", "StreamStats"]
