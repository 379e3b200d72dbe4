"""A player of a user bank with the model's timbre knobs, on the JACK dummy server, with a MIDI
sender connected to it: what the control-surface tests (browser, OSC) drive and compare with;
and ``play`` as a command, its header read."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jackrig import MidiSender, midi_input_port

from gansynth_instrument.live.config import CacheConfig, Sounds
from gansynth_instrument.live.midi import CLIENT_NAME
from gansynth_instrument.live.player import DEFAULT_RENDERER, PlayConfig, Player
from gansynth_instrument.model.runtime import Model
from gansynth_instrument.presets.bank_files import find_bank
from gansynth_instrument.presets.ganspace import knob_directions

RATE = 48000
WAIT_S = 30.0  # only bounds a hang (a note rendering on the loaded machine)


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    """``check()``'s first true value, polled every 2 ms; an AssertionError naming ``what``
    after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def surface_rig(
    model: Model, root: Path, bank_yaml: str, preset_model: str | None = None
) -> Iterator[tuple[Player, MidiSender, Path]]:
    """The player (its saved timbres made for ``preset_model``), the sender, and the user presets
    folder (in ``root``/config) that holds the bank ``rig``."""
    # The presets folder's parent holds nothing else, so a test can check that nothing was
    # written beside it; the note cache, which fills in the background, lives apart.
    user_dir = root / "config" / "presets"
    (user_dir / "banks").mkdir(parents=True)
    (user_dir / "banks" / "rig.yaml").write_text(bank_yaml)
    port = f"rig-{uuid.uuid4().hex[:6]}"
    player = Player(
        model,
        Sounds(bank=find_bank("rig", user_dir=user_dir), preset_model=preset_model),
        PlayConfig(
            cache=CacheConfig(root / "notes", DEFAULT_RENDERER),
            sample_rate=RATE,
            virtual_midi=port,
            presets_dir=user_dir,
        ),
        knobs=knob_directions(model, cache_dir=root / "notes" / "knobs", progress=False),
    )
    with player, MidiSender() as sender:
        sender.connect(midi_input_port(sender.client, f"{CLIENT_NAME}.*:{port}"))
        yield player, sender, user_dir


def header_value(play: subprocess.Popen, label: str) -> str:
    """Read ``play``'s header up to "Ctrl-C to stop."; the value of its line ``label`` (e.g.
    ``ui``: the URL). A player that ends first is a failure with its stderr."""
    lines: list[str] = []
    while not lines or lines[-1] != "Ctrl-C to stop.\n":
        line = play.stdout.readline()
        if not line:
            raise AssertionError(play.stderr.read())
        lines.append(line)
    (value,) = [line.split()[1] for line in lines if line.split()[:1] == [label]]
    return value


def start_play(*options: str) -> subprocess.Popen:
    """``gansynth-instrument play`` with ``options``, its output read as text."""
    command = [sys.executable, "-m", "gansynth_instrument", "play", *options]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
