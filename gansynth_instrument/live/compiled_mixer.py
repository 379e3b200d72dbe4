"""The compiled mixer in this process, and the choice between it and the NumPy ``Mixer``.

``CompiledMixer`` offers what ``Voices`` and ``render`` use of a ``Mixer`` (``send``,
``pending``, ``take_finished``, ``layer_notes``, ``mix``, ``voices_active``, ``voices_peak``,
``frames_mixed``, ``master``), with the mixing done by the C core (``_mixcore.c``): one call per
block, commands through a ring of ``protocol.RECORD``s, waveforms attached to its note table
without a copy (``command_sender.py`` keeps the entries, and the core holds each attached
waveform until its entry is reused, so nothing it reads is freed). After each block its
``master.limiter`` takes the core limiter's gain and limited frames, so that they read as a
``Mixer``'s do.

``make_mixer`` returns it where the extension was built and loads, else the NumPy ``Mixer`` after
one notice line; ``MIXER_ENV`` set to 1 makes a missing core an error instead (CI proves the
compiled path is the one that runs).

Environment (the one place these are read; ``render``, live play's audio process and ``info``
all follow them):
- ``GANSYNTH_MIXER`` (``CHOICE_ENV``): ``numpy`` plays the NumPy ``Mixer`` even where the core
  is built (to compare the two, or to rule the core out); ``compiled`` or unset: the core where
  it loads.
- ``GANSYNTH_REQUIRE_COMPILED_MIXER`` (``MIXER_ENV``): ``1`` makes playing NumPy an error.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.live.command_sender import CommandSender, SenderLink
from gansynth_instrument.live.mixer import DEFAULT_GLIDE_S, MORPH_LAYERS, Mixer, voice_slots
from gansynth_instrument.live.protocol import ENDED_RING, STATUS_SIZE, Ring
from gansynth_instrument.notes.levels import MasterBus

MIXER_ENV = "GANSYNTH_REQUIRE_COMPILED_MIXER"
CHOICE_ENV = "GANSYNTH_MIXER"
CHOICES = ("compiled", "numpy")
RING_RECORDS = 8192  # > Voices' queue limit (4096 commands) plus their notes' load records
SPARE_ENTRIES = 48  # note entries beyond those the voices can hold at once


def load_core() -> tuple[Any | None, str]:
    """The ``_mixcore`` extension module to play, or None and why not: not built, or
    ``CHOICE_ENV`` chose the NumPy mixer."""
    choice = os.environ.get(CHOICE_ENV) or CHOICES[0]
    if choice not in CHOICES:
        raise GansynthError(f"{CHOICE_ENV}={choice!r}: use {' or '.join(CHOICES)}")
    if choice == "numpy":
        return None, f"{CHOICE_ENV}=numpy"
    return _import_core()


def _import_core() -> tuple[Any | None, str]:
    """The ``_mixcore`` extension module, or None and why it is not there."""
    try:
        from gansynth_instrument.live import _mixcore
    except ImportError as err:
        return None, str(err) or type(err).__name__
    return _mixcore, ""


def core_arguments(
    master: MasterBus | None, sample_rate: int, glide_frames: int | None
) -> dict[str, Any]:
    """The ``_mixcore.Core`` arguments that mirror a ``Mixer``'s glide and master bus."""
    if glide_frames is None:
        glide_frames = max(1, round(DEFAULT_GLIDE_S * sample_rate))
    if master is None:
        return {"glide_frames": float(glide_frames), "master_gain": None}
    limiter = master.limiter
    return {
        "glide_frames": float(glide_frames),
        "master_gain": float(master.gain),
        "limit": limiter.limit,
        "delay_frames": limiter.delay_frames,
        "release_per_frame": limiter.release_per_frame,
    }


class CompiledMixer(SenderLink):
    """A ``Mixer`` whose mixing is the compiled core's (see the module docstring)."""

    def __init__(
        self,
        sample_rate: int,
        *,
        polyphony: int = 32,
        channels: int = 2,
        max_block_frames: int = 1024,
        glide_frames: int | None = None,
        master: MasterBus | None = None,
        spare_entries: int = SPARE_ENTRIES,
    ) -> None:
        module, why = _import_core()
        if module is None:
            raise ImportError(f"the compiled mixer core is not built ({why})")
        if channels not in (1, 2):
            raise ValueError(f"the output is mono or stereo (channels 1 or 2), got {channels}")
        self.sample_rate = sample_rate
        self.polyphony = polyphony
        self.slots = voice_slots(polyphony)
        self.channels = channels
        self.master = master
        entries = MORPH_LAYERS * self.slots + spare_entries
        self._buffer = bytearray(Ring.size(RING_RECORDS))
        ring = Ring(self._buffer, RING_RECORDS)
        self._status = np.zeros(STATUS_SIZE)
        ended = np.zeros(ENDED_RING, dtype=np.int64)
        self._core = module.Core(
            self._buffer,
            self._status,
            ended,
            None,
            entries,
            0,
            sample_rate,
            self.slots,
            channels,
            max_block_frames,
            **core_arguments(master, sample_rate, glide_frames),
        )
        self._notes: list[Any] = [None] * entries  # the note each entry was stored from
        self._sender = CommandSender(ring, self._status, ended, entries, self._attach)

    def _attach(self, entry: int, note: Any) -> None:
        self._core.attach(entry, note.pcm)
        self._notes[entry] = note

    # -- control side: what Voices calls ------------------------------------------------------

    def layer_notes(self, slot: int) -> tuple[np.ndarray, ...]:
        """The waveforms the voice in ``slot`` holds, least recently named first: the entries
        the sender keeps for it (``mixer.layers_after`` of its commands, as the core does)."""
        return tuple(self._notes[entry].pcm for entry in self._sender.held(slot))

    # -- audio side ---------------------------------------------------------------------------

    def mix(self, out: np.ndarray, frames: int) -> None:
        """Fill ``out[:frames]`` ([frames, channels] float32): one call into the core."""
        core = self._core
        core.mix(out, frames)
        if self.master is not None:
            self.master.limiter.follow(core.limiter_gain, core.limited_frames)

    @property
    def frames_mixed(self) -> int:
        return self._core.frames_mixed


def make_mixer(
    sample_rate: int,
    *,
    polyphony: int = 32,
    channels: int = 2,
    max_block_frames: int = 1024,
    master: MasterBus | None = None,
) -> CompiledMixer | Mixer:
    """The compiled mixer where its core loads, else (or as ``CHOICE_ENV`` chooses) the NumPy
    ``Mixer`` with one notice line on stderr; with ``MIXER_ENV`` set to 1, that is an error."""
    module, why = load_core()
    mixer = CompiledMixer if module is not None else Mixer
    if module is None:
        numpy_notice(why)
    return mixer(
        sample_rate,
        polyphony=polyphony,
        channels=channels,
        max_block_frames=max_block_frames,
        master=master,
    )


def numpy_notice(why: str) -> None:
    """Say in one line that the NumPy mixer plays (``why``: the core did not load, or was not
    chosen); with ``MIXER_ENV`` set to 1, raise that as an error instead."""
    if os.environ.get(MIXER_ENV) == "1":
        raise GansynthError(f"compiled mixer unavailable ({why}) and {MIXER_ENV}=1")
    print(f"compiled mixer unavailable ({why}); using the numpy mixer", file=sys.stderr)


def mixer_in_use() -> str:
    """Which mixer ``make_mixer`` picks here, in words (for ``info``)."""
    module, why = load_core()
    return "compiled (C core)" if module is not None else f"numpy (compiled core: {why})"


__all__ = [
    "CHOICES",
    "CHOICE_ENV",
    "MIXER_ENV",
    "CompiledMixer",
    "core_arguments",
    "load_core",
    "make_mixer",
    "mixer_in_use",
]
