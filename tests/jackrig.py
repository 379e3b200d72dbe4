"""The live-audio test rig: a private JACK dummy server, a recorder client and a MIDI sender client.

Facts behind it are in ``../shared/docs/realtime-rig.md``. In short: ``jackd -d dummy`` needs no
hardware and runs callbacks at real-time pace; PortAudio (sounddevice) opens it as the
"JACK Audio Connection Kit" host API and names its ports ``PortAudio:out_N``; a second JACK client
(JACK-Client) records those ports; another one sends JACK MIDI. Latency is measured on the wall
clock (``time.perf_counter``), never with JACK frame times, which drift on the dummy driver.

Used by the ``jack_server`` fixture in ``conftest.py`` and reusable from benchmark scripts.
"""

from __future__ import annotations

import gc
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import jack

PORTAUDIO_CLIENTS = ("PortAudio", "gansynth-instrument-audio")
"""JACK client names of PortAudio streams: PortAudio's default, and the player's audio process
(``audio_process.JACK_CLIENT_NAME``); JACK adds "-01" and so on to a name already taken. Output
ports are numbered on: out_0/1, then out_2/3 for the next stream, so the recorder looks them up
instead of assuming names."""

SHM_DIR = Path("/dev/shm")
SHM_REGISTRY = "jack-shm-registry"  # every JACK server's and client's, on this machine
READY_TIMEOUT_S = 10


# The silent client: a PortAudio stream that only writes zeros, in its own process.
_SILENT_CLIENT = """
import sys, time
import sounddevice as sd
seconds, rate, block = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
counts = [0, 0]
def callback(out, frames, when, status):
    counts[0] += 1
    counts[1] += bool(status.output_underflow)
    out.fill(0)
with sd.OutputStream(samplerate=rate, blocksize=block, channels=2, callback=callback):
    time.sleep(seconds)
print(counts[0], counts[1])
"""


class RigError(RuntimeError):
    """The rig cannot start (jackd missing or not ready) or a capture did not complete."""


def reinitialise_portaudio() -> None:
    """Restart PortAudio so it sees the JACK server named in the environment now.

    sounddevice initialises PortAudio at import, and PortAudio's JACK host API only finds the server
    named by ``JACK_DEFAULT_SERVER`` at that moment.
    """
    terminate_portaudio()
    import sounddevice as sd

    sd._initialize()


def terminate_portaudio() -> None:
    """Terminate PortAudio fully (every nested initialisation).

    Must run before jackd stops, else PortAudio's JACK client asserts at exit and aborts Python.
    """
    import sounddevice as sd

    while sd._initialized:
        sd._terminate()


class JackServer:
    """A private ``jackd`` with the dummy backend, found by clients through the environment.

    ``start()`` launches it under a unique name, waits until it accepts clients, points
    ``JACK_DEFAULT_SERVER`` at it (with ``JACK_NO_START_SERVER=1``) and restarts PortAudio so its
    JACK host API appears. ``stop()`` terminates PortAudio first, stops jackd by PID, restores the
    environment and removes the ``/dev/shm`` files this server left behind.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 48000,
        period_frames: int = 128,
        realtime: bool = False,
        sync: bool = False,
        name: str | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.period_frames = period_frames
        self.realtime = realtime
        self.sync = sync
        self.name = name or f"gsi-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._saved_env: dict[str, str | None] = {}
        self._shm_before: set[str] = set()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def log_tail(self, lines: int = 20) -> str:
        """The last lines jackd printed (for failure messages)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def start(self) -> JackServer:
        jackd = shutil.which("jackd")
        jack_wait = shutil.which("jack_wait")
        if jackd is None or jack_wait is None:
            raise RigError(
                "jackd/jack_wait not found: the live-audio tests need a JACK server; "
                "install it with 'apt-get install jackd2' (see .ci/run)"
            )
        self._shm_before = _shm_entries()
        fd, log = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
        self._log_path = Path(log)
        # setpriv (util-linux, always on Debian) execs jackd with a parent-death signal, so a
        # killed test run (CI timeout, Ctrl-C twice) cannot leave a server running.
        setpriv = shutil.which("setpriv")
        command = [setpriv, "--pdeathsig", "TERM"] if setpriv else []
        command += [jackd, "-n", self.name, "-R" if self.realtime else "--no-realtime"]
        command += ["--sync"] if self.sync else []
        command += ["-d", "dummy", "-r", str(self.sample_rate), "-p", str(self.period_frames)]
        with os.fdopen(fd, "wb") as log_file:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
            )
        ready = subprocess.run(
            [jack_wait, "-s", self.name, "-w", "-t", str(READY_TIMEOUT_S)],
            capture_output=True,
            check=False,
        )
        if ready.returncode != 0 or self._process.poll() is not None:
            tail = self.log_tail()
            self._stop_jackd()
            raise RigError(f"jackd {self.name!r} not ready after {READY_TIMEOUT_S} s:\n{tail}")
        for key, value in (("JACK_DEFAULT_SERVER", self.name), ("JACK_NO_START_SERVER", "1")):
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        reinitialise_portaudio()
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        # Close clients a test leaked while their server still runs: libjack crashes when a
        # client is garbage-collected after its server is gone.
        gc.collect()
        terminate_portaudio()
        self._stop_jackd()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        # PortAudio back in its import-time state (without this server) for whatever runs next.
        import sounddevice as sd

        sd._initialize()
        self._clean_shm()
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    def _stop_jackd(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def _clean_shm(self) -> None:
        """Remove what this server (or a client leaked on it) left in /dev/shm."""
        for entry in shm_leftovers(self.name, self._shm_before, _shm_entries()):
            path = SHM_DIR / entry
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def silent_client_xruns(seconds: float, sample_rate: int, block_frames: int) -> tuple[int, int]:
    """(callbacks, xruns) of a PortAudio stream that writes silence for ``seconds``, from a
    separate process, on the server named in the environment: the xruns the machine causes with
    no instrument running. Xruns are server-wide events, so measure it while nothing else plays.
    """
    client = start_silent_client(seconds, sample_rate, block_frames)
    try:
        stdout, stderr = client.communicate(timeout=seconds + 60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    if client.returncode != 0:
        raise RigError(f"the silent client failed: {stderr.strip()[-500:]}")
    callbacks, xruns = (int(word) for word in stdout.split()[-2:])
    return callbacks, xruns


def start_silent_client(
    seconds: float, sample_rate: int, block_frames: int
) -> subprocess.Popen[str]:
    """The silent client of ``silent_client_xruns`` started in the background (its JACK ports are
    PortAudio's: see ``PORTAUDIO_CLIENTS``); when it ends, its stdout holds "callbacks xruns"."""
    args = [sys.executable, "-c", _SILENT_CLIENT, str(seconds), str(sample_rate), str(block_frames)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stolen_s() -> float:
    """CPU time taken from this (virtual) machine by its host so far, all cores (/proc/stat's
    steal column); 0 where there is no such file. On this VM the silent client's xruns come in
    bursts, and stolen time is the one thing inside the guest that shows the host being busy."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def wait_cycles(
    ports: Sequence[jack.Port], cycles: Callable[[], int], timeout_s: float = 5.0
) -> None:
    """Wait until every port has a connection, then for two more process cycles (counted by
    ``cycles()``): JACK applies a new connection between cycles, and data sent before is lost."""
    deadline = time.monotonic() + timeout_s
    while any(port.number_of_connections == 0 for port in ports):
        if time.monotonic() > deadline:
            raise RigError(f"ports {[p.name for p in ports]} not connected after {timeout_s} s")
        time.sleep(0.002)
    first = cycles()
    while cycles() < first + 2:
        if time.monotonic() > deadline:
            raise RigError(f"JACK ran no process cycle after {timeout_s} s")
        time.sleep(0.002)


def shm_leftovers(name: str, before: set[str], now: set[str]) -> set[str]:
    """Which of the /dev/shm entries ``now`` that were not there ``before`` the stopped server
    ``name`` leaves to remove.

    Files named after the server are its own. New shared segments go only when no other JACK
    server still has a socket there. The shared registry always stays: libjack maps it once per
    process, so with it removed this process could open no client on a later server.
    """
    others_running = any(
        entry.startswith("jack_") and entry.endswith("_0") and name not in entry for entry in now
    )
    leftovers = set()
    for entry in now - before - {SHM_REGISTRY}:
        ours = f"_{name}_" in entry or entry.endswith(f"_{name}")
        shared = entry.startswith(("jack-", "jack_db-")) and not others_running
        if ours or shared:
            leftovers.add(entry)
    return leftovers


def _shm_entries() -> set[str]:
    if not SHM_DIR.is_dir():
        return set()
    return {p.name for p in SHM_DIR.iterdir() if p.name.startswith("jack")}


class Recorder:
    """A JACK client recording ports into a preallocated buffer, with each cycle's wall clock.

    ``sources`` are JACK output ports; by default, those of the one open PortAudio output stream.
    Recording starts once ``start()`` connected the sources and JACK runs with the connections in
    its graph, and stops when the buffer is full. Recorded cycle ``k`` wrote frames
    ``k * block_frames`` onwards; ``cycle_wall_s[k]`` is ``time.perf_counter()`` in that cycle.

    On a loaded machine (shared cores, a callback that holds the GIL too long) the recorder or
    PortAudio can miss cycles, so the capture may skip or repeat blocks, and without ``--sync`` a
    late PortAudio can even leave its ports half-written; JACK's frame counter does not show it on
    the dummy driver. Tests that need to know which frame is which put a ``frame_code`` on a
    channel.
    """

    def __init__(
        self,
        seconds: float,
        sources: Sequence[str] | None = None,
        *,
        channels: int = 2,
        name: str = "recorder",
    ) -> None:
        import jack  # here, not at import: conftest imports this module on machines without libjack

        self.client = jack.Client(name, no_start_server=True)
        self.sample_rate = self.client.samplerate
        self.block_frames = self.client.blocksize
        blocks = int(np.ceil(seconds * self.sample_rate / self.block_frames))
        self.sources = tuple(sources) if sources is not None else self._portaudio_outputs(channels)
        self.buffer = np.zeros((blocks * self.block_frames, len(self.sources)), dtype=np.float32)
        self.cycle_wall_s = np.zeros(blocks, dtype=np.float64)
        self._ports = [self.client.inports.register(f"in_{i}") for i in range(len(self.sources))]
        self._frames = 0
        self._cycles = 0
        self._jack_cycles = 0  # every process cycle, recording or not
        self._armed = False
        self.client.set_process_callback(self._process)

    def _portaudio_outputs(self, channels: int) -> tuple[str, ...]:
        clients = "|".join(PORTAUDIO_CLIENTS)
        ports = self.client.get_ports(f"^({clients})(-[0-9]+)?:", is_audio=True, is_output=True)
        if len(ports) != channels:
            self.client.close()
            raise RigError(
                f"expected {channels} PortAudio output ports (one open stream), found "
                f"{[p.name for p in ports]}"
            )
        return tuple(p.name for p in ports)

    def _process(self, frames: int) -> None:
        self._jack_cycles += 1
        if not self._armed or self._frames + frames > len(self.buffer):
            return
        now = time.perf_counter()
        start = self._frames
        for channel, port in enumerate(self._ports):
            self.buffer[start : start + frames, channel] = port.get_array()
        self.cycle_wall_s[self._cycles] = now
        self._cycles += 1
        self._frames = start + frames

    def start(self) -> Recorder:
        """Activate, connect the sources to our inputs, then start recording."""
        self.client.activate()
        for source, port in zip(self.sources, self._ports, strict=True):
            self.client.connect(source, port)
        wait_cycles(self._ports, lambda: self._jack_cycles)
        self._armed = True
        return self

    @property
    def full(self) -> bool:
        return self._frames >= len(self.buffer)

    def wait(self, timeout_s: float = 10.0) -> np.ndarray:
        """Block until the buffer is full; return it ([frames, channels] float32)."""
        deadline = time.monotonic() + timeout_s
        while not self.full:
            if time.monotonic() > deadline:
                raise RigError(
                    f"recorder got {self._frames} of {len(self.buffer)} frames in {timeout_s} s"
                )
            time.sleep(0.01)
        return self.buffer

    @property
    def captured(self) -> np.ndarray:
        """The frames recorded so far (a view)."""
        return self.buffer[: self._frames]

    def wall_time_s(self, frame: int) -> float:
        """Wall clock (perf_counter) of the recorder cycle that captured ``frame``."""
        return float(self.cycle_wall_s[frame // self.block_frames])

    def close(self) -> None:
        self._armed = False
        self.client.deactivate()
        self.client.close()

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class MidiSender:
    """A separate JACK client with one MIDI output port, as a keyboard on the JACK graph would be.

    ``send()`` queues raw MIDI bytes and returns the wall clock of the call; the next process cycle
    writes every queued message at frame offset 0, in order, and notes the wall clock of that
    cycle in ``written_s`` (one entry per message). Call ``wait_connected()`` after
    anything connects to the port (a port opened by name connects from the other side): a message
    sent before JACK applies the new connection is lost.
    """

    def __init__(self, *, name: str = "midi-sender") -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.port = self.client.midi_outports.register("out")
        self._pending: deque[bytes] = deque()
        self.written_s: list[float] = []
        self._cycles = 0
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        self._cycles += 1
        self.port.clear_buffer()
        while self._pending:
            self.written_s.append(time.perf_counter())
            self.port.write_midi_event(0, self._pending.popleft())

    def connect(self, destination: str) -> None:
        self.client.connect(self.port, destination)
        self.wait_connected()

    def wait_connected(self) -> None:
        """Wait until the port is connected and JACK ran cycles with the connection in its graph."""
        wait_cycles([self.port], lambda: self._cycles)

    def send(self, message: Sequence[int]) -> float:
        sent_s = time.perf_counter()
        self._pending.append(bytes(message))
        return sent_s

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()

    def __enter__(self) -> MidiSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MidiSource:
    """A JACK client with one MIDI output port that sends nothing: a port to find by name.

    It runs no Python on JACK's process thread, so clients that hold the GIL while they open or
    close (python-rtmidi's do) do not stall the JACK cycle beside it, as they would beside a
    ``MidiSender``.
    """

    def __init__(self, name: str) -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.port = self.client.midi_outports.register("out")
        self.client.activate()

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()

    def __enter__(self) -> MidiSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def midi_input_port(client: jack.Client, name_pattern: str) -> str:
    """Full name of the one JACK MIDI input port matching ``name_pattern`` (a regex)."""
    ports = client.get_ports(name_pattern, is_midi=True, is_input=True)
    if len(ports) != 1:
        raise RigError(f"expected one MIDI input port matching {name_pattern!r}, found {ports}")
    return ports[0].name


FRAME_CODE_BITS = 20


def frame_code(frames: np.ndarray) -> np.ndarray:
    """Frame numbers as float32 samples in [-0.5, 0.5), exact (modulo 2**20 frames, 21 s at 48 kHz).

    A render function writes this on one channel so a test can tell, sample by sample, which frame
    it captured, whatever blocks a loaded machine dropped or repeated on the way.
    """
    wrapped = np.asarray(frames, dtype=np.int64) % (1 << FRAME_CODE_BITS)
    return (wrapped.astype(np.float32) / np.float32(1 << FRAME_CODE_BITS)) - np.float32(0.5)


def decode_frames(code: np.ndarray) -> np.ndarray:
    """The frame numbers ``frame_code`` wrote (int64; -1 where a sample is no valid code)."""
    scaled = (code.astype(np.float64) + 0.5) * (1 << FRAME_CODE_BITS)
    frames = np.rint(scaled).astype(np.int64)
    valid = (scaled == frames) & (frames >= 0) & (frames < (1 << FRAME_CODE_BITS))
    return np.where(valid, frames, -1)


def longest_run(frames: np.ndarray) -> slice:
    """The longest stretch where decoded frame numbers count up by one (first on ties)."""
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    bounds = [0, *breaks.tolist(), len(frames)]
    first, end = max(itertools.pairwise(bounds), key=lambda run: run[1] - run[0])
    return slice(first, end)


def tone_frequency_hz(signal: np.ndarray, sample_rate: int) -> float:
    """Frequency of the strongest spectral peak (Hann window, parabolic fit on log magnitude)."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)))) + 1e-12
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + offset) * sample_rate / len(signal)


def device_error_without_jack(imports: str, opening: str) -> tuple[str, str]:
    """Run ``opening`` in a fresh Python that finds no JACK server and starts none; it must fail
    with a one-line ``DeviceError``. Returns (that line, the process's stderr)."""
    env = dict(os.environ)
    env.update(JACK_DEFAULT_SERVER=f"absent-{uuid.uuid4().hex[:8]}", JACK_NO_START_SERVER="1")
    code = (
        f"{imports}\n"
        "from gansynth_instrument.errors import DeviceError\n"
        "try:\n"
        f"    {opening}\n"
        "except DeviceError as err:\n"
        "    print(err)\n"
        "    raise SystemExit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stderr
    message = result.stdout.strip()
    assert "\n" not in message
    return message, result.stderr
