"""Smoke test of the live-audio rig: a real PortAudio stream on the JACK dummy server, captured.

If this fails, every live-play test fails too: fix the rig (jackd, PortAudio, JACK-Client) first.
"""

from __future__ import annotations

import numpy as np
import sounddevice as sd
from jackrig import JackServer, MidiSender, Recorder, midi_input_port, tone_frequency_hz

TONE_HZ = 997.0  # not a divisor of 48 kHz, so every block holds a different phase
TONE_AMPLITUDE = 0.25


def test_portaudio_sees_the_jack_dummy_server(jack_server: JackServer) -> None:
    host_apis = [api["name"] for api in sd.query_hostapis()]
    assert "JACK Audio Connection Kit" in host_apis
    device = sd.query_devices(kind="output")
    assert device["max_output_channels"] >= 2
    assert device["default_samplerate"] == jack_server.sample_rate


def test_tone_through_portaudio_is_captured_by_a_jack_client(jack_server: JackServer) -> None:
    sample_rate = jack_server.sample_rate
    phase = np.zeros(1, dtype=np.int64)  # frames played so far, shared with the callback

    def play_tone(outdata: np.ndarray, frames: int, time: object, status: sd.CallbackFlags) -> None:
        n = np.arange(phase[0], phase[0] + frames)
        outdata[:, 0] = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * n / sample_rate)
        outdata[:, 1] = outdata[:, 0]
        phase[0] += frames

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
            recorder.wait(timeout_s=10.0)

    assert recorder.cycle_wall_s[-1] > recorder.cycle_wall_s[0]
    # The recorder starts after the stream, so every captured frame is tone. A loaded machine can
    # make the recorder miss a cycle (a phase jump), so measure the longest continuous stretch.
    captured = recorder.longest_run()
    assert len(captured) >= sample_rate // 10, "recorder missed cycles every < 0.1 s"
    left, right = captured[:, 0], captured[:, 1]
    np.testing.assert_array_equal(left, right)
    assert abs(tone_frequency_hz(left, sample_rate) - TONE_HZ) < 1.0
    rms = float(np.sqrt(np.mean(left.astype(np.float64) ** 2)))
    np.testing.assert_allclose(rms, TONE_AMPLITUDE / np.sqrt(2), rtol=0.01)
    assert np.max(np.abs(left)) <= TONE_AMPLITUDE + 1e-6


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
