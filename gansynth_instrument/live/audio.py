"""Audio output: a sounddevice (PortAudio) output stream whose callback only calls ``mix``.

Rules for the callback (sounddevice's ``Stream`` rules, plus ours). It runs on PortAudio's
real-time thread, once per block, and must finish well inside one block period:

- ``mix(out, frames)`` must write every sample of ``out`` ([frames, channels] float32); what it
  leaves there is played. Write in place (``out[:] = ...``, ufuncs with ``out=``), never rebind.
- No array allocation, file I/O, logging or ``print``, imports, model inference, or blocking calls
  (``queue.get``, ``sleep``, a lock the control side can hold). Commands arrive through deques that
  the audio side alone consumes (see ``mixer.py``).
- All checks (device, sample rate, channels) happen before ``start()``; the callback only counts
  xruns and times itself, into preallocated storage read later by ``stats()``.
- The callback is Python, so it needs the GIL: any other thread that holds the GIL for long (a C
  extension call that does not release it, e.g. python-rtmidi opening a JACK client) stalls the
  stream. NumPy also releases the GIL inside most calls on more than a few hundred values, so a
  thread of the same process that keeps wanting the GIL delays the block by up to the switch
  interval at each of them, many times per block. Hence live play runs the stream in a
  process of its own (``audio_process.py``), where the callback is the only busy thread, and
  meters are counters the callback keeps (``StreamMeters``), never a thread polling it.
- An exception in ``mix`` stops the stream (sounddevice prints it); ``active`` turns false.
- A stream that stays active but gets no callback for ``STALL_S`` (a frozen JACK server, a hung
  driver) is ``stalled``: stopping or closing it would wait for that callback forever, so both are
  skipped, as for a lost JACK server.

PortAudio's JACK host API runs at any block size, but only one equal to the JACK period keeps its
promise: measured on a dummy server at 128 frames, 256 adds a period of latency and 100000 calls
back once in two seconds (a stall), while 16 and 32 split each period and flag underflows (so do
64, 100 and 128 on a 64-frame server). ``check_block_frames`` refuses any other size on JACK.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from gansynth_instrument.errors import DeviceError
from gansynth_instrument.live.stream_meters import StreamMeters, StreamStats

JACK_HOST_API = "JACK Audio Connection Kit"
MixFn = Callable[[np.ndarray, int], None]
"""``mix(out, frames)``: fill ``out`` ([frames, channels] float32) with the next frames."""

BLOCK_FRAMES_RANGE = (16, 2048)  # --blocksize: from the smallest useful period to 43 ms at 48 kHz
JACK_NO_START_SERVER = 0x01  # jack_options_t: fail rather than start a server
STALL_S = 2.0  # no callback for this long while running: the server or driver hung
NO_OUTPUT_HINT = (
    "start a JACK server or connect a sound card, or render to a WAV file instead with "
    "'gansynth-instrument render'"
)


def _sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into one clear line.

    sounddevice loads PortAudio at import (Linux wheels do not bundle it), so this is where a
    machine without libportaudio fails.
    """
    try:
        import sounddevice
    except OSError as err:
        raise DeviceError(
            f"PortAudio is not installed ({err}); install it (Debian/Ubuntu: "
            "apt-get install libportaudio2) or render offline with 'gansynth-instrument render'"
        ) from err
    return sounddevice


_JACK_CLIENT_NAME: list[ctypes.Array] = []  # PortAudio keeps the pointer: keep the buffer alive


def name_jack_client(name: str) -> None:
    """Name the JACK client PortAudio opens in this process (else "PortAudio"). PortAudio opens
    it when it initialises, at sounddevice's import, so once that happened this does nothing."""
    if "sounddevice" in sys.modules:
        return
    path = ctypes.util.find_library("portaudio")
    if path is None:
        return  # _sounddevice() says what is missing
    buffer = ctypes.create_string_buffer(name.encode())
    ctypes.CDLL(path).PaJack_SetClientName(buffer)
    _JACK_CLIENT_NAME.append(buffer)


def abandon_portaudio() -> None:
    """Leave PortAudio unterminated at exit: after its JACK server went away or hung,
    terminating waits for the server forever or asserts and aborts the process."""
    sounddevice = sys.modules.get("sounddevice")
    if sounddevice is not None:
        atexit.unregister(sounddevice._exit_handler)


@dataclass(frozen=True)
class OutputDevice:
    """An audio output as PortAudio lists it; ``index`` or ``name`` can be passed as ``device``."""

    index: int
    name: str
    host_api: str
    channels: int
    default_sample_rate: float
    is_default: bool


def list_outputs() -> list[OutputDevice]:
    """Every audio output PortAudio can open now (empty when there is none)."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        host_apis = sd.query_hostapis()
    except sd.PortAudioError as err:
        raise DeviceError(f"PortAudio cannot list audio devices ({err}); {NO_OUTPUT_HINT}") from err
    default_index = sd.default.device[1]
    return [
        OutputDevice(
            index=int(d["index"]),
            name=str(d["name"]),
            host_api=str(host_apis[d["hostapi"]]["name"]),
            channels=int(d["max_output_channels"]),
            default_sample_rate=float(d["default_samplerate"]),
            is_default=d["index"] == default_index,
        )
        for d in devices
        if d["max_output_channels"] > 0
    ]


def find_output(device: str | int | None) -> OutputDevice:
    """The output ``device`` names: an index, a name or part of one (sounddevice's matching), or
    ``None`` for the default. Raises ``DeviceError`` (with the list of outputs) when none fits."""
    sd = _sounddevice()
    outputs = list_outputs()
    if not outputs:
        raise DeviceError(f"no audio output device found; {NO_OUTPUT_HINT}")
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)
    try:
        info = sd.query_devices(device, kind="output")
    except (ValueError, sd.PortAudioError) as err:
        wanted = "no default audio output" if device is None else f"audio output {device!r}: {err}"
        names = ", ".join(f"{o.index}: {o.name!r} ({o.host_api})" for o in outputs)
        raise DeviceError(f"{wanted}; outputs are {names} (pass one with --device)") from err
    return next(o for o in outputs if o.index == info["index"])


def jack_period_frames() -> int | None:
    """The period (frames per cycle) of the JACK server PortAudio's JACK host API uses (the one
    ``JACK_DEFAULT_SERVER`` names), asked of libjack by a client opened for the question; None
    when libjack or the server is not there."""
    path = ctypes.util.find_library("jack")
    if path is None:
        return None
    jack = ctypes.CDLL(path)
    jack.jack_client_open.restype = ctypes.c_void_p
    jack.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    jack.jack_get_buffer_size.argtypes = [ctypes.c_void_p]
    jack.jack_get_buffer_size.restype = ctypes.c_uint32
    jack.jack_client_close.argtypes = [ctypes.c_void_p]
    status = ctypes.c_int(0)
    client = jack.jack_client_open(b"gansynth-period", JACK_NO_START_SERVER, ctypes.byref(status))
    if not client:
        return None
    try:
        return int(jack.jack_get_buffer_size(client))
    finally:
        jack.jack_client_close(client)


def check_block_range(block_frames: int) -> None:
    """A block size within ``BLOCK_FRAMES_RANGE``: ``player.PlayConfig`` checks it when made,
    before any device is asked."""
    low, high = BLOCK_FRAMES_RANGE
    if not low <= block_frames <= high:
        raise DeviceError(f"--blocksize must be {low}..{high} frames, got {block_frames}")


def check_block_frames(device: OutputDevice, block_frames: int) -> None:
    """A block size the output can serve: on JACK the server's period (see the module
    docstring). ``DeviceError`` says what the server runs at."""
    if device.host_api != JACK_HOST_API:
        return
    period = jack_period_frames()
    if period is not None and period != block_frames:
        raise DeviceError(
            f"the JACK server runs at {period} frames per period, not {block_frames}; pass "
            f"--blocksize {period} (or restart jackd with -p {block_frames})"
        )


class StreamHealth:
    """What an output stream tells about itself, from its meters: read the same way for a stream
    in this process (``AudioOutput``) and for one in the audio process (``AudioProcess``)."""

    meters: StreamMeters
    device: OutputDevice
    sample_rate: int
    block_frames: int
    active: bool  # the stream's callback runs
    latency_s: float  # the output latency PortAudio reported
    _running: bool  # between start() and stop()

    @property
    def seconds_since_callback(self) -> float:
        """Since the last callback began (or since ``start()``)."""
        return self.meters.seconds_since_callback

    @property
    def stalled(self) -> bool:
        """Started and not stopped, yet no callback for ``STALL_S``: the server or the driver hung
        (a frozen JACK server keeps the stream 'active')."""
        return self._running and self.seconds_since_callback > STALL_S

    @property
    def server_lost(self) -> bool:
        """The stream runs on JACK and its callback stopped without ``stop()``: the server went
        away (or ``mix`` raised, or the audio process died)."""
        return self.device.host_api == JACK_HOST_API and self._running and not self.active

    def stats(self, since: int = 0) -> StreamStats:
        """Counts so far, and callback times over the last ``timing_blocks`` callbacks; with
        ``since`` (a ``callbacks`` count read earlier), only over the callbacks after it (one phase
        of a benchmark), as far as the ring still holds them."""
        return self.meters.stats(self.block_frames / self.sample_rate, self.latency_s, since)


class AudioOutput(StreamHealth):
    """An output stream on ``device`` that plays what ``mix`` writes, block by block.

    Opening checks the device and opens the stream (errors are ``DeviceError`` with the reason and
    the fix); ``start()`` starts the callback. Use as a context manager to close it cleanly.
    ``timing_blocks`` sizes the ring of per-callback durations that ``stats()`` summarises;
    ``meters`` (made for ``timing_blocks``) is where the callback keeps its counts, by default a
    private array.
    """

    def __init__(
        self,
        mix: MixFn,
        *,
        device: str | int | None = None,
        sample_rate: int = 48000,
        block_frames: int = 128,
        channels: int = 2,
        timing_blocks: int = 4096,
        meters: StreamMeters | None = None,
    ) -> None:
        sd = _sounddevice()
        self.device = find_output(device)
        if self.device.host_api == JACK_HOST_API and sample_rate != self.device.default_sample_rate:
            raise DeviceError(
                f"the JACK server runs at {self.device.default_sample_rate:.0f} Hz, not "
                f"{sample_rate} Hz; pass --samplerate {self.device.default_sample_rate:.0f} "
                "(the instrument resamples its notes to any rate)"
            )
        check_block_frames(self.device, block_frames)
        if channels > self.device.channels:
            raise DeviceError(
                f"audio output {self.device.name!r} has {self.device.channels} channel(s), "
                f"{channels} needed; choose another with --device"
            )
        self.sample_rate = sample_rate
        self.block_frames = block_frames
        self.channels = channels
        self._mix = mix
        self.meters = meters if meters is not None else StreamMeters(timing_blocks)
        self._running = False  # between our start() and stop()
        try:
            self._stream = sd.OutputStream(
                samplerate=sample_rate,
                blocksize=block_frames,
                device=self.device.index,
                channels=channels,
                dtype="float32",
                latency="low",
                callback=self._callback,
            )
        except (sd.PortAudioError, ValueError) as err:
            raise DeviceError(
                f"cannot open audio output {self.device.name!r} ({self.device.host_api}) at "
                f"{sample_rate} Hz, {block_frames} frames, {channels} channels: {err}; try another "
                f"--samplerate/--blocksize/--device, or check that the device (or JACK) is running"
            ) from err

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Real-time thread: see the module docstring's rules before adding anything here.
        start_s = self.meters.begin(bool(status))
        self._mix(outdata, frames)
        self.meters.end(start_s, time_info.outputBufferDacTime - time_info.currentTime)

    def start(self) -> None:
        try:
            self._stream.start()
            self.meters.restart_clock()  # the stall clock starts now
            self._running = True
        except _sounddevice().PortAudioError as err:
            raise DeviceError(f"cannot start audio output {self.device.name!r}: {err}") from err

    def stop(self) -> None:
        """Stop after the blocks already queued have played (no click from a cut buffer).

        A stream whose callback no longer runs (the JACK server stopped or froze, the device went
        away) is left alone: PortAudio would wait for a callback that never comes.
        """
        if self._stream.active and not self.stalled:
            self._stream.stop()
            self._running = False

    def close(self) -> None:
        """Close the stream. If the JACK server went away under it, PortAudio's JACK host API can
        neither close the stream nor terminate (each waits for the dead server for good, or
        asserts and aborts the process), so both are left undone, sounddevice's exit handler
        included; the server and its clients are gone anyway."""
        if self.server_lost or self.stalled:
            abandon_portaudio()
            return
        self._stream.close()

    @property
    def active(self) -> bool:
        """True while the callback runs (false after ``stop()``, or after ``mix`` raised)."""
        return bool(self._stream.active)

    @property
    def latency_s(self) -> float:
        """Output latency PortAudio reports for the open stream (on JACK: its port latency, one
        period, or 0 when jackd runs in synchronous mode)."""
        return float(self._stream.latency)

    def __enter__(self) -> AudioOutput:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close()
