"""audio.py on the JACK dummy server: a real stream plays what mix() writes; device errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from jackrig import JackServer, Recorder, decode_frames, device_error_without_jack, frame_code

from gansynth_instrument.errors import DeviceError
from gansynth_instrument.live.audio import AudioOutput, find_output, list_outputs


class Ramp:
    """A mix function whose output is known sample by sample: a 100 Hz sawtooth on the left
    channel, and on the right the number of the frame (``frame_code``), so a test can check every
    captured sample against what mix wrote for that very frame."""

    PERIOD_FRAMES = 480

    def __init__(self) -> None:
        self.frames_mixed = 0
        self.block_shapes: set[tuple[int, ...]] = set()

    @classmethod
    def sawtooth(cls, frames: np.ndarray) -> np.ndarray:
        return (frames % cls.PERIOD_FRAMES).astype(np.float32) / cls.PERIOD_FRAMES - 0.5

    def mix(self, out: np.ndarray, frames: int) -> None:
        self.block_shapes.add((*out.shape, frames))
        numbers = np.arange(self.frames_mixed, self.frames_mixed + frames)
        out[:, 0] = self.sawtooth(numbers)
        out[:, 1] = frame_code(numbers)
        self.frames_mixed += frames


def test_stream_plays_what_mix_writes(jack_server: JackServer) -> None:
    ramp = Ramp()
    output = AudioOutput(ramp.mix, sample_rate=48000, block_frames=128)
    assert output.device.host_api == "JACK Audio Connection Kit"
    with output, Recorder(seconds=0.5) as recorder:
        captured = recorder.wait(timeout_s=10.0).copy()
        stats = output.stats()
        assert output.active
    assert ramp.block_shapes == {(128, 2, 128)}
    frames = decode_frames(captured[:, 1])
    intact = (frames >= 0) & (captured[:, 0] == Ramp.sawtooth(frames))
    # A block is intact when all its samples are what mix wrote for their frames and the
    # frames count up by one. A loaded machine can make JACK run the recorder while PortAudio is
    # late, which mixes cycles up; PortAudio then flags the stream, so allow that only with xruns.
    blocks = frames.reshape(-1, 128)
    intact_blocks = intact.reshape(-1, 128).all(axis=1) & (np.diff(blocks, axis=1) == 1).all(axis=1)
    damaged = int((~intact_blocks).sum())
    assert damaged == 0 or (stats.xruns > 0 and damaged <= len(blocks) // 10), (
        f"{damaged} of {len(blocks)} captured blocks differ from what mix wrote "
        f"({stats.xruns} xruns)"
    )
    starts = blocks[intact_blocks, 0]
    assert (np.diff(starts) > 0).all(), "captured blocks out of order"
    assert stats.callbacks >= len(captured) // 128
    assert stats.block_period_s == pytest.approx(128 / 48000)
    assert 0 < stats.callback_median_s <= stats.callback_max_s
    # JACK reports no port latency in synchronous mode (the fixture's) and one period otherwise;
    # PortAudio's timestamps put the DAC at least one block ahead either way.
    reported = stats.latency_s
    assert reported == pytest.approx(0.0, abs=1e-9) or reported == pytest.approx(128 / 48000)
    assert stats.dac_latency_s >= max(stats.latency_s, stats.block_period_s) - 1e-9


def test_unknown_device_error_lists_the_outputs(jack_server: JackServer) -> None:
    with pytest.raises(DeviceError) as err:
        AudioOutput(Ramp().mix, device="no-such-sound-card")
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


def test_sample_rate_other_than_jacks_names_the_right_one(jack_server: JackServer) -> None:
    with pytest.raises(DeviceError) as err:
        AudioOutput(Ramp().mix, sample_rate=44100)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("the JACK server runs at 48000 Hz, not 44100 Hz")
    assert "--samplerate 48000" in message


@pytest.mark.parametrize("block_frames", [64, 100, 256])
def test_a_block_size_other_than_jacks_period_names_the_period(
    jack_server: JackServer, block_frames: int
) -> None:
    """PortAudio would open each of these and then split the period (64, 100: underflows), add a
    period of latency (256) or stall (100000, below): refused before the stream opens."""
    with pytest.raises(DeviceError) as err:
        AudioOutput(Ramp().mix, block_frames=block_frames)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"the JACK server runs at 128 frames per period, not {block_frames}")
    assert "--blocksize 128" in message


def test_too_many_channels_is_one_line(jack_server: JackServer) -> None:
    channels = find_output(None).channels + 1
    with pytest.raises(DeviceError, match=f"{channels} needed") as err:
        AudioOutput(Ramp().mix, channels=channels)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(
    Path("/dev/snd").exists(),
    reason="this machine has sound hardware, so PortAudio always finds an output here; "
    "the no-device path runs on headless machines (CI)",
)
def test_no_output_device_suggests_render() -> None:
    """No JACK server and no sound card: opening an output fails with one line naming render."""
    message, _ = device_error_without_jack(
        "from gansynth_instrument.live.audio import AudioOutput",
        "AudioOutput(lambda out, frames: None)",
    )
    assert message.startswith("no audio output device found")
    assert "gansynth-instrument render" in message
