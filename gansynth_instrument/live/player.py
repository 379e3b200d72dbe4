"""Live play: the instrument (``instrument.assemble``), its audio process and MIDI inputs, started
and closed in order.

Processes and threads, and what each may touch:
- The audio process (``audio_process.py``) holds the audio stream and the ``Mixer``; its
  PortAudio callback is its only busy thread, so nothing else waits for its GIL. ``Voices``
  sends it commands through ``Player.audio`` (an ``AudioProcess``).
- The MIDI input's handler thread (``midi.py``: rtmidi's JACK thread only queues each message)
  and the typing keyboard call ``Player.handle`` → ``MpeInput.handle`` → ``Engine.handle`` under
  a control-side lock, which the status view takes too; the audio thread never takes it.
  rtmidi's JACK thread still takes this process's GIL to queue a message, so while playing the
  GIL changes hands every ``GIL_SWITCH_INTERVAL_S`` (CPython's default, 5 ms, is almost four
  64-frame periods, for which a thread running Python would keep that JACK cycle waiting).
- The note cache's thread makes notes itself (``renderer="thread"``), or hands the work to a
  worker process and only files the notes it sends back (``"process"``); the engine only asks.
- The main thread (``commands/play.py``) shows the status line until Ctrl-C, then closes MIDI,
  audio and cache. It also saves a controller bound by MIDI learn into the bank file
  (``Player.save_learned``, ``learned_knob``) and a timbre the save button kept
  (``Player.save_found``): file I/O stays off the MIDI thread, which only records them.
- The browser surface (``play --ui``: ``ui_server.py``, ``ui_surface.py``) runs an event loop
  on a thread of its own: page actions go through ``handle`` as MIDI bytes (or, for a timbre
  from outside the bank, ``with_engine``), and it reads the engine's state under the same lock.
- A "pending notes" thread starts note-ons that wait for a new timbre's first note as soon as
  that note is cached (``Engine.start_pending``, under the same lock).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.live.audio import check_block_range
from gansynth_instrument.live.audio_process import AudioProcess
from gansynth_instrument.live.channels import CHANNELS
from gansynth_instrument.live.config import (
    CacheConfig,
    EngineConfig,
    Sounds,
    check_master_gain,
    check_sample_rate,
)
from gansynth_instrument.live.engine import Engine, EngineStatus
from gansynth_instrument.live.instrument import assemble
from gansynth_instrument.live.midi import DEFAULT_VIRTUAL_PORT, MidiInput
from gansynth_instrument.live.mpe_input import MpeInput
from gansynth_instrument.live.stream_meters import StreamStats
from gansynth_instrument.memory import keep_freed_memory, no_huge_pages
from gansynth_instrument.midi_spec import CHANNEL_MASK, CONTROL_CHANGE, DATA_MAX, KIND_MASK
from gansynth_instrument.presets.explore import save_found
from gansynth_instrument.presets.ganspace import KNOB_COUNT, KnobDirections

if TYPE_CHECKING:
    from gansynth_instrument.notes.make import NoteModel

DEFAULT_POLYPHONY = 32
MIXER_CHUNK_FRAMES = 1024  # the Mixer splits longer blocks; PortAudio asks for block_frames
# A worker process keeps the model's work and memory out of the player's process, and with them
# the audio callback's worst blocks lower (``bench_live --compare`` prints both workers' figures).
DEFAULT_RENDERER = "process"
PENDING_POLL_S = 0.002  # how soon a waiting note-on starts once its note is cached
IDLE_POLL_S = 0.02  # the same thread's check when nothing waits
UNSET = 0xFF  # a controller no message has set (see Player.controllers)
NOTE_DELAYS = 32  # recent note-ons the note → sound figure is the median of
GIL_SWITCH_INTERVAL_S = 0.0005  # see the module docstring
T = TypeVar("T")
_ABANDONED: list[object] = []  # JACK clients left open because their server hung (see close())


@dataclass(frozen=True)
class LiveStatus:
    """What the status line shows."""

    engine: EngineStatus
    stream: StreamStats
    voices_sounding: int  # as the audio callback counted them in its last block
    polyphony: int
    # Note-on → sound, measured: the median over the last NOTE_DELAYS notes that started a voice
    # at once (their timbre's note was cached) of the time from the MIDI message reaching
    # ``Player.handle`` to the start of the audio block that played it, plus the stream's output
    # latency (block start → DAC). None until a note was measured.
    note_to_sound_s: float | None = None


@dataclass(frozen=True)
class PlayConfig:
    """Live play's settings, each checked once when made (``config.py``): the engine's and the
    note cache's, the audio output (rate, block size, device, polyphony, master gain), the MIDI
    inputs, MIDI learn, and whether the model's timbre knobs play (``knobs``).

    ``midi_in`` names ports to open; with none, a virtual port ``virtual_midi`` appears for other
    programs to connect to. ``timing_blocks``: how many recent callbacks the stream's timing
    statistics cover. ``learn``: the next controller moved drives the morph (``check_sounds``:
    it needs a bank with a morph path); ``learn_knob`` (0-based): the next controller moved turns
    that knob. A bound controller or a found timbre is saved in ``presets_dir`` (default: the user
    presets dir). ``mpe`` ("lower", "upper", "both") forces MPE zones (``mpe_input.py``); without
    it a zone follows the MPE Configuration Message.
    """

    engine: EngineConfig = field(default_factory=EngineConfig)
    cache: CacheConfig = field(default_factory=lambda: CacheConfig(renderer=DEFAULT_RENDERER))
    sample_rate: int = 48000
    block_frames: int = 128
    device: str | int | None = None
    midi_in: tuple[str, ...] = ()
    virtual_midi: str = DEFAULT_VIRTUAL_PORT
    polyphony: int = DEFAULT_POLYPHONY
    gain_db: float = 0.0
    knobs: bool = True
    learn: bool = False
    learn_knob: int | None = None
    timing_blocks: int = 4096
    presets_dir: Path | None = None
    mpe: str | None = None

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate)
        check_block_range(self.block_frames)
        if self.polyphony < 1:
            raise GansynthError(f"--polyphony must be at least 1, got {self.polyphony}")
        check_master_gain(self.gain_db)
        if self.learn_knob is not None and not 0 <= self.learn_knob < KNOB_COUNT:
            raise GansynthError(f"--learn-knob must be 1..{KNOB_COUNT}, got {self.learn_knob + 1}")
        if self.learn_knob is not None and not self.knobs:
            raise GansynthError("--learn-knob binds a timbre knob, and --no-knobs turns them off")

    def check_sounds(self, sounds: Sounds) -> None:
        """``learn`` binds a controller to the morph: ``sounds`` must have a bank with a morph
        path (a one-line error, before the model loads)."""
        bank = sounds.bank
        if self.learn and (bank is None or not bank.morph_path):
            what = "a single preset has no morph"
            if bank is not None:
                what = f"bank '{bank.name}' has no morph path"
            raise GansynthError(
                f"--learn binds a knob to the morph, and {what}: play a bank with a morph path "
                "(--bank NAME, or no --preset for the default bank)"
            )


class Player:
    """Everything one live session holds: ``sounds`` played with ``config``'s settings (see
    ``PlayConfig``). ``start()`` (or ``with``) opens the cache renderer, the audio stream and the
    MIDI inputs, in that order; ``close()`` undoes it in reverse. ``knobs``: the model's timbre
    knob directions (None: no knobs). ``save_found`` writes what the save button kept;
    ``save_learned`` and ``learned_knob`` what MIDI learn bound (a shipped bank as a user copy).
    """

    def __init__(
        self,
        model: NoteModel,
        sounds: Sounds,
        config: PlayConfig | None = None,
        *,
        knobs: KnobDirections | None = None,
    ) -> None:
        config = config or PlayConfig()
        self.config = config
        self.sample_rate = config.sample_rate
        self.preset_model = sounds.preset_model  # what a saved timbre is made for
        self.bank = sounds.bank
        self._presets_dir = config.presets_dir
        self.block_frames = config.block_frames
        self.audio = AudioProcess(
            note_frames=math.ceil(model.audio_length * config.sample_rate / model.sample_rate) + 1,
            sample_rate=config.sample_rate,
            block_frames=config.block_frames,
            device=config.device,
            polyphony=config.polyphony,
            max_block_frames=MIXER_CHUNK_FRAMES,
            timing_blocks=config.timing_blocks,
            gain_db=config.gain_db,
        )
        instrument = assemble(
            model, self.audio, sounds, cache=config.cache, engine=config.engine, knobs=knobs
        )
        self.cache = instrument.cache
        self.engine = instrument.engine
        self.mpe = MpeInput(self.engine, self.bank.mpe if self.bank else None, forced=config.mpe)
        if config.learn:
            self.engine.learn()
        if config.learn_knob is not None:
            self.engine.learn(knob=config.learn_knob)
        # Each channel's controllers as a message last set them (0-127; UNSET: none did yet), for
        # views to show; written by ``handle`` only, read without the lock.
        self.controllers = [bytearray([UNSET] * (DATA_MAX + 1)) for _ in range(CHANNELS)]
        self._lock = threading.Lock()
        # Note-ons that started a voice, (received, sent) on perf_counter, until status() finds
        # the block that played each; then the delay to that block's start.
        self._notes_sent: deque[tuple[float, float]] = deque(maxlen=NOTE_DELAYS)
        self._note_delays: deque[float] = deque(maxlen=NOTE_DELAYS)
        self._stop_pending = threading.Event()
        self._stack = contextlib.ExitStack()
        self._started = False
        self.midi: MidiInput | None = None

    def handle(self, msg: Sequence[int]) -> None:
        """One MIDI message from any source (rtmidi's thread, the typing keyboard, the browser
        surface); a controller's value is also kept in ``controllers`` for views to show."""
        received = time.perf_counter()
        if len(msg) == 3 and msg[0] & KIND_MASK == CONTROL_CHANGE and msg[1] <= DATA_MAX:
            self.controllers[msg[0] & CHANNEL_MASK][msg[1]] = msg[2] & DATA_MAX
        with self._lock:
            started = self.engine.voices.started
            self.mpe.handle(msg)
            if self.engine.voices.started != started:
                self._notes_sent.append((received, time.perf_counter()))

    def with_engine(self, action: Callable[[Engine], T]) -> T:
        """``action(engine)`` under the control-side lock: how a view reads the engine's state
        or calls it (the browser surface), as MIDI messages do."""
        with self._lock:
            return action(self.engine)

    def save_learned(self) -> str | None:
        """Save a controller MIDI learn bound since the last call into the bank file (call from
        the main thread: the lock is held only to take the number); the line to show, or None."""
        with self._lock:
            cc = self.engine.take_learned()
        if cc is None:
            return None
        from gansynth_instrument.presets.bank_files import save_morph_cc

        assert self.bank is not None  # a morph, hence something learned, needs a bank
        try:
            path = save_morph_cc(self.bank, cc, user_dir=self._presets_dir)
        except GansynthError as err:
            return f"morph bound to CC{cc}, not saved: {err}"
        return f"morph bound to CC{cc}, saved in {path}"

    def _start_pending(self) -> None:
        """Start note-ons that wait for a new timbre's first note as soon as it is cached (the
        engine's ``start_pending``): every ``PENDING_POLL_S`` while any wait."""
        while not self._stop_pending.wait(PENDING_POLL_S if self.engine.pending else IDLE_POLL_S):
            if self.engine.pending:
                with self._lock:
                    self.engine.start_pending()

    def learned_knob(self) -> str | None:
        """Save a knob bound by ``learn_knob`` since the last call into the bank file, as
        ``save_learned`` does (with a single preset it lasts the session); the line to show."""
        with self._lock:
            bound = self.engine.take_learned_knob()
        if bound is None:
            return None
        knob, cc = bound
        if self.bank is None:
            return f"knob {knob + 1} bound to CC{cc} (this session: a single preset has no bank)"
        from gansynth_instrument.presets.bank_files import save_knob_cc

        try:
            path = save_knob_cc(self.bank, knob, cc, user_dir=self._presets_dir)
        except GansynthError as err:
            return f"knob {knob + 1} bound to CC{cc}, not saved: {err}"
        return f"knob {knob + 1} bound to CC{cc}, saved in {path}"

    def save_found(self) -> str | None:
        """Write the timbre the save button kept since the last call as a new user preset (call
        from the main thread); the line to show (its name, or why it was not saved), or None."""
        with self._lock:
            timbre = self.engine.take_save()
        if timbre is None:
            return None
        try:  # the timbre's name says where it came from, knob offsets included
            preset, path = save_found(timbre, user_dir=self._presets_dir, model=self.preset_model)
        except GansynthError as err:
            return f"timbre not saved: {err}"
        return f"saved {preset.name} ({path})"

    def start(self) -> Player:
        """Render the current timbre in the background, then open audio and MIDI."""
        keep_freed_memory()  # no munmap of arriving notes: less kernel time beside the audio
        no_huge_pages()  # before the renderer and audio processes start: they inherit it
        with contextlib.ExitStack() as stack:
            self.cache.start()
            stack.callback(self.cache.close)
            with self._lock:
                self.engine.prefetch()
            stack.callback(sys.setswitchinterval, sys.getswitchinterval())
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
            self.audio.open()
            stack.callback(self.audio.close)
            self.audio.start()
            stack.callback(self.audio.stop)
            pending = threading.Thread(target=self._start_pending, name="pending", daemon=True)
            pending.start()
            stack.callback(pending.join)
            stack.callback(self._stop_pending.set)
            self.midi = MidiInput(
                self.handle, ports=self.config.midi_in, virtual=self.config.virtual_midi
            )
            stack.callback(self._close_midi)
            # What exists now (model, sessions, modules) lives all session. A full garbage
            # collection would walk all of it, in whichever thread allocates next; frozen, the
            # collector leaves it alone.
            gc.collect()
            gc.freeze()
            stack.callback(gc.unfreeze)
            self._stack = stack.pop_all()
        self._started = True
        return self

    def close(self) -> None:
        """Close MIDI first (no new notes), then the stream, then the cache renderer."""
        self._stack.close()

    def _close_midi(self) -> None:
        """Close the MIDI inputs, unless the audio stream stalled: then the JACK server hung, and
        closing a JACK client (now, or when it is freed at exit) would wait for it forever. Such
        clients are kept referenced and the process exits without finalising them."""
        assert self.midi is not None
        if not self.audio.stalled:
            self.midi.close()
            return
        if not _ABANDONED:
            atexit.register(_exit_without_finalising)
        _ABANDONED.append(self.midi)

    def __enter__(self) -> Player:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> LiveStatus:
        if not self._started:
            raise GansynthError("the player is not started")
        with self._lock:
            engine = self.engine.status()
        stream = self.audio.stats()
        return LiveStatus(
            engine,
            stream,
            self.audio.voices_active,
            self.audio.polyphony,
            self.note_to_sound_s(stream),
        )

    def note_to_sound_s(self, stream: StreamStats) -> float | None:
        """``LiveStatus.note_to_sound_s``, with ``stream``'s output latency (the views read the
        stream's figures once and show both)."""
        with self._lock:
            self._measure_notes()
            delays = sorted(self._note_delays)
        return delays[len(delays) // 2] + stream.output_latency_s if delays else None

    def _measure_notes(self) -> None:
        """Each note-on sent whose block has begun since: the delay from its MIDI message to
        that block's start (under the lock)."""
        while self._notes_sent:
            received, sent = self._notes_sent[0]
            start = self.audio.meters.first_start_after(sent)
            if start is None:
                return  # not played yet
            self._notes_sent.popleft()
            if not math.isnan(start):
                self._note_delays.append(start - received)


def _exit_without_finalising() -> None:
    """The last step of an exit after a hung JACK server: flush output, then end the process
    before Python frees the JACK clients (each would wait for the server forever)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def live_render_threads() -> int:
    """The note worker's CPU threads in live play: every core but one, which stays free for the
    JACK server and the audio callback (a cold note takes longer; ``bench_live.py`` measures
    both)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)
