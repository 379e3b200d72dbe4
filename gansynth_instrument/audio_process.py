"""The audio process: the mixer and the audio stream in a process of their own.

Why a process: the audio callback is Python, so it needs the GIL, and NumPy hands the GIL over
inside most of the mixer's calls (about 15 per 32-voice block). Any other busy thread of the same
process (MIDI input, the cache's renderer or collector, the status view) then takes it for up to
the switch interval each time, and the block is late. Here the callback is the only busy thread
of its process.

``AudioProcess`` (in the player's process) starts the child and is two things to the player:
the ``MixerLink`` that ``Voices`` sends its commands to, and the audio output (start, stop,
close, stats, stall and loss of the server), as ``audio.AudioOutput`` is in one process.

How the two processes talk:
- commands: a one-way pipe. The callback drains it at the start of each block (a zero-timeout
  ``select``, then small unpickles), so it is the pipe's only reader and never waits on it.
- control: a duplex pipe to the child's main thread, which sleeps in it: start, stop, close and
  their answers; between requests it notes every ``ACTIVE_POLL_S`` whether the stream is active.
- shared memory (one anonymous file): the stream's meters (``audio.StreamMeters``), a status row
  (commands applied, voices sounding and their peak), a ring of the serial numbers of voices that
  ended, and the note arena.

Notes cross once: a waveform is copied into a free arena entry (sized for a looped note) with a
``_LOAD`` message, and commands name entries by index. The control side knows which entries a
voice may still read (the notes its mixer layers hold: those of its note-on, then the
``MORPH_LAYERS`` most recently named by its morphs, the rule the Mixer follows; until the child
reports the voice ended or the slot is reused), and rewrites an entry only when no voice holds it
and the child has applied every command sent while one did.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import select
import signal
import sys
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import send_handle
from typing import Any

import numpy as np

from gansynth_instrument.audio import (
    AudioOutput,
    OutputDevice,
    StreamHealth,
    StreamMeters,
    abandon_portaudio,
    name_jack_client,
)
from gansynth_instrument.errors import DeviceError
from gansynth_instrument.levels import MasterBus
from gansynth_instrument.mixer import (
    CMD_MORPH,
    CMD_NOTE_ON,
    MORPH_LAYERS,
    NOTE_FIELDS,
    Mixer,
    layers_after,
    voice_slots,
)
from gansynth_instrument.note import LoopedNote, Note, looped_frames_bound
from gansynth_instrument.processes import (
    SPAWN,
    end_process,
    map_file,
    receive_mapping,
    shared_file,
    spawn,
)

JACK_CLIENT_NAME = "gansynth-instrument-audio"  # its ports: gansynth-instrument-audio:out_0, …
STARTUP_TIMEOUT_S = 30.0  # spawn, imports and opening the stream, on a loaded machine
REQUEST_TIMEOUT_S = 10.0
EXIT_TIMEOUT_S = 3.0  # then the child is killed (it can hang in a dead JACK server)
ACTIVE_POLL_S = 0.05
# The child's GIL is contended only by its own idle main thread, but keep hand-overs short.
GIL_SWITCH_INTERVAL_S = 0.0005

# (_LOAD, entry, frames, gain as played (levelled), pitch, sample_rate, loop_start, loop_end)
_LOAD = "load"

# Status row (float64): commands applied, voice-end ring write count, voices sounding, their peak
# since the control side last reset it, and whether the stream is active.
_APPLIED, _ENDED, _VOICES, _PEAK, _ACTIVE, _STATUS_SIZE = range(6)
_RING = 1024  # > the voices that can end between two reads (slots + 1, see Voices)


@dataclass(frozen=True)
class _Layout:
    """Where each part lies in the shared file (byte offsets) and how big it is."""

    timing_blocks: int
    entries: int
    entry_frames: int

    @property
    def _sizes(self) -> tuple[int, int, int, int]:
        return (
            8 * _STATUS_SIZE,
            8 * _RING,
            8 * StreamMeters.size(self.timing_blocks),
            2 * self.entries * self.entry_frames,
        )

    @property
    def size(self) -> int:
        return sum(_align(n) for n in self._sizes)

    def views(self, buffer: mmap.mmap) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(status, ring, meters, arena) as arrays over ``buffer``."""
        offsets = np.cumsum([0] + [_align(n) for n in self._sizes])
        status = np.frombuffer(buffer, np.float64, _STATUS_SIZE, int(offsets[0]))
        ring = np.frombuffer(buffer, np.int64, _RING, int(offsets[1]))
        meters = np.frombuffer(
            buffer, np.float64, StreamMeters.size(self.timing_blocks), int(offsets[2])
        )
        arena = np.frombuffer(
            buffer, np.int16, self.entries * self.entry_frames, int(offsets[3])
        ).reshape(self.entries, self.entry_frames)
        return status, ring, meters, arena


def _align(size: int) -> int:
    return -(-size // mmap.PAGESIZE) * mmap.PAGESIZE


@dataclass(frozen=True)
class _Config:
    """Everything the child needs to open the stream (sent at spawn)."""

    layout: _Layout
    sample_rate: int
    block_frames: int
    channels: int
    device: str | int | None
    polyphony: int
    max_block_frames: int
    gain_db: float


class AudioProcess(StreamHealth):
    """The mixer and the audio stream in a child process (see the module docstring).

    ``open()`` starts the child and opens the stream there; errors (no device, a wrong rate) are
    the ``DeviceError`` that ``AudioOutput`` would raise. ``note_frames``: the longest note the
    cache makes (at ``sample_rate``); the arena sizes its entries for it, looped. ``arena_spare``:
    entries beyond those the voices can hold at once, kept so that replayed notes are not copied
    again. ``gain_db``: the master gain; the mix then goes through the master-bus limiter
    (``levels.MasterBus``). Use as a context manager, or ``open()``, ``start()``, then ``stop()``
    and ``close()``.
    """

    def __init__(
        self,
        *,
        note_frames: int,
        sample_rate: int = 48000,
        block_frames: int = 128,
        channels: int = 2,
        device: str | int | None = None,
        polyphony: int = 32,
        max_block_frames: int = 1024,
        timing_blocks: int = 4096,
        arena_spare: int = 48,
        gain_db: float = 0.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.block_frames = block_frames
        self.channels = channels
        self.polyphony = polyphony
        self.slots = voice_slots(polyphony)
        entries = MORPH_LAYERS * self.slots + arena_spare  # a voice's layers while it morphs
        self._config = _Config(
            _Layout(timing_blocks, entries, looped_frames_bound(note_frames)),
            sample_rate,
            block_frames,
            channels,
            device,
            polyphony,
            max_block_frames,
            gain_db,
        )
        self._process: multiprocessing.process.BaseProcess | None = None
        self._running = False
        self._closed = False
        # Control side of the arena (see the module docstring).
        self._sent = 0  # commands sent; the child reports how many it applied
        self._ended_read = 0  # voice-end ring entries taken
        # id(pcm) → the arena entry holding a copy. Weak references tell a live waveform from a
        # new one at a freed one's address; the copy plays on whether the cache keeps it or not.
        self._entry_of: dict[int, int] = {}
        self._pcm: list[weakref.ref[np.ndarray] | None] = [None] * entries
        self._pcm_id: list[int | None] = [None] * entries
        self._users = [0] * entries
        self._free_after = [0] * entries  # rewritable once this many commands are applied
        self._lru: OrderedDict[int, None] = OrderedDict.fromkeys(range(entries))
        self._voice: dict[int, tuple[int, tuple[int, ...]]] = {}  # slot → serial, entries held
        self._slot_of: dict[int, int] = {}  # serial → slot

    def open(self) -> None:
        """Start the child and open the stream there (not started yet)."""
        layout = self._config.layout
        with shared_file(layout.size, "gansynth-audio") as fd:
            self._buffer = map_file(fd, layout.size, populate=True)
            self._control, child_control = SPAWN.Pipe()
            commands_in, self._commands = SPAWN.Pipe(duplex=False)
            self._process = spawn(
                _serve, (child_control, commands_in, self._config), "gansynth-audio"
            )
            child_control.close()
            commands_in.close()
            send_handle(self._control, fd, self._process.pid)
        self._status, self._ring, meters, self._arena = layout.views(self._buffer)
        self.meters = StreamMeters(layout.timing_blocks, meters)
        try:
            reply = self._answer(STARTUP_TIMEOUT_S, "open the audio output")
        except DeviceError:
            self._closed = True
            self._end_child()
            raise
        self.device: OutputDevice = reply[1]
        self.latency_s: float = reply[2]

    # -- MixerLink: what Voices calls (MIDI thread, under the player's lock) -------------------

    def send(self, cmd: tuple) -> bool:
        """Send a command, its notes copied into the arena first; False if the arena has no
        free entry (every one held by a voice or by commands in flight)."""
        op = cmd[1]
        held: tuple[int, ...] = ()
        if op in (CMD_NOTE_ON, CMD_MORPH):
            fields = list(cmd)
            for i in NOTE_FIELDS:
                if fields[i] is not None:
                    entry = self._place(fields[i])
                    if entry is None:
                        return False
                    fields[i] = entry
                    held += (entry,)
            cmd = tuple(fields)
        self._commands.send(cmd)
        self._sent += 1
        if op == CMD_NOTE_ON:
            self._hold(cmd[2], cmd[3], held)
        elif op == CMD_MORPH:
            # A morph of a voice that already ended is ignored by the child: nothing more held.
            previous = self._voice.get(cmd[2])
            if previous is not None and previous[0] == cmd[3]:
                self._hold(cmd[2], cmd[3], layers_after(previous[1], held))
        return True

    def pending(self) -> int:
        """Commands sent that the child has not applied yet."""
        return self._sent - int(self._status[_APPLIED])

    def take_finished(self) -> list[int]:
        """Serial numbers of the voices the child ended since the last call."""
        end = int(self._status[_ENDED])
        serials = [int(self._ring[i % _RING]) for i in range(self._ended_read, end)]
        self._ended_read = end
        for serial in serials:
            slot = self._slot_of.get(serial)
            if slot is not None:
                self._hold(slot, None, ())
        return serials

    def _place(self, note: Any) -> int | None:
        """The arena entry holding ``note``'s waveform, copied there now if it is not."""
        pcm: np.ndarray = note.pcm
        entry = self._entry_of.get(id(pcm))
        held = self._pcm[entry] if entry is not None else None
        if held is None or held() is not pcm:
            entry = self._free_entry()
            if entry is None:
                return None
            frames = len(pcm)
            if frames > self._arena.shape[1]:
                limit = self._arena.shape[1]
                raise ValueError(f"a note of {frames} frames; arena entries hold {limit}")
            old_id = self._pcm_id[entry]
            if old_id is not None and self._entry_of.get(old_id) == entry:
                del self._entry_of[old_id]
            self._arena[entry, :frames] = pcm
            self._pcm[entry] = weakref.ref(pcm)
            self._pcm_id[entry] = id(pcm)
            self._entry_of[id(pcm)] = entry
            loop = (note.loop_start, note.loop_end) if isinstance(note, LoopedNote) else (0, 0)
            self._commands.send(
                (_LOAD, entry, frames, note.gain * note.level, note.pitch, note.sample_rate, *loop)
            )
        self._lru.move_to_end(entry)
        self._free_after[entry] = max(self._free_after[entry], self._sent + 1)
        return entry

    def _free_entry(self) -> int | None:
        """The least recently used entry no voice holds and no command in flight names."""
        applied = int(self._status[_APPLIED])
        for entry in self._lru:
            if self._users[entry] == 0 and self._free_after[entry] <= applied:
                return entry
        return None

    def _hold(self, slot: int, serial: int | None, entries: tuple[int, ...]) -> None:
        """The voice in ``slot`` now reads ``entries`` (``serial`` None: it ended)."""
        old = self._voice.pop(slot, None)
        if old is not None:
            self._slot_of.pop(old[0], None)
            for entry in old[1]:
                self._users[entry] -= 1
                self._free_after[entry] = max(self._free_after[entry], self._sent)
        if serial is not None:
            self._voice[slot] = (serial, entries)
            self._slot_of[serial] = slot
            for entry in entries:
                self._users[entry] += 1

    @property
    def voices_active(self) -> int:
        """Voices mixed in the child's last block."""
        return int(self._status[_VOICES])

    @property
    def voices_peak(self) -> int:
        """The most voices mixed in one block since it was last set to 0."""
        return int(self._status[_PEAK])

    @voices_peak.setter
    def voices_peak(self, value: int) -> None:
        self._status[_PEAK] = value

    # -- the audio output ----------------------------------------------------------------------

    def start(self) -> None:
        self._request("start")
        self._running = True

    def stop(self) -> None:
        """Stop after the queued blocks have played; a stream whose callback no longer runs is
        left alone (as ``AudioOutput.stop``)."""
        if self.active and not self.stalled:
            self._request("stop")
            self._running = False

    def close(self) -> None:
        """Close the stream and end the child (killed if it hangs in a dead server). After a
        hung or lost server, this process's own PortAudio is not terminated at exit either."""
        if self._closed or self._process is None:
            self._closed = True
            return
        # A killed child took only its own JACK client along: the server still runs, and this
        # process's PortAudio terminates as usual (left unterminated, it crashes at exit).
        hung = (self.server_lost or self.stalled) and self._process.is_alive()
        self._closed = True
        if hung:
            abandon_portaudio()  # the child is left to exit (or be killed) on its own
        elif self._process.is_alive():
            with contextlib.suppress(DeviceError):  # else it is killed below
                self._request("close", timeout_s=EXIT_TIMEOUT_S)
        self._end_child()
        # The last figures stay readable; the shared memory goes.
        self._status = self._status.copy()
        self.meters = StreamMeters(self._config.layout.timing_blocks, self.meters.values.copy())
        del self._ring, self._arena
        self._buffer.close()

    def _end_child(self) -> None:
        self._control.close()
        self._commands.close()
        end_process(self._process, EXIT_TIMEOUT_S, terminate=False)

    def _request(self, what: str, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        try:
            self._control.send(what)
        except OSError as err:
            raise DeviceError(f"the audio process is gone ({err})") from err
        self._answer(timeout_s, f"{what} the audio output")

    def _answer(self, timeout_s: float, doing: str) -> tuple:
        """The child's reply: ("ok", ...) returned; ("error", line) raised as DeviceError."""
        try:
            if not self._control.poll(timeout_s):
                raise DeviceError(f"the audio process did not {doing} within {timeout_s:g} s")
            reply = self._control.recv()
        except (EOFError, OSError) as err:
            code = self._process.exitcode
            raise DeviceError(f"the audio process ended (exit code {code}) on: {doing}") from err
        if reply[0] == "error":
            raise DeviceError(reply[1])
        return reply

    @property
    def ended(self) -> str | None:
        """Why the child is gone, as one line, once it exited unasked (killed, crashed); else
        None."""
        process = self._process
        if self._closed or process is None or process.exitcode is None:
            return None
        code = process.exitcode
        how = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return f"the audio process (pid {process.pid}) ended: {how}"

    @property
    def active(self) -> bool:
        """True while the child's callback runs (its main thread checks every ACTIVE_POLL_S)."""
        alive = self._process is not None and self._process.is_alive()
        return not self._closed and alive and bool(self._status[_ACTIVE])

    def __enter__(self) -> AudioProcess:
        self.open()
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close()


# -- the child ---------------------------------------------------------------------------------


class _MixSide:
    """The callback's side in the child: drains the command pipe, mixes, reports back."""

    def __init__(self, mixer: Mixer, commands: Connection, views: tuple[np.ndarray, ...]) -> None:
        self._mixer = mixer
        self._commands = commands
        self._ready = [commands.fileno()]
        self._status, self._ring, _, self._arena = views
        self._notes: list[Any] = [None] * len(self._arena)
        self._received = 0
        self._cut_off = False  # the control side went away: no more commands

    def mix(self, out: np.ndarray, frames: int) -> None:
        # Real-time thread: audio.py's callback rules apply.
        mixer = self._mixer
        while not self._cut_off and select.select(self._ready, (), (), 0.0)[0]:
            try:
                msg = self._commands.recv()
            except (EOFError, OSError):
                self._cut_off = True
                break
            if msg[0] == _LOAD:
                self._load(*msg[1:])
                continue
            if msg[1] in (CMD_NOTE_ON, CMD_MORPH):
                fields = list(msg)
                for i in NOTE_FIELDS:
                    if fields[i] is not None:
                        fields[i] = self._notes[fields[i]]
                msg = tuple(fields)
            mixer.commands.append(msg)
            self._received += 1
        mixer.mix(out, frames)
        status, ring = self._status, self._ring
        status[_APPLIED] = self._received - len(mixer.commands)
        while mixer.finished:
            ended = int(status[_ENDED])
            ring[ended % _RING] = mixer.finished.popleft()
            status[_ENDED] = ended + 1
        mixer.retired.clear()  # views of the arena: dropping them frees no waveform
        status[_VOICES] = mixer.voices_active
        if mixer.voices_active > status[_PEAK]:
            status[_PEAK] = mixer.voices_active

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


def _serve(control: Connection, commands: Connection, config: _Config) -> None:
    """The child's main thread: open the stream, then answer requests until ``close``."""
    import gc

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the player's to handle: it closes us
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    name_jack_client(JACK_CLIENT_NAME)  # unless the player's main module imported sounddevice
    layout = config.layout
    buffer = receive_mapping(control, layout.size, populate=True)
    views = layout.views(buffer)
    chunk = max(config.block_frames, config.max_block_frames)
    mixer = Mixer(
        config.sample_rate,
        polyphony=config.polyphony,
        channels=config.channels,
        max_block_frames=chunk,
        master=MasterBus(config.sample_rate, gain_db=config.gain_db, max_block_frames=chunk),
    )
    side = _MixSide(mixer, commands, views)
    try:
        output = AudioOutput(
            side.mix,
            device=config.device,
            sample_rate=config.sample_rate,
            block_frames=config.block_frames,
            channels=config.channels,
            timing_blocks=layout.timing_blocks,
            meters=StreamMeters(layout.timing_blocks, views[2]),
        )
    except DeviceError as err:
        control.send(("error", str(err)))
        return
    control.send(("ok", output.device, output.latency_s))
    # Everything allocated so far lives as long as the process: keep the collector off it.
    gc.collect()
    gc.freeze()
    status = views[0]
    while True:
        try:
            request = control.recv() if control.poll(ACTIVE_POLL_S) else None
        except (EOFError, OSError):  # the player's process is gone
            request = "close"
        reply: tuple = ("ok",)
        try:
            if request == "start":
                output.start()
            elif request == "stop":
                output.stop()
            elif request == "close":
                output.close()
        except DeviceError as err:
            reply = ("error", str(err))
        status[_ACTIVE] = output.active  # before any answer: the player reads it next
        if request is not None:
            _reply(control, reply)
        if request == "close":
            return


def _reply(control: Connection, reply: tuple) -> None:
    with contextlib.suppress(OSError):  # nobody listens any more
        control.send(reply)


__all__ = ["JACK_CLIENT_NAME", "AudioProcess"]
