"""MIDI input: open named ports or a virtual port; hand each message, as raw bytes, to a callable.

A thin adapter around python-rtmidi, in the way a mido backend or a FluidSynth MIDI driver is one:
it knows nothing about the engine. ``handle(msg)`` receives each message as a list of ints
(status byte first), in order, on a thread of this input (``midi-handler``); the engine decodes
it.

Why that thread: under JACK, rtmidi calls its callback on its client's process thread, inside
the graph's cycle that brought the message, and that cycle is not over until the callback
returns. The engine's work on a note-on is 0.2-0.3 ms of Python (``bench_live.py --floor
--hops``), more when the GIL is busy: in the callback, a chord of five notes would hold the cycle
past a 64-frame period (1.33 ms), an xrun for every client on the server, and a handler that
blocked lost the messages behind it. So the callback only puts the message in a queue, whose
``get`` wakes the handler thread at once (no polling: a thread polling rtmidi every 0.5 ms made
notes wait for the next cycle, 2.3 ms at 128 frames), and the engine works beside the cycle. A
note sounds as soon as it did from the callback: the audio process's callback of the cycle that
brought it has as a rule run already, so its command is taken by the next cycle's, as the
floor's is (``--hops``). The handler thread runs at the lowest real-time priority where the
system allows it, below JACK's threads: as a plain thread on a loaded machine it waited for a
CPU 1.1 ms (median; 12 ms at worst), past that next cycle.

API choice: JACK MIDI when a JACK server runs (rtmidi's default on Linux is ALSA even under JACK,
and the ALSA sequencer is missing on JACK-only or container machines), else ALSA on Linux, else the
platform's own (CoreMIDI, Windows MM). System exclusive, clock and active-sensing messages are
dropped (rtmidi's default), since nothing here plays them.

python-rtmidi holds the GIL while its JACK client opens (about 1 s) and closes (about 0.5 s), so
nothing else of this process runs meanwhile; the audio stream is not affected, since it plays in a
process of its own (``audio_process.py``).

Also home of ``print_devices`` (the ``devices`` subcommand): audio outputs and MIDI inputs with the
names to pass to ``--device`` and ``--midi-in``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import rtmidi

from gansynth_instrument.errors import DeviceError

MidiHandler = Callable[[list[int]], None]
"""``handle(msg)``: one MIDI message as raw bytes (status first), on the input's handler thread."""

DRAIN_S = 0.02  # several JACK periods: what rtmidi's thread holds is handed over by then
QUEUE_SIZE = 4096  # messages rtmidi keeps per client while its callback is not set yet
# The handler thread's real-time priority: the lowest, under every JACK thread, over every other
# program's threads; a thread or process it starts gets the normal policy back.
HANDLER_POLICY = getattr(os, "SCHED_FIFO", 0) | getattr(os, "SCHED_RESET_ON_FORK", 0)
HANDLER_PRIORITY = 1

CLIENT_NAME = "gansynth-instrument"
DEFAULT_VIRTUAL_PORT = "midi_in"


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C-level stderr: libjack and alsa-lib print several lines of their own when there is
    no JACK server or ALSA sequencer, where our one-line error (or the fallback) says it all."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _new_client(client_name: str) -> rtmidi.MidiIn:
    """A MidiIn on the API that can work here: JACK if its server answers, else ALSA/platform."""
    compiled = rtmidi.get_compiled_api()
    if rtmidi.API_UNIX_JACK in compiled:
        try:
            with _quiet_stderr():
                return rtmidi.MidiIn(
                    rtmidi.API_UNIX_JACK, name=client_name, queue_size_limit=QUEUE_SIZE
                )
        except rtmidi.SystemError:
            pass  # no JACK server running: fall back to ALSA below
    api = rtmidi.API_LINUX_ALSA if rtmidi.API_LINUX_ALSA in compiled else rtmidi.API_UNSPECIFIED
    try:
        with _quiet_stderr():
            return rtmidi.MidiIn(api, name=client_name, queue_size_limit=QUEUE_SIZE)
    except rtmidi.RtMidiError as err:
        jack = "no JACK server is running and " if rtmidi.API_UNIX_JACK in compiled else ""
        raise DeviceError(
            f"no MIDI system available: {jack}{rtmidi.get_api_display_name(api)} MIDI cannot be "
            f"opened ({err}); start a JACK server or load the ALSA sequencer (modprobe snd-seq)"
        ) from err


def _api_name(client: rtmidi.MidiIn) -> str:
    return rtmidi.get_api_display_name(client.get_current_api())


def list_inputs() -> tuple[str, list[str]]:
    """The MIDI API in use (rtmidi's name: 'Jack', 'ALSA', ...) and the ports we can listen to."""
    client = _new_client(f"{CLIENT_NAME}-list")
    try:
        return _api_name(client), list(client.get_ports())
    finally:
        client.delete()


def _destinations(client: rtmidi.MidiIn) -> set[str]:
    """The MIDI ports others can send to on ``client``'s API, by their full names."""
    listing = rtmidi.MidiOut(client.get_current_api(), name=f"{CLIENT_NAME}-list")
    try:
        return set(listing.get_ports())
    finally:
        listing.delete()


def _new_destination(client: rtmidi.MidiIn, before: set[str], virtual: str) -> str:
    """The full name of the virtual port ``virtual`` just opened on ``client``, as others see it:
    the MIDI system may have renamed the client (JACK makes a second player's
    ``gansynth-instrument-01``). The one new port of that name; else the name alone."""
    new = [p for p in _destinations(client) - before if f":{virtual}" in p]
    return new[0] if len(new) == 1 else virtual


def _find_port(ports: Sequence[str], wanted: str) -> int:
    """Index of the port named ``wanted``: the exact name, else the only one containing it
    (case-insensitive: ``--midi-in keystation`` finds ``Keystation 49:Keystation 49 MIDI 1 20:0``).
    """
    if wanted in ports:
        return list(ports).index(wanted)
    matches = [i for i, name in enumerate(ports) if wanted.lower() in name.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(repr(ports[i]) for i in matches)
        raise DeviceError(f"MIDI input {wanted!r} is ambiguous: it matches {names}")
    listed = ", ".join(repr(p) for p in ports) or "none (connect a device, or use --virtual-midi)"
    raise DeviceError(f"no MIDI input port {wanted!r}; MIDI inputs are: {listed}")


class _Delivery:
    """The handler thread: takes each message rtmidi's callback queued, in order, and hands it to
    ``handle`` while ``on``; an exception is printed with its traceback and counted. ``None``
    ends it."""

    def __init__(self, handle: MidiHandler) -> None:
        self.inbox: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self.on = True  # set False (by close) before the clients go: nothing is handled after
        self.errors = 0
        self._handle = handle
        self.thread = threading.Thread(target=self._run, name="midi-handler", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # no right to it: a plain thread
            os.sched_setscheduler(0, HANDLER_POLICY, os.sched_param(HANDLER_PRIORITY))
        while (msg := self.inbox.get()) is not None:
            if not self.on:
                continue
            try:
                self._handle(msg)
            except Exception:
                self.errors += 1
                print(f"MIDI message {msg} failed in the handler:", file=sys.stderr)
                traceback.print_exc()


def _free_clients(clients: list[rtmidi.MidiIn], delivery: _Delivery) -> None:
    """Close and free ``clients`` (emptied: nothing is freed twice), their callbacks drained first,
    then end the handler thread (waiting up to DRAIN_S for the message it may be handling).

    python-rtmidi frees a callback when its port closes, while rtmidi's thread may be waiting for
    the GIL to call it: a crash. So delivery stops first (the callback returns at once, and the
    handler thread drops what is still queued: the player behind it is closing), and the GIL is
    let go for ``DRAIN_S`` while rtmidi's thread hands over what it already holds."""
    delivery.on = False
    if clients:
        time.sleep(DRAIN_S)
    while clients:
        client = clients.pop()
        client.close_port()
        client.delete()
    if delivery.thread.is_alive():
        delivery.inbox.put(None)
        if delivery.thread is not threading.current_thread():
            delivery.thread.join(DRAIN_S)


class MidiInput:
    """MIDI input from the named ``ports`` (each opened through its own rtmidi client), or, when
    none is named, from one virtual port called ``virtual`` that other programs connect to.

    Every message goes to ``handle`` as raw bytes, on the input's handler thread (see the module
    docstring). ``port_names`` lists what was opened (source ports, or the virtual port's full
    name, the one other programs connect to);
    ``api`` is the MIDI API ('Jack', 'ALSA', ...). ``close()`` (or leaving the ``with`` block)
    stops delivery and frees every client, so a later run gets the same names back.

    An exception from ``handle`` is printed with its traceback and counted in ``handler_errors``;
    delivery of the next messages goes on.
    """

    def __init__(
        self,
        handle: MidiHandler,
        *,
        ports: Sequence[str] = (),
        virtual: str = DEFAULT_VIRTUAL_PORT,
        client_name: str = CLIENT_NAME,
    ) -> None:
        self._clients: list[rtmidi.MidiIn] = []
        # Freed at interpreter exit too: rtmidi's thread calling back into a finalising
        # interpreter is a fatal error.
        self._delivery = _Delivery(handle)
        self._free = weakref.finalize(self, _free_clients, self._clients, self._delivery)
        self._named: list[tuple[rtmidi.MidiIn, str]] = []  # named inputs: client, source port
        self._present: list[bool] = []
        self.port_names: list[str] = []
        try:
            if ports:
                for wanted in ports:
                    self._open_named(wanted, client_name)
            else:
                client = self._add_client(client_name)
                before = _destinations(client)
                client.open_virtual_port(virtual)
                self.port_names.append(_new_destination(client, before, virtual))
        except rtmidi.RtMidiError as err:
            self.close()
            target = ", ".join(ports) if ports else f"virtual port {virtual!r}"
            raise DeviceError(f"cannot open MIDI input {target}: {err}") from err
        except DeviceError:
            self.close()
            raise
        self.api = _api_name(self._clients[0])
        for client in self._clients:
            client.set_callback(self._on_message)

    def _add_client(self, client_name: str) -> rtmidi.MidiIn:
        client = _new_client(client_name)
        self._clients.append(client)
        return client

    def _open_named(self, wanted: str, client_name: str) -> None:
        client = self._add_client(client_name)
        ports = client.get_ports()
        index = _find_port(ports, wanted)
        client.open_port(index, name="in")
        self.port_names.append(ports[index])
        self._named.append((client, ports[index]))
        self._present.append(True)

    def check_ports(self) -> list[str]:
        """Notice named inputs that went away (a keyboard unplugged, its program quit) or came
        back, and reconnect those that are back. Returns one line per change, for the player to
        show. It asks the MIDI system for its ports, so call it now and then (about once a
        second), from the control side; a virtual port needs no check (others connect to it)."""
        changes = []
        for i, (client, name) in enumerate(self._named):
            ports = client.get_ports()
            present = name in ports
            if present == self._present[i]:
                continue
            self._present[i] = present
            if not present:
                changes.append(f"MIDI input {name!r} is gone; playing on, reconnecting when back")
                continue
            try:
                client.close_port()
                client.open_port(ports.index(name), name="in")
                client.set_callback(self._on_message)  # close_port dropped it
            except rtmidi.RtMidiError as err:
                self._present[i] = False  # try again at the next check
                changes.append(f"MIDI input {name!r} is back but cannot be opened: {err}")
            else:
                changes.append(f"MIDI input {name!r} is back; reconnected")
        return changes

    @property
    def handler_errors(self) -> int:
        """Messages whose ``handle`` raised."""
        return self._delivery.errors

    def _on_message(self, event: tuple[list[int], float], _data: object) -> None:
        """rtmidi's callback, on its JACK thread (or ALSA's reader thread): queue, nothing more."""
        if self._delivery.on:
            self._delivery.inbox.put(event[0])

    def close(self) -> None:
        """Stop delivering and free every rtmidi client (safe to call twice)."""
        self._named, self._present = [], []
        self._free()

    def __enter__(self) -> MidiInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
