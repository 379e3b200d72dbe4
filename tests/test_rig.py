"""Smoke test of the live-audio rig: a real PortAudio stream on the JACK dummy server, captured.

If this fails, every live-play test fails too: fix the rig (jackd, PortAudio, JACK-Client) first.
"""

from __future__ import annotations

import os
from pathlib import Path

import jack
import numpy as np
import pytest
import sounddevice as sd
from jackrig import (
    SHM_DIR,
    SHM_REGISTRY,
    JackServer,
    MidiSender,
    Recorder,
    RigError,
    decode_frames,
    frame_code,
    longest_run,
    midi_input_port,
    shm_leftovers,
    tone_frequency_hz,
)

TONE_HZ = 997.0  # not a divisor of 48 kHz, so every block holds a different phase
TONE_AMPLITUDE = 0.25


def test_portaudio_sees_the_jack_dummy_server(jack_server: JackServer) -> None:
    host_apis = [api["name"] for api in sd.query_hostapis()]
    assert "JACK Audio Connection Kit" in host_apis
    device = sd.query_devices(kind="output")
    assert device["max_output_channels"] >= 2
    assert device["default_samplerate"] == jack_server.sample_rate


def tone(frames: np.ndarray, sample_rate: int) -> np.ndarray:
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * frames / sample_rate)).astype(np.float32)


def test_tone_through_portaudio_is_captured_by_a_jack_client(jack_server: JackServer) -> None:
    sample_rate = jack_server.sample_rate
    played = np.zeros(1, dtype=np.int64)  # frames played so far, shared with the callback

    def play_tone(outdata: np.ndarray, frames: int, time: object, status: sd.CallbackFlags) -> None:
        numbers = np.arange(played[0], played[0] + frames)
        outdata[:, 0] = tone(numbers, sample_rate)
        outdata[:, 1] = frame_code(numbers)  # which frame this is, for the checks below
        played[0] += frames

    with sd.OutputStream(
        samplerate=sample_rate,
        blocksize=jack_server.period_frames,
        channels=2,
        dtype="float32",
        callback=play_tone,
    ) as stream:
        assert stream.samplerate == sample_rate
        assert stream.blocksize == jack_server.period_frames
        with Recorder(seconds=1.0) as recorder:
            captured = recorder.wait(timeout_s=10.0).copy()

    assert recorder.cycle_wall_s[-1] > recorder.cycle_wall_s[0]
    frames = decode_frames(captured[:, 1])
    exact = (frames >= 0) & (captured[:, 0] == tone(frames, sample_rate))
    assert exact.mean() > 0.9, f"only {exact.mean():.1%} of captured samples are the tone's"
    # A loaded machine can drop or repeat blocks on the way; measure the longest stretch of
    # consecutive frames (the recorder starts after the stream, so it is all tone).
    run = longest_run(frames)
    assert run.stop - run.start >= 4096, f"longest continuous capture {run} is too short"
    left = captured[run, 0]
    assert abs(tone_frequency_hz(left, sample_rate) - TONE_HZ) < 0.005 * TONE_HZ
    rms = float(np.sqrt(np.mean(left.astype(np.float64) ** 2)))
    np.testing.assert_allclose(rms, TONE_AMPLITUDE / np.sqrt(2), rtol=0.01)


def test_midi_sender_reaches_a_jack_midi_input(jack_server: JackServer) -> None:
    import jack

    received: list[bytes] = []
    receiver = jack.Client("midi-receiver", no_start_server=True)
    port = receiver.midi_inports.register("in")

    @receiver.set_process_callback
    def process(frames: int) -> None:
        for _offset, data in port.incoming_midi_events():
            received.append(bytes(data))

    with receiver, MidiSender() as sender:
        sender.connect(midi_input_port(receiver, "midi-receiver:in"))
        sender.send([0x90, 60, 100])
        sender.send([0x80, 60, 0])
        sd.sleep(200)
    assert received == [bytes([0x90, 60, 100]), bytes([0x80, 60, 0])]


def test_private_server_cleans_up_after_itself() -> None:
    """Stop terminates PortAudio first, stops jackd by PID, restores the environment, and leaves
    nothing named after the server in /dev/shm (it nests inside the session's server, if any)."""
    before_env = os.environ.get("JACK_DEFAULT_SERVER")
    server = JackServer(sample_rate=44100, period_frames=256)
    with server:
        assert os.environ["JACK_DEFAULT_SERVER"] == server.name
        assert os.environ["JACK_NO_START_SERVER"] == "1"
        assert sd.query_devices(kind="output")["default_samplerate"] == 44100
        assert any(server.name in entry.name for entry in SHM_DIR.iterdir())
        pid = server.pid
        assert pid is not None
        os.kill(pid, 0)  # jackd runs
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped
    assert os.environ.get("JACK_DEFAULT_SERVER") == before_env
    assert not [entry.name for entry in SHM_DIR.iterdir() if server.name in entry.name]
    # PortAudio is usable again, and sees the session's server (or none) rather than ours.
    assert all(d["default_samplerate"] != 44100 for d in sd.query_devices())


def test_a_stopped_server_leaves_the_shared_registry_even_where_it_made_it() -> None:
    """On a machine where JACK never ran, the first server makes the registry: it is new, yet it
    stays, with the server's own files and the new shared segments removed."""
    name = "gsi-test-1-abcdef"
    own = {f"jack_{name}_0", f"jack_sem.0_{name}_system"}
    shared = {"jack-0-0", "jack-0-1", "jack_db-0"}
    assert shm_leftovers(name, set(), {SHM_REGISTRY, *own, *shared}) == own | shared
    other_server = "jack_gsi-test-2-fedcba_0"  # still running: the shared segments stay too
    assert shm_leftovers(name, {other_server}, {SHM_REGISTRY, other_server, *own, *shared}) == own


def test_a_later_server_takes_clients_from_this_process_too() -> None:
    """Each test module has its own server: a stopped one must leave the shared registry that
    libjack mapped in this process, or no client here could open on the next one."""
    for sample_rate in (44100, 48000):
        with JackServer(sample_rate=sample_rate, period_frames=256):
            client = jack.Client("rig-check", no_start_server=True)
            assert client.samplerate == sample_rate
            client.close()
        assert (SHM_DIR / SHM_REGISTRY).exists()


def test_missing_jackd_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RigError, match=r"jackd/jack_wait not found.*apt-get install jackd2"):
        JackServer().start()
