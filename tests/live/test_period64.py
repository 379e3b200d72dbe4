"""64-frame blocks on a JACK server whose period is 64 frames (issue 27: ``--blocksize 64``):
the stream opens and runs at one callback per period, and the default 128 is refused with the
server's period named, by the library and by ``play`` (before the model loads)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import serve_jack
from jackrig import JackServer

from gansynth_instrument import cli
from gansynth_instrument.errors import DeviceError
from gansynth_instrument.live.audio import AudioOutput


@pytest.fixture(scope="module")
def server64() -> Iterator[JackServer]:
    yield from serve_jack(period_frames=64)


def test_64_frame_blocks_run_at_the_servers_period(server64: JackServer) -> None:
    blocks: list[int] = []

    def mix(out, frames: int) -> None:
        blocks.append(frames)
        out.fill(0)

    with AudioOutput(mix, block_frames=64) as output:
        time.sleep(0.5)
        stats = output.stats()
    assert set(blocks) == {64}
    assert stats.block_period_s == pytest.approx(64 / 48000)
    # 0.5 s at 750 callbacks a second; a loaded machine may slow the dummy driver's pace.
    assert stats.callbacks > 0.5 * 750 * 0.5


def test_the_default_128_is_refused_naming_64(server64: JackServer, tiny_model, capsys) -> None:
    with pytest.raises(
        DeviceError, match=r"^the JACK server runs at 64 frames per period, not 128"
    ):
        AudioOutput(lambda out, frames: out.fill(0), block_frames=128)
    code = cli.main(["play", "--model", str(tiny_model), "--blocksize", "128"])
    last = capsys.readouterr().err.splitlines()[-1]  # after the default bank's notice
    assert code == 1 and last.startswith(
        "gansynth-instrument play: error: the JACK server runs at 64"
    )
    assert "--blocksize 64" in last
