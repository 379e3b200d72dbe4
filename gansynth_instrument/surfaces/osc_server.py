"""The instrument over OSC (``play --osc PORT``): the browser surface's controls as OSC messages
for Pd, Max and TouchOSC.

Every message goes through the browser surface (``ui_surface.Surface``), so through the same
path as the matching MIDI message, on the focus channel. The addresses and their arguments are
``osc_addresses.OSC_ADDRESSES``; each is carried out by the method the table names
(``/note``: ``OscServer._on_note``).

A 0..1 value becomes the controller's 0..127 (rounded). A message that cannot be carried out
(unknown address, a value out of range, a name that is not a preset) is one line on stderr and
changes nothing. UDP carries no token, so the server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from gansynth_instrument.errors import DeviceError, GansynthError, PresetError
from gansynth_instrument.midi_spec import (
    CONTROL_CHANGE,
    DATA_MAX,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
)
from gansynth_instrument.surfaces.osc_addresses import OSC_ADDRESSES
from gansynth_instrument.surfaces.ui_surface import Surface

LOCALHOST = "127.0.0.1"


class OscServer:
    """Carries out OSC messages on ``surface`` from a thread of its own, listening on
    ``host``:``port`` (0: a free port; ``port`` then holds the one bound). Errors in messages
    are written to ``errors``, one line each. A port that cannot be bound is a DeviceError."""

    def __init__(
        self,
        surface: Surface,
        *,
        host: str = LOCALHOST,
        port: int = 0,
        errors: TextIO | None = None,
    ) -> None:
        self.surface = surface
        self.host = host
        self.port = port
        self._errors = errors if errors is not None else sys.stderr
        self._server: BlockingOSCUDPServer | None = None
        self._thread: threading.Thread | None = None
        self.handled = 0  # messages carried out, and refused: what a sender can wait on
        self.refused = 0
        self._handlers: dict[str, Callable[[list[Any]], None]] = {
            a.address: getattr(self, a.handler) for a in OSC_ADDRESSES
        }

    def start(self) -> OscServer:
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._dispatch)
        try:
            self._server = BlockingOSCUDPServer((self.host, self.port), dispatcher)
        except OSError as err:
            raise DeviceError(f"--osc: cannot listen on {self.host}:{self.port} ({err})") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="osc-server", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._server.server_close()

    def __enter__(self) -> OscServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _dispatch(self, address: str, *args: Any) -> None:
        try:
            self.carry_out(address, list(args))
        except GansynthError as err:
            self.refused += 1
            print(f"osc: {address}: {err}", file=self._errors, flush=True)
        else:
            self.handled += 1

    def carry_out(self, address: str, args: list[Any]) -> None:
        """One OSC message; a PresetError naming what is wrong if it cannot be carried out."""
        if address not in self._handlers:
            raise PresetError(f"unknown address (known: {' '.join(self._handlers)})")
        self._handlers[address](args)

    def _focus(self) -> int:
        return self.surface.player.engine.focus

    def _midi(self, message: list[int]) -> None:
        """``message`` with the focus channel in its status byte, checked as the page's are."""
        self.surface.act({"midi": [message[0] | self._focus(), *message[1:]]})

    # -- one handler per address of OSC_ADDRESSES, named after it ----------------------------

    def _on_note(self, args: list[Any]) -> None:
        pitch, velocity = _ints(args, 2, "PITCH VELOCITY")
        self._midi([NOTE_ON if velocity else NOTE_OFF, pitch, velocity])

    def _on_cc(self, args: list[Any]) -> None:
        self._midi([CONTROL_CHANGE, *_ints(args, 2, "NUMBER VALUE")])

    def _on_program(self, args: list[Any]) -> None:
        self._midi([PROGRAM_CHANGE, *_ints(args, 1, "NUMBER")])

    def _on_midi(self, args: list[Any]) -> None:
        self.surface.act({"midi": [_integral(v) for v in args]})

    def _on_knob(self, args: list[Any]) -> None:
        ccs = self.surface.knob_ccs
        if len(args) != 2 or type(args[0]) is not int or not 1 <= args[0] <= len(ccs):
            if not ccs:
                raise PresetError("this player has no timbre knobs")
            raise PresetError(f"expects N VALUE with N 1..{len(ccs)}, got {_shown(args)}")
        self._controls([ccs[args[0] - 1]], args[1:], "N VALUE")

    def _on_pad(self, args: list[Any]) -> None:
        if not self.surface.pad_ccs:
            raise PresetError("the bank has no XY pad")
        self._controls(list(self.surface.pad_ccs), args, "X Y")

    def _on_morph(self, args: list[Any]) -> None:
        cc = self.surface.player.engine.morph_cc
        if cc is None:
            raise PresetError("the bank has no morph path")
        self._controls([cc], args, "VALUE")

    def _controls(self, ccs: list[int], args: list[Any], names: str) -> None:
        """Set each of ``ccs`` to its 0..1 value in ``args`` (``names``, for the error line: the
        address itself comes from the table, through ``_dispatch``)."""
        if len(args) != len(ccs) or not all(_unit(v) for v in args):
            raise PresetError(f"expects {names}, each value 0..1, got {_shown(args)}")
        for cc, value in zip(ccs, args, strict=True):
            self._midi([CONTROL_CHANGE, cc, round(float(value) * DATA_MAX)])

    def _button(self, cc: int | None, name: str) -> None:
        if cc is None:
            raise PresetError(f"the {name} button is turned off in this bank")
        self._midi([CONTROL_CHANGE, cc, DATA_MAX])
        self._midi([CONTROL_CHANGE, cc, 0])

    def _on_preset(self, args: list[Any]) -> None:
        self.surface.select(_one_name(args))

    def _on_random(self, args: list[Any]) -> None:
        self._button(self.surface.player.engine.random_cc, "random")

    def _on_save(self, args: list[Any]) -> None:
        if args:
            self.surface.save(_one_name(args))
        else:
            self._button(self.surface.player.engine.save_cc, "save")

    def _on_latent(self, args: list[Any]) -> None:
        self.surface.act({"latent": args})


def _integral(value: Any) -> Any:
    """An integral float as an int (some senders, TouchOSC's faders, send only floats)."""
    return int(value) if type(value) is float and value.is_integer() else value


def _ints(args: list[Any], count: int, names: str) -> list[int]:
    """``count`` integer arguments, each 0-127."""
    values = [_integral(v) for v in args]
    if len(values) != count or not all(type(v) is int and 0 <= v <= DATA_MAX for v in values):
        raise PresetError(f"expects {names}, each 0..{DATA_MAX}, got {_shown(args)}")
    return values


def _unit(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and 0.0 <= value <= 1.0


def _one_name(args: list[Any]) -> str:
    if len(args) != 1 or not isinstance(args[0], str):
        raise PresetError(f"expects one NAME, got {_shown(args)}")
    return args[0]


def _shown(args: list[Any]) -> str:
    return " ".join(repr(a) for a in args) if args else "nothing"
