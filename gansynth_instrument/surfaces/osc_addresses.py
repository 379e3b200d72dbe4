"""The OSC address table (``play --osc``): each address the OSC server answers, its arguments and
what it does.

The server's dispatch (``osc_server.OscServer``: ``/note`` is carried out by its ``_on_note``),
``play --help`` and the docs' table (``docs/hooks/reference.py``) are all made from this table, so
a new address is one row here and one handler there. Plain data: the CLI reads it without
python-osc.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OscAddress:
    """One OSC address; ``arguments`` and ``does`` as the docs' table shows them."""

    address: str
    arguments: str
    does: str

    @property
    def handler(self) -> str:
        """The name of the ``OscServer`` method that carries it out: ``/note`` → ``_on_note``."""
        return "_on_" + self.address.removeprefix("/")


OSC_ADDRESSES: tuple[OscAddress, ...] = (
    OscAddress("/note", "pitch, velocity (0–127; velocity 0: note off)", "a note on or off"),
    OscAddress("/cc", "number, value (0–127)", "a control change"),
    OscAddress("/program", "number (0–127)", "a program change"),
    OscAddress("/midi", "1–3 bytes", "any note, controller or program change message"),
    OscAddress("/knob", "n (1–8), value 0–1 (0.5: centre)", "turns timbre knob n"),
    OscAddress("/pad", "x, y (each 0–1)", "moves in the bank's XY pad"),
    OscAddress("/morph", "value 0–1", "the morph position"),
    OscAddress("/preset", "name", "plays a preset (one of the bank by its program change)"),
    OscAddress("/random", "", "a fresh random timbre"),
    OscAddress("/save", "[name]", "saves what plays as your preset (no name: a generated one)"),
    OscAddress("/latent", "one number per latent dimension (256)", "plays a latent you made"),
)
