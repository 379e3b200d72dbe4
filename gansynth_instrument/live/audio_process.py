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
- commands: typed records (``protocol.RECORD``) in a shared-memory ring (``protocol.Ring``). The
  callback drains it at the start of each block: the compiled core (``_mixcore.c``) in its one
  call per block, or, where it is not built, a Python reader that hands the NumPy ``Mixer`` the
  tuples the records carry (``audio_mix.RingReader``). Neither waits on anything.
- control: a duplex pipe to the child's main thread, which sleeps in it: start, stop, close and
  their answers; between requests it notes every ``ACTIVE_POLL_S`` whether the stream is active.
- shared memory (one anonymous file): the command ring, a status row (``protocol.STATUS_*``:
  voices sounding and their peak, the voice-end count, the frames the limiter turned down,
  whether the stream is active, which mixer runs), a ring of the serial numbers of voices that
  ended, the stream's meters (``stream_meters.StreamMeters``) and the note arena.

Notes cross once: a waveform is copied into a free arena entry (sized for a looped note) and
announced by an ``OP_LOAD`` record, and commands name entries by index. ``CommandSender`` keeps
the arena's rule: an entry is rewritten only when no voice holds it and the child has applied
every record written while one did.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import sys
from multiprocessing.connection import Connection
from multiprocessing.reduction import send_handle
from typing import Any

from gansynth_instrument.errors import DeviceError, GansynthError
from gansynth_instrument.live.audio import (
    AudioOutput,
    OutputDevice,
    StreamHealth,
    abandon_portaudio,
    name_jack_client,
)
from gansynth_instrument.live.audio_mix import MIXERS, ChildConfig, SharedLayout, mix_function
from gansynth_instrument.live.command_sender import CommandSender, SenderLink
from gansynth_instrument.live.compiled_mixer import RING_RECORDS
from gansynth_instrument.live.mixer import MORPH_LAYERS, voice_slots
from gansynth_instrument.live.protocol import STATUS_ACTIVE, STATUS_LIMITED, STATUS_MIXER, Ring
from gansynth_instrument.live.stream_meters import StreamMeters
from gansynth_instrument.memory import Settled, settle_for_realtime
from gansynth_instrument.notes.note import looped_frames_bound
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


class AudioProcess(SenderLink, StreamHealth):
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
        self._config = ChildConfig(
            SharedLayout(timing_blocks, entries, looped_frames_bound(note_frames)),
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
        self._entries = entries

    def open(self) -> None:
        """Start the child and open the stream there (not started yet)."""
        layout = self._config.layout
        with shared_file(layout.size, "gansynth-audio") as fd:
            self._buffer = map_file(fd, layout.size, populate=True)
            self._control, child_control = SPAWN.Pipe()
            self._process = spawn(_serve, (child_control, self._config), "gansynth-audio")
            child_control.close()
            send_handle(self._control, fd, self._process.pid)
        ring, self._status, ended, meters, self._arena = layout.views(self._buffer)
        self._sender = CommandSender(
            Ring(ring, RING_RECORDS), self._status, ended, self._entries, self._copy
        )
        self.meters = StreamMeters(layout.timing_blocks, meters)
        try:
            reply = self._answer(STARTUP_TIMEOUT_S, "open the audio output")
        except DeviceError:
            self._closed = True
            self._end_child()
            raise
        self.device: OutputDevice = reply[1]
        self.latency_s: float = reply[2]
        self.settled: Settled = reply[3]  # the child's collector and locked memory

    # -- MixerLink (``SenderLink``): Voices calls it on the MIDI thread, under the player's lock

    def _copy(self, entry: int, note: Any) -> None:
        frames, limit = len(note.pcm), self._arena.shape[1]
        if frames > limit:
            raise ValueError(f"a note of {frames} frames; arena entries hold {limit}")
        self._arena[entry, :frames] = note.pcm

    @property
    def mixer(self) -> str:
        """Which mixer the child runs: "compiled" (the C core) or "numpy"."""
        return MIXERS[int(self._status[STATUS_MIXER])]

    @property
    def limited_frames(self) -> int:
        """Frames the child's master limiter has turned down (``levels.Limiter``)."""
        return int(self._status[STATUS_LIMITED])

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
        del self._sender, self._arena
        self._buffer.close()

    def _end_child(self) -> None:
        self._control.close()
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
    def pid(self) -> int | None:
        """The audio process's id (None before ``open``): where its CPU time is read."""
        return None if self._process is None else self._process.pid

    @property
    def active(self) -> bool:
        """True while the child's callback runs (its main thread checks every ACTIVE_POLL_S)."""
        alive = self._process is not None and self._process.is_alive()
        return not self._closed and alive and bool(self._status[STATUS_ACTIVE])

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


def _serve(control: Connection, config: ChildConfig) -> None:
    """The child's main thread: open the stream, settle the process
    (``memory.settle_for_realtime``), then answer requests until ``close``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the player's to handle: it closes us
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    name_jack_client(JACK_CLIENT_NAME)  # unless the player's main module imported sounddevice
    layout = config.layout
    buffer = receive_mapping(control, layout.size, populate=True)
    views = layout.views(buffer)
    try:
        mix = mix_function(config, views)
    except GansynthError as err:  # the compiled mixer was required and is not there
        control.send(("error", str(err)))
        return
    try:
        output = AudioOutput(
            mix,
            device=config.device,
            sample_rate=config.sample_rate,
            block_frames=config.block_frames,
            channels=config.channels,
            timing_blocks=layout.timing_blocks,
            meters=StreamMeters(layout.timing_blocks, views[3]),
        )
    except DeviceError as err:
        control.send(("error", str(err)))
        return
    # Everything allocated so far lives as long as the process (memory.py's policy).
    control.send(("ok", output.device, output.latency_s, settle_for_realtime()))
    status = views[1]
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
        status[STATUS_ACTIVE] = output.active  # before any answer: the player reads it next
        if request is not None:
            _reply(control, reply)
        if request == "close":
            return


def _reply(control: Connection, reply: tuple) -> None:
    with contextlib.suppress(OSError):  # nobody listens any more
        control.send(reply)


__all__ = ["JACK_CLIENT_NAME", "AudioProcess"]
