"""The audio process's shared file and the mix its callback runs over it.

``SharedLayout`` places the parts both processes map (command ring, status row, voice-end ring,
the stream's meters, the note arena) in one anonymous file; ``ChildConfig`` is what the child
gets at spawn. ``mix_function`` builds the callback's mix over those views: the compiled core's
(``_mixcore.c``, one call per block), or, where it is not built or not chosen, the NumPy
``Mixer`` fed by ``RingReader``, which turns the ring's records into the ``Mixer``'s tuple
commands and writes the status the core would. Neither waits on anything.

Pure NumPy and the mixers: the audio process imports this module.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Any

import numpy as np

from gansynth_instrument.live.audio import MixFn
from gansynth_instrument.live.compiled_mixer import (
    RING_RECORDS,
    core_arguments,
    load_core,
    numpy_notice,
)
from gansynth_instrument.live.mixer import CMD_MORPH, CMD_NOTE_ON, NOTE_FIELDS, Mixer, voice_slots
from gansynth_instrument.live.protocol import (
    ENDED_RING,
    OP_LOAD,
    STATUS_ENDED,
    STATUS_LIMITED,
    STATUS_MIXER,
    STATUS_PEAK,
    STATUS_SIZE,
    STATUS_VOICES,
    Ring,
    from_record,
    record_error,
)
from gansynth_instrument.live.stream_meters import StreamMeters
from gansynth_instrument.notes.levels import MasterBus
from gansynth_instrument.notes.note import LoopedNote, Note

MIXERS = ("numpy", "compiled")  # the status row's STATUS_MIXER, in words


@dataclass(frozen=True)
class SharedLayout:
    """Where each part lies in the shared file (byte offsets, each on pages of its own) and how
    big it is."""

    timing_blocks: int
    entries: int
    entry_frames: int

    @property
    def _sizes(self) -> tuple[int, int, int, int, int]:
        return (
            Ring.size(RING_RECORDS),
            8 * STATUS_SIZE,
            8 * ENDED_RING,
            8 * StreamMeters.size(self.timing_blocks),
            2 * self.entries * self.entry_frames,
        )

    @property
    def size(self) -> int:
        return sum(_align(n) for n in self._sizes)

    def views(self, buffer: mmap.mmap | bytearray) -> tuple[np.ndarray, ...]:
        """(command ring bytes, status, voice-end ring, meters, arena) as arrays over
        ``buffer``."""
        offsets = [int(n) for n in np.cumsum([0] + [_align(n) for n in self._sizes])]
        ring = np.frombuffer(buffer, np.uint8, Ring.size(RING_RECORDS), offsets[0])
        status = np.frombuffer(buffer, np.float64, STATUS_SIZE, offsets[1])
        ended = np.frombuffer(buffer, np.int64, ENDED_RING, offsets[2])
        meters = np.frombuffer(
            buffer, np.float64, StreamMeters.size(self.timing_blocks), offsets[3]
        )
        arena = np.frombuffer(
            buffer, np.int16, self.entries * self.entry_frames, offsets[4]
        ).reshape(self.entries, self.entry_frames)
        return ring, status, ended, meters, arena


def _align(size: int) -> int:
    return -(-size // mmap.PAGESIZE) * mmap.PAGESIZE


@dataclass(frozen=True)
class ChildConfig:
    """Everything the child needs to open the stream (sent at spawn)."""

    layout: SharedLayout
    sample_rate: int
    block_frames: int
    channels: int
    device: str | int | None
    polyphony: int
    max_block_frames: int
    gain_db: float


class RingReader:
    """The NumPy fallback's side of the ring: records → the ``Mixer``'s tuple commands (notes
    as ``Note``s over the arena), then the mix and the status the compiled core would write."""

    def __init__(self, mixer: Mixer, views: tuple[np.ndarray, ...], entry_frames: int) -> None:
        ring, self._status, self._ended, _, self._arena = views
        self._ring = Ring(ring, RING_RECORDS)
        self._mixer = mixer
        self._limiter = mixer.master.limiter if mixer.master is not None else None
        self._notes: list[Any] = [None] * len(self._arena)
        self._entry_frames = entry_frames
        self._taken = 0  # records read; the ring's read count: those applied

    def mix(self, out: np.ndarray, frames: int) -> None:
        # Real-time thread: audio.py's callback rules apply.
        mixer, ring = self._mixer, self._ring
        end = ring.readable(self._taken)
        if end > self._taken:
            for position, values in enumerate(ring.peek(self._taken, end), self._taken):
                self._take(values, position)
            self._taken = end
        mixer.mix(out, frames)
        ring.publish_read(self._taken - len(mixer.commands))
        status, ended = self._status, self._ended
        while mixer.finished:
            count = int(status[STATUS_ENDED])
            ended[count % ENDED_RING] = mixer.finished.popleft()
            status[STATUS_ENDED] = count + 1
        mixer.retired.clear()  # views of the arena: dropping them frees no waveform
        status[STATUS_VOICES] = mixer.voices_active
        if mixer.voices_active > status[STATUS_PEAK]:
            status[STATUS_PEAK] = mixer.voices_active
        if self._limiter is not None:
            status[STATUS_LIMITED] = self._limiter.limited_frames

    def _take(self, values: tuple, position: int) -> None:
        error = record_error(
            values,
            position,
            slots=self._mixer.slots,
            entries=len(self._notes),
            loaded=lambda entry: self._notes[entry] is not None,
            capacity=lambda entry: self._entry_frames,
        )
        if error is not None:
            self._ring.count_dropped()
            return
        cmd = from_record(values)
        if cmd[1] == OP_LOAD:
            self._load(*cmd[2:])
            return
        if cmd[1] in (CMD_NOTE_ON, CMD_MORPH):
            fields = list(cmd)
            for i in NOTE_FIELDS:
                if fields[i] is not None:
                    fields[i] = self._notes[fields[i]]
            cmd = tuple(fields)
        self._mixer.commands.append(cmd)

    def _load(
        self,
        entry: int,
        frames: int,
        gain: float,
        pitch: int,
        sample_rate: int,
        loop_start: int,
        loop_end: int,
    ) -> None:
        pcm = self._arena[entry, :frames]
        if loop_end:
            self._notes[entry] = LoopedNote(pcm, gain, pitch, sample_rate, loop_start, loop_end)
        else:
            self._notes[entry] = Note(pcm, gain, pitch, sample_rate)


def mix_function(config: ChildConfig, views: tuple[np.ndarray, ...]) -> MixFn:
    """The callback's mix: the compiled core's, else the NumPy reader's (one notice line).
    Raises ``GansynthError`` where the compiled core is required and does not load."""
    layout = config.layout
    chunk = max(config.block_frames, config.max_block_frames)
    master = MasterBus(config.sample_rate, gain_db=config.gain_db, max_block_frames=chunk)
    module, why = load_core()
    status = views[1]
    if module is not None:
        core = module.Core(
            views[0],
            status,
            views[2],
            views[4],
            layout.entries,
            layout.entry_frames,
            config.sample_rate,
            voice_slots(config.polyphony),
            config.channels,
            chunk,
            **core_arguments(master, config.sample_rate, None),
        )
        status[STATUS_MIXER] = MIXERS.index("compiled")
        return core.mix
    numpy_notice(why)
    mixer = Mixer(
        config.sample_rate,
        polyphony=config.polyphony,
        channels=config.channels,
        max_block_frames=chunk,
        master=master,
    )
    status[STATUS_MIXER] = MIXERS.index("numpy")
    return RingReader(mixer, views, layout.entry_frames).mix


__all__ = ["MIXERS", "ChildConfig", "RingReader", "SharedLayout", "mix_function"]
