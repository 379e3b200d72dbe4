"""audio.py on the JACK dummy server: a real stream plays what render() writes; device errors."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from jackrig import JackServer, Recorder

from gansynth_instrument.audio import AudioOutput, find_output, list_outputs
from gansynth_instrument.errors import DeviceError


class Ramp:
    """A render function whose output is known sample by sample: a sawtooth, left = -right.

    Each output frame n holds ``((n % period) / period - 0.5) * amplitude`` on the left channel, so
    the captured signal can be checked for lost, repeated or reordered blocks, not only its pitch.
    """

    def __init__(self, period_frames: int, amplitude: float) -> None:
        self.period_frames = period_frames
        self.amplitude = amplitude
        self.frames_rendered = 0
        self.block_shapes: set[tuple[int, ...]] = set()
        self.cycle = (np.arange(period_frames, dtype=np.float32) / period_frames - 0.5) * amplitude

    def render(self, out: np.ndarray, frames: int) -> None:
        self.block_shapes.add((*out.shape, frames))
        start = self.frames_rendered % self.period_frames
        index = (np.arange(frames) + start) % self.period_frames
        out[:, 0] = self.cycle[index]
        out[:, 1] = -out[:, 0]
        self.frames_rendered += frames


def test_stream_plays_what_render_writes(jack_server: JackServer) -> None:
    ramp = Ramp(period_frames=480, amplitude=0.5)  # 100 Hz at 48 kHz
    output = AudioOutput(ramp.render, sample_rate=48000, block_frames=128)
    assert output.device.host_api == "JACK Audio Connection Kit"
    with output, Recorder(seconds=0.5) as recorder:
        captured = recorder.wait(timeout_s=10.0).copy()
        stats = output.stats()
        assert output.active
    assert ramp.block_shapes == {(128, 2, 128)}
    left, right = captured[:, 0], captured[:, 1]
    np.testing.assert_array_equal(right, -left)
    # Every captured block is the sawtooth, sample for sample, and it continues from the block
    # before unless the recorder missed JACK cycles in between (a loaded machine can delay it).
    missed = set(recorder.missed_cycles().tolist())
    phases = []
    for k, block in enumerate(left.reshape(-1, 128)):
        (phase,) = np.flatnonzero(ramp.cycle == block[0])
        np.testing.assert_array_equal(block, ramp.cycle[(np.arange(128) + phase) % 480])
        if phases and k not in missed:
            assert phase == (phases[-1] + 128) % 480, f"block {k} does not follow block {k - 1}"
        phases.append(phase)
    assert stats.callbacks >= len(captured) // 128
    assert stats.block_period_s == pytest.approx(128 / 48000)
    assert 0 < stats.callback_median_s <= stats.callback_max_s
    assert stats.latency_s > 0
    assert stats.dac_latency_s >= stats.latency_s


def test_unknown_device_error_lists_the_outputs(jack_server: JackServer) -> None:
    with pytest.raises(DeviceError) as err:
        AudioOutput(Ramp(480, 0.5).render, device="no-such-sound-card")
    message = str(err.value)
    assert "\n" not in message
    assert "'no-such-sound-card'" in message
    for output in list_outputs():
        assert output.name in message
    assert "--device" in message


def test_device_found_by_index_or_name(jack_server: JackServer) -> None:
    default = find_output(None)
    assert default.is_default
    assert find_output(str(default.index)) == default
    assert find_output(default.name) == default


def test_too_many_channels_is_one_line(jack_server: JackServer) -> None:
    channels = find_output(None).channels + 1
    with pytest.raises(DeviceError, match=f"{channels} needed") as err:
        AudioOutput(Ramp(480, 0.5).render, channels=channels)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(
    Path("/dev/snd").exists(),
    reason="this machine has sound hardware, so PortAudio always finds an output here; "
    "the no-device path runs on headless machines (CI)",
)
def test_no_output_device_suggests_render() -> None:
    """No JACK server and no sound card: opening an output fails with one line naming render."""
    env = dict(os.environ)
    env.update(JACK_DEFAULT_SERVER=f"absent-{uuid.uuid4().hex[:8]}", JACK_NO_START_SERVER="1")
    code = (
        "from gansynth_instrument.audio import AudioOutput\n"
        "from gansynth_instrument.errors import DeviceError\n"
        "try:\n"
        "    AudioOutput(lambda out, frames: None)\n"
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
    assert message.startswith("no audio output device found")
    assert "gansynth-instrument render" in message
