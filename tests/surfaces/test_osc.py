"""OSC controls (``play --osc``): real UDP messages from python-osc's client to a real player on
the JACK dummy server, its output recorded by a JACK client.

An OSC message and its MIDI twin must do the same thing: the same controller values, the same
timbre, the same recorded note. OSC's extra delay is measured against a MIDI note from a JACK
client in the same run.
"""

from __future__ import annotations

import io
import re
import signal
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jackrig import MidiSender, Recorder
from live.test_player import MATCH, MISMATCH, match, note, onset

from gansynth_instrument.errors import PresetError
from gansynth_instrument.live.player import Player
from gansynth_instrument.presets.preset_files import find_preset
from gansynth_instrument.presets.preset_saving import check_free
from gansynth_instrument.surfaces.osc_addresses import OSC_ADDRESSES
from surfaces.surface_rig import RATE, header_value, start_play, surface_rig, wait_for

PITCH = 60
OSC_EXTRA_S = 0.020  # an OSC note's delay beyond a MIDI note's (same run), median
BANK = """\
name: rig
programs: presets
morph: {path: [felt-keys, glass-bell], cc: 1, steps: 5}
pad: {corners: [felt-keys, glass-bell, slow-pad, dark-cello], cc: [16, 17], size: 3}
"""


class Rig:
    """A player with its OSC server, an OSC client, and a MIDI sender on the player's port."""

    def __init__(
        self, player: Player, server: Any, log: io.StringIO, sender: MidiSender, user_dir: Path
    ) -> None:
        from pythonosc.udp_client import SimpleUDPClient

        self.player, self.server, self.sender, self.user_dir = player, server, sender, user_dir
        self.log = log  # the server's error lines
        self.client = SimpleUDPClient(server.host, server.port)

    def send(self, address: str, *args: Any) -> None:
        """Send one message and wait until the server has carried it out or refused it."""
        before = self.server.handled + self.server.refused
        self.client.send_message(address, list(args))
        wait_for(f"{address} to arrive", lambda: self.server.handled + self.server.refused > before)

    def errors(self) -> list[str]:
        return self.log.getvalue().splitlines()

    def controller(self, cc: int) -> int:
        return self.player.controllers[self.player.engine.focus][cc]

    def timbre(self) -> Any:
        return self.player.with_engine(lambda e: e.current())


@pytest.fixture(scope="module")
def rig(jack_server, model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    from gansynth_instrument.surfaces.osc_server import OscServer
    from gansynth_instrument.surfaces.ui_surface import Surface

    root = tmp_path_factory.mktemp("osc")
    made_for, log = "osc-test-model", io.StringIO()
    with (
        surface_rig(model, root, BANK, preset_model=made_for) as (player, sender, user_dir),
        OscServer(Surface(player, user_dir=user_dir), errors=log) as server,
    ):
        yield Rig(player, server, log, sender, user_dir)


def record(rig: Rig, start: Callable[[], None], stop: Callable[[], None]) -> tuple[float, Any]:
    """Seconds from ``start()`` to the first recorded sample, and the recording (left)."""
    wait_for("silence", lambda: rig.player.audio.voices_active == 0)
    with Recorder(seconds=0.6) as recorder:
        time.sleep(0.05)
        called = time.perf_counter()
        start()
        time.sleep(0.3)
        stop()
        audio = recorder.wait(timeout_s=10)[:, 0].copy()
        return recorder.wall_time_s(onset(audio)) - called, audio


def test_the_server_answers_exactly_the_addresses_of_the_table() -> None:
    from gansynth_instrument.surfaces.osc_server import OscServer

    handlers = {name for name in vars(OscServer) if name.startswith("_on_")}
    assert handlers == {a.handler for a in OSC_ADDRESSES}
    assert len({a.address for a in OSC_ADDRESSES}) == len(OSC_ADDRESSES) > 10


def test_an_osc_note_sounds_as_its_midi_twin_does(rig: Rig):
    """/note PITCH VELOCITY plays the cached note; /note PITCH 0 releases it; OSC adds no more
    than OSC_EXTRA_S to a MIDI note's delay (medians of four each, same run)."""
    rig.send("/preset", "felt-keys")
    felt = note(rig.player, rig.timbre(), PITCH)
    midi, osc = [], []
    for _ in range(4):
        delay, _ = record(
            rig,
            lambda: rig.sender.send([0x90, PITCH, 110]),
            lambda: rig.sender.send([0x80, PITCH, 0]),
        )
        midi.append(delay)
        delay, audio = record(
            rig,
            lambda: rig.client.send_message("/note", [PITCH, 110]),
            lambda: rig.client.send_message("/note", [PITCH, 0]),
        )
        osc.append(delay)
        body = audio[onset(audio) + 960 : onset(audio) + 14400]
        assert match(body, felt[:RATE])[0] > MATCH
    wait_for("the OSC note off", lambda: rig.player.audio.voices_active == 0, timeout_s=10)
    ms = lambda values: [round(1e3 * v, 1) for v in values]  # noqa: E731
    print(f"MIDI note → sound {ms(midi)} ms; OSC note → sound {ms(osc)} ms")
    assert statistics.median(osc) - statistics.median(midi) < OSC_EXTRA_S, (ms(midi), ms(osc))
    assert rig.errors() == []


def test_knob_pad_and_morph_set_the_controllers_their_midi_twins_set(rig: Rig):
    rig.send("/preset", "felt-keys")
    knob_cc = rig.server.surface.knob_ccs[0]
    centre = rig.timbre().key
    rig.send("/knob", 1, 1.0)
    assert rig.controller(knob_cc) == 127
    turned = rig.timbre().key
    assert turned != centre
    rig.send("/knob", 1, 0.5)
    assert rig.controller(knob_cc) == 64 and rig.timbre().key == centre
    rig.sender.send([0xB0, knob_cc, 127])  # the MIDI twin reaches the same timbre
    wait_for("the MIDI knob", lambda: rig.timbre().key == turned)
    rig.send("/knob", 1, 0.5)
    rig.send("/pad", 1.0, 0.0)
    assert (rig.controller(16), rig.controller(17)) == (127, 0)
    rig.send("/morph", 0.5)
    assert rig.controller(1) == 64
    rig.send("/pad", 0, 0)  # TouchOSC sends floats, Pd ints: both are 0..1
    rig.send("/morph", 0)
    assert (rig.controller(16), rig.controller(17), rig.controller(1)) == (0, 0, 0)
    assert rig.errors() == []


def test_preset_random_and_save_by_osc(rig: Rig):
    rig.send("/preset", "glass-bell")
    assert rig.timbre().name == "glass-bell"
    assert rig.player.engine.channels[0].program == find_preset("glass-bell").program
    bell = note(rig.player, rig.timbre(), PITCH)
    _, audio = record(
        rig,
        lambda: rig.client.send_message("/note", [PITCH, 100]),
        lambda: rig.client.send_message("/note", [PITCH, 0]),
    )
    body = audio[onset(audio) + 960 : onset(audio) + 14400]
    assert match(body, bell[:RATE])[0] > MATCH
    rig.send("/random")
    drawn = rig.timbre()
    assert drawn.name != "glass-bell"
    note(rig.player, drawn, PITCH)  # rendered before it is recorded
    _, audio = record(
        rig,
        lambda: rig.client.send_message("/note", [PITCH, 100]),
        lambda: rig.client.send_message("/note", [PITCH, 0]),
    )
    body = audio[onset(audio) + 960 : onset(audio) + 14400]
    assert match(body, bell[:RATE])[0] < MISMATCH
    rig.send("/save", "found-by-osc")
    saved = find_preset("found-by-osc", user_dir=rig.user_dir)
    assert np.array_equal(np.asarray(saved.latent, dtype=np.float32), drawn.latent)
    assert saved.model == "osc-test-model"  # a latent means this timbre on its model only
    assert rig.errors() == []


def test_bad_messages_are_one_line_each_and_change_nothing(rig: Rig):
    rig.send("/preset", "felt-keys")
    before = (rig.timbre().key, list(rig.player.controllers[0]), sorted(rig.user_dir.iterdir()))
    lines = len(rig.errors())
    bad = [
        ("/knob", [9, 0.5]),  # the tiny model's player has 8 knobs
        ("/knob", [1, 1.5]),
        ("/knob", [1, float("nan")]),
        ("/pad", [0.5]),
        ("/morph", ["loud"]),
        ("/note", [200, 100]),
        ("/note", [60]),
        ("/cc", [7, 128]),
        ("/midi", [0xF0, 1, 2]),  # system exclusive: not a page or OSC action
        ("/preset", ["../../etc/passwd"]),
        ("/preset", ["no-such-preset"]),
        ("/save", ["felt-keys"]),  # a shipped name
        ("/latent", [1.0, 2.0]),
        ("/volume", [1]),
    ]
    for address, args in bad:
        rig.send(address, *args)
    errors = rig.errors()[lines:]
    assert len(errors) == len(bad), errors
    for (address, _), line in zip(bad, errors, strict=True):
        assert line.startswith(f"osc: {address}: ")
        assert line.count(address) == 1, line  # named by the table's row, nowhere else
    assert "1..8" in errors[0] and "../../etc/passwd" in errors[9], errors
    with pytest.raises(PresetError) as taken:  # the one rule for new names, in its words
        check_free("save", "felt-keys", user_dir=rig.user_dir)
    assert errors[11] == f"osc: /save: {taken.value}"
    after = (rig.timbre().key, list(rig.player.controllers[0]), sorted(rig.user_dir.iterdir()))
    assert after == before
    rig.send("/morph", 0.0)  # the server is still listening
    assert rig.errors()[lines + len(bad) :] == []


def test_play_osc_prints_its_port_and_plays(jack_server, tiny_model, tmp_path):
    """The command line: ``play --osc 0`` prints the port; a note sent there is heard, a bad
    message is one line on stderr, and Ctrl-C ends it cleanly."""
    from pythonosc.udp_client import SimpleUDPClient

    port = f"osc-{uuid.uuid4().hex[:6]}"
    others = audio_outputs()  # another test's player may be open on the server
    play = start_play(
        "--model", str(tiny_model), "--virtual-midi", port, "--cache-dir", str(tmp_path),
        "--no-knobs", "--osc", "0",
    )  # fmt: skip
    try:
        address = header_value(play, "osc")
        host, osc_port = address.rsplit(":", 1)
        assert host == "127.0.0.1"
        client = SimpleUDPClient(host, int(osc_port))
        (played,) = {p.split(":")[0] for p in audio_outputs()} - {p.split(":")[0] for p in others}
        client.send_message("/knob", [1, 0.5])  # --no-knobs: no knobs to turn
        # The preset's notes are made (a note-on that waits longer than engine.PENDING_S for
        # a timbre with nothing cached is dropped, as it should be live).
        while not re.search(r"cache (\d+)/\1 ", play.stdout.readline()):
            assert play.poll() is None, play.stderr.read()
        with Recorder(seconds=4.0, sources=[f"{played}:out_0"], channels=1) as recorder:
            client.send_message("/note", [PITCH, 120])
            wait_for("the note", lambda: np.abs(recorder.captured).max(initial=0) > 1e-3)
            client.send_message("/note", [PITCH, 0])
        play.send_signal(signal.SIGINT)
        _, err = play.communicate(timeout=60)
    finally:
        play.kill()
    assert play.returncode == 0 and "Traceback" not in err, err
    assert "osc: /knob: this player has no timbre knobs" in err.splitlines()


def audio_outputs() -> set[str]:
    import jack

    client = jack.Client("osc-ports", no_start_server=True)
    try:
        return {p.name for p in client.get_ports(is_audio=True, is_output=True)}
    finally:
        client.close()
