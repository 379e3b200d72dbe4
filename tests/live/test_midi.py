"""midi.py on the JACK dummy server: messages from a separate JACK MIDI client arrive as bytes."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from jackrig import (
    JackServer,
    MidiSender,
    MidiSource,
    device_error_without_jack,
    midi_input_port,
)

from gansynth_instrument.cli import main
from gansynth_instrument.errors import DeviceError
from gansynth_instrument.live.midi import MidiInput, list_inputs

MESSAGES = [
    [0x90, 60, 100],  # note-on C4
    [0xB0, 64, 127],  # sustain pedal down
    [0xE0, 0x00, 0x60],  # pitch bend up
    [0xC1, 5],  # program change, channel 2 (two bytes)
    [0x80, 60, 0],  # note-off
]


class Inbox:
    """A ``handle`` that keeps what it was given; ``wait`` blocks until ``count`` arrived."""

    def __init__(self) -> None:
        self.messages: list[list[int]] = []
        self._arrived = threading.Condition()

    def handle(self, msg: list[int]) -> None:
        with self._arrived:
            self.messages.append(list(msg))
            self._arrived.notify_all()

    def wait(self, count: int, timeout_s: float = 5.0) -> list[list[int]]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout_s)
            return list(self.messages)


def _send_all(sender: MidiSender) -> None:
    for msg in MESSAGES:
        sender.send(msg)
        time.sleep(0.01)  # one message per JACK cycle or so; order must hold either way


def test_virtual_port_receives_from_a_jack_midi_client(jack_server: JackServer) -> None:
    inbox = Inbox()
    # MIDI port first, sender second: see MidiSource for why the order saves a second here.
    with MidiInput(inbox.handle, virtual="keys", client_name="gsi-v"), MidiSender() as sender:
        sender.connect(midi_input_port(sender.client, "gsi-v.*:keys"))
        _send_all(sender)
        assert inbox.wait(len(MESSAGES)) == MESSAGES
        # Still listening: one more message arrives too.
        sender.send([0x90, 67, 1])
        assert inbox.wait(len(MESSAGES) + 1)[-1] == [0x90, 67, 1]


def test_the_handler_runs_beside_the_jack_cycle_not_in_it(jack_server: JackServer) -> None:
    """rtmidi's JACK thread only queues a message: ``handle`` runs on the input's own thread, so
    a slow handler (the engine under load) holds up no JACK cycle. While the first message's
    handler blocks, the next messages are still taken from JACK and queued, and the JACK
    cycle goes on (the sender's cycles keep counting); they are then handled in order."""
    inbox, release = Inbox(), threading.Event()
    threads: list[threading.Thread] = []
    policies: list[int] = []

    def handle(msg: list[int]) -> None:
        threads.append(threading.current_thread())
        policies.append(os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK)
        if not threads[1:]:
            release.wait(5.0)
        inbox.handle(msg)

    with (
        MidiInput(handle, virtual="keys", client_name="gsi-thread") as midi_in,
        MidiSender() as sender,
    ):
        sender.connect(midi_input_port(sender.client, "gsi-thread.*:keys"))
        for msg in MESSAGES:
            sender.send(msg)
        time.sleep(0.05)
        queued = midi_in._delivery.inbox.qsize()
        cycles = sender._cycles
        time.sleep(0.1)
        assert sender._cycles > cycles  # JACK runs on while the handler is busy
        release.set()
        assert inbox.wait(len(MESSAGES)) == MESSAGES
    assert queued == len(MESSAGES) - 1  # taken from JACK while the first was being handled
    assert {t.name for t in threads} == {"midi-handler"}  # not rtmidi's thread
    # At the lowest real-time priority where the system allows it (root, or an rtprio limit).
    may = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 1
    assert set(policies) == {os.SCHED_FIFO if may else os.SCHED_OTHER}


def test_a_failing_handler_is_reported_and_delivery_goes_on(
    jack_server: JackServer, capfd: pytest.CaptureFixture[str]
) -> None:
    inbox = Inbox()

    def handle(msg: list[int]) -> None:
        inbox.handle(msg)
        if msg[1] == 61:
            raise ValueError("engine bug")

    with (
        MidiInput(handle, virtual="keys", client_name="gsi-fail") as midi_in,
        MidiSender() as sender,
    ):
        sender.connect(midi_input_port(sender.client, "gsi-fail.*:keys"))
        for pitch in (60, 61, 62):
            sender.send([0x90, pitch, 100])
        assert [m[1] for m in inbox.wait(3)] == [60, 61, 62]
        assert midi_in.handler_errors == 1
    err = capfd.readouterr().err
    assert "MIDI message [144, 61, 100] failed in the handler" in err
    assert "ValueError: engine bug" in err


def test_named_port_is_opened_by_part_of_its_name(jack_server: JackServer) -> None:
    inbox = Inbox()
    with (
        MidiSender(name="test-keyboard") as sender,
        MidiInput(inbox.handle, ports=["TEST-KEYB"]) as midi_in,
    ):
        assert midi_in.port_names == ["test-keyboard:out"]
        assert midi_in.api == "Jack"
        sender.wait_connected()
        _send_all(sender)
        assert inbox.wait(len(MESSAGES)) == MESSAGES


def test_close_removes_the_port_and_stops_delivery(jack_server: JackServer) -> None:
    inbox = Inbox()
    midi_in = MidiInput(inbox.handle, virtual="closing", client_name="gsi-close")
    with MidiSender() as sender:
        sender.connect(midi_input_port(sender.client, "gsi-close.*:closing"))
        midi_in.close()
        midi_in.close()  # twice is harmless
        assert sender.client.get_ports("gsi-close", is_midi=True) == []
        sender.send([0x90, 60, 100])
        time.sleep(0.1)
    assert inbox.messages == []
    # The name is free again: a new client gets it without a "-01" suffix.
    with MidiInput(inbox.handle, virtual="closing", client_name="gsi-close"), MidiSource("x") as s:
        assert midi_input_port(s.client, "gsi-close:closing") == "gsi-close:closing"


def test_list_inputs_names_jack_midi_sources(jack_server: JackServer) -> None:
    with MidiSource("some-keyboard"):
        api, ports = list_inputs()
    assert api == "Jack"
    assert "some-keyboard:out" in ports


def test_unknown_port_error_lists_the_ports(jack_server: JackServer) -> None:
    with MidiSource("only-keyboard"), pytest.raises(DeviceError) as err:
        MidiInput(lambda msg: None, ports=["no-such-keyboard"])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("no MIDI input port 'no-such-keyboard'")
    assert "'only-keyboard:out'" in message


def test_ambiguous_port_error_names_the_matches(jack_server: JackServer) -> None:
    with MidiSource("synth-a"), MidiSource("synth-b"), pytest.raises(DeviceError) as err:
        MidiInput(lambda msg: None, ports=["synth"])
    assert "ambiguous" in str(err.value)
    assert "'synth-a:out'" in str(err.value) and "'synth-b:out'" in str(err.value)


def test_devices_command_lists_outputs_and_midi_inputs(
    jack_server: JackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with MidiSource("listed-keyboard"):
        assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "* " in out and "system" in out and "JACK Audio Connection Kit" in out
    assert "MIDI inputs via Jack" in out
    assert "listed-keyboard:out" in out


@pytest.mark.skipif(
    Path("/dev/snd/seq").exists(),
    reason="this machine has an ALSA sequencer, so MIDI always opens here; "
    "the no-MIDI path runs on headless machines (CI)",
)
def test_no_midi_system_is_one_line() -> None:
    """No JACK server and no ALSA sequencer: one line that says how to get one."""
    message, stderr = device_error_without_jack(
        "from gansynth_instrument.live.midi import MidiInput", "MidiInput(print)"
    )
    assert message.startswith("no MIDI system available")
    assert "JACK" in message and "snd-seq" in message
    assert stderr == ""  # libjack's and alsa-lib's own lines are silenced


@pytest.mark.skipif(
    Path("/dev/snd").exists(),
    reason="this machine has sound hardware; the nothing-there listing runs on headless machines",
)
def test_devices_command_with_nothing_there_says_what_to_do() -> None:
    env = dict(os.environ)
    env.update(JACK_DEFAULT_SERVER=f"absent-{uuid.uuid4().hex[:8]}", JACK_NO_START_SERVER="1")
    result = subprocess.run(
        [sys.executable, "-m", "gansynth_instrument", "devices"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "none: start a JACK server" in result.stdout
    assert "'gansynth-instrument render'" in result.stdout
    assert "unavailable: no MIDI system available" in result.stdout
    assert result.stderr == ""


CLOSE_MID_BURST = """
import sys, time
sys.path.insert(0, sys.argv[1])
from jackrig import MidiSender, midi_input_port
from gansynth_instrument.live.midi import MidiInput

def slow(msg):
    end = time.perf_counter() + 0.0003  # an engine's worth of work, holding the GIL
    while time.perf_counter() < end:
        pass

with MidiSender(name="burst") as sender:
    for round in range(int(sys.argv[2])):
        midi_in = MidiInput(slow, virtual="keys", client_name=f"gsi-burst{round}")
        sender.connect(midi_input_port(sender.client, f"gsi-burst{round}.*:keys"))
        for _ in range(200):
            sender.send([0x90, 60, 1])
        time.sleep(0.003)  # the burst is being delivered
        midi_in.close()
print("closed", flush=True)
"""


def test_closing_while_rtmidi_delivers_a_burst_does_not_crash(jack_server: JackServer) -> None:
    """rtmidi's thread may be waiting for the GIL to deliver a message when the input closes
    (python-rtmidi frees the callback as the port closes): a segfault, seen in CI."""
    tests = Path(__file__).resolve().parents[1]  # jackrig.py
    command = [sys.executable, "-c", CLOSE_MID_BURST, str(tests), "25"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "closed" in result.stdout, result.stderr[-2000:]
