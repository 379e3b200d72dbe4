"""Live play: a model, its note cache, the engine, an audio stream and MIDI inputs, wired together.

Processes and threads, and what each may touch:
- The audio process (``audio_process.py``) holds the audio stream and the ``Mixer``; its
  PortAudio callback is its only busy thread, so nothing else waits for its GIL. ``Voices``
  sends it commands through ``Player.audio`` (an ``AudioProcess``).
- rtmidi's thread (and the typing keyboard) call ``Player.handle`` → ``Engine.handle`` under a
  control-side lock, which the status view takes too; the audio thread never takes it.
- The note cache's renderer thread runs the model (``renderer="thread"``), or hands it to a worker
  process and only files the notes it sends back (``"process"``); the engine only asks for notes.
- The main thread shows the status line until Ctrl-C, then closes MIDI, audio and cache. It also
  saves a controller bound by MIDI learn into the bank file (``Player.save_learned``): file I/O
  stays off the MIDI thread, which only records the binding under the lock.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import math
import os
import select
import sys
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gansynth_instrument.audio import STALL_S, StreamStats, find_output
from gansynth_instrument.audio_process import AudioProcess
from gansynth_instrument.cache import DEFAULT_MAX_MEMORY_BYTES, mib_to_bytes
from gansynth_instrument.channels import DEFAULT_BEND_RANGE_SEMITONES
from gansynth_instrument.disk_store import DEFAULT_CACHE_DIR
from gansynth_instrument.engine import DEFAULT_VELOCITY_EXPONENT, EngineStatus
from gansynth_instrument.errors import DeviceError, GansynthError
from gansynth_instrument.instrument import assemble
from gansynth_instrument.memory import keep_freed_memory, no_huge_pages
from gansynth_instrument.midi import DEFAULT_VIRTUAL_PORT, MidiInput

if TYPE_CHECKING:
    import argparse

    from gansynth_instrument.make import NoteModel
    from gansynth_instrument.presets import Bank, Preset

DEFAULT_POLYPHONY = 32
MIXER_CHUNK_FRAMES = 1024  # the Mixer splits longer blocks; PortAudio asks for block_frames
STATUS_PERIOD_S = 0.25
MIDI_CHECK_PERIOD_S = 1.0  # how often named MIDI inputs are checked for unplug/replug
# With the mixer in its own process both renderers give as many xruns (bench_live --compare 3:
# 6, 7, 6 against 5, 4, 8); the process keeps the audio callback's worst block lower (44-61 %
# of the period against 82-104 %) and the model's memory out of the player.
DEFAULT_RENDERER = "process"
KEY_HOLD_S = 0.4  # a typed note's length: terminals report presses, not releases
# MIDI ports are looked up (a JACK server request) only right after a callback: a frozen server
# would block the lookup, and with it the status loop that notices the stall.
PORT_CHECK_MAX_SILENCE_S = 0.05
_ABANDONED: list[object] = []  # JACK clients left open because their server hung (see close())


@dataclass(frozen=True)
class LiveStatus:
    """What the status line shows."""

    engine: EngineStatus
    stream: StreamStats
    voices_sounding: int  # as the audio callback counted them in its last block
    polyphony: int


class Player:
    """Everything one live session holds. ``start()`` (or ``with``) opens the cache renderer,
    the audio stream and the MIDI inputs, in that order; ``close()`` undoes it in reverse.

    ``midi_in`` names ports to open; with none, a virtual port ``virtual_midi`` appears for other
    programs to connect to. ``channels`` (0-15) filters input; None hears every channel.
    ``drums`` plays channel 10 (General MIDI percussion; default: the bank's, else not played).
    ``timing_blocks``: how many recent callbacks the stream's timing statistics cover.
    ``renderer``: where the cache renders notes, "thread" or "process" (see DEFAULT_RENDERER).
    ``learn``: the next controller moved drives the morph; ``save_learned`` writes it into the
    bank (a shipped bank as a user copy in ``presets_dir``, default the user presets dir).
    """

    def __init__(
        self,
        model: NoteModel,
        *,
        preset: Preset | None = None,
        bank: Bank | None = None,
        sample_rate: int = 48000,
        block_frames: int = 128,
        device: str | int | None = None,
        midi_in: Sequence[str] = (),
        virtual_midi: str = DEFAULT_VIRTUAL_PORT,
        channels: Collection[int] | None = None,
        drums: Preset | None = None,
        polyphony: int = DEFAULT_POLYPHONY,
        cache_dir: Path | None = DEFAULT_CACHE_DIR,
        bend_range_semitones: float = DEFAULT_BEND_RANGE_SEMITONES,
        velocity_exponent: float = DEFAULT_VELOCITY_EXPONENT,
        learn: bool = False,
        timing_blocks: int = 4096,
        renderer: str = DEFAULT_RENDERER,
        max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
        presets_dir: Path | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.bank = bank
        self._presets_dir = presets_dir
        self.block_frames = block_frames
        self._midi_in = tuple(midi_in)
        self._virtual_midi = virtual_midi
        self.audio = AudioProcess(
            note_frames=math.ceil(model.audio_length * sample_rate / model.sample_rate) + 1,
            sample_rate=sample_rate,
            block_frames=block_frames,
            device=device,
            polyphony=polyphony,
            max_block_frames=MIXER_CHUNK_FRAMES,
            timing_blocks=timing_blocks,
        )
        instrument = assemble(
            model,
            self.audio,
            preset=preset,
            bank=bank,
            cache_dir=cache_dir,
            renderer=renderer,
            max_memory_bytes=max_memory_bytes,
            channels=channels,
            drums=drums,
            bend_range_semitones=bend_range_semitones,
            velocity_exponent=velocity_exponent,
        )
        self.cache = instrument.cache
        self.engine = instrument.engine
        if learn:
            self.engine.learn()
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self._started = False
        self.midi: MidiInput | None = None

    def handle(self, msg: Sequence[int]) -> None:
        """One MIDI message from any source (rtmidi's thread, the typing keyboard)."""
        with self._lock:
            self.engine.handle(msg)

    def save_learned(self) -> str | None:
        """Save a controller MIDI learn bound since the last call into the bank file (call from
        the main thread: the lock is held only to take the number); the line to show, or None."""
        with self._lock:
            cc = self.engine.take_learned()
        if cc is None:
            return None
        from gansynth_instrument.presets import save_morph_cc

        assert self.bank is not None  # a morph, hence something learned, needs a bank
        try:
            path = save_morph_cc(self.bank, cc, user_dir=self._presets_dir)
        except GansynthError as err:
            return f"morph bound to CC{cc}, not saved: {err}"
        return f"morph bound to CC{cc}, saved in {path}"

    def start(self) -> Player:
        """Render the current timbre in the background, then open audio and MIDI."""
        keep_freed_memory()  # no munmap of arriving notes: less kernel time beside the audio
        no_huge_pages()  # before the renderer and audio processes start: they inherit it
        with contextlib.ExitStack() as stack:
            self.cache.start()
            stack.callback(self.cache.close)
            with self._lock:
                self.engine.prefetch()
            self.audio.open()
            stack.callback(self.audio.close)
            self.audio.start()
            stack.callback(self.audio.stop)
            self.midi = MidiInput(self.handle, ports=self._midi_in, virtual=self._virtual_midi)
            stack.callback(self._close_midi)
            # What exists now (model, sessions, modules) lives all session. A full garbage
            # collection walking it took 74 ms here (90k objects), and it runs in whichever
            # thread allocates next, the audio callback included; frozen, it takes ~0 ms.
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
        with self._lock:
            engine = self.engine.status()
        if not self._started:
            raise GansynthError("the player is not started")
        return LiveStatus(
            engine, self.audio.stats(), self.audio.voices_active, self.audio.polyphony
        )


def _exit_without_finalising() -> None:
    """The last step of an exit after a hung JACK server: flush output, then end the process
    before Python frees the JACK clients (each would wait for the server forever)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def status_line(status: LiveStatus) -> str:
    """One line: timbre, morph, cache fill, voices, xruns, latency (see the issue's live view)."""
    e, s = status.engine, status.stream
    parts = [f"preset {e.timbre}"]
    if e.morph_position is not None:
        parts.append(f"morph {e.morph_position:.2f}")
    elif e.morph_cc is not None:
        parts.append(f"morph CC{e.morph_cc}")
    fill = " ".join(f"{name} {c}/{r}" for name, (c, r) in e.cache_fill.items() if r)
    parts.append(f"cache {fill or 'empty'}")
    parts.append(f"voices {status.voices_sounding}/{status.polyphony}")
    parts.append(f"xruns {s.xruns}")
    parts.append(f"latency {1e3 * max(s.latency_s, s.dac_latency_s):.1f} ms")
    parts.append(f"callback {100 * s.callback_median_load:.0f}%")
    if e.dropped_commands:
        parts.append(f"dropped {e.dropped_commands}")
    return " | ".join(parts)


# Semitones above the keyboard's base pitch: white keys on the home row, black keys above them.
KEY_SEMITONES: dict[str, int] = dict(
    zip(
        "asdfghjkl;'wetyuop",
        (0, 2, 4, 5, 7, 9, 11, 12, 14, 16, 17, 1, 3, 6, 8, 10, 13, 15),
        strict=True,
    )
)


class TypingKeyboard:
    """A computer keyboard as a MIDI keyboard, for players without one (DAW-style layout).

    ``a s d f g h j k l ; '`` are white keys from C, ``w e  t y u  o p`` the black keys between;
    ``z``/``x`` shift an octave, ``c``/``v`` velocity, ``-``/``=`` move the morph, space toggles
    the sustain pedal. Terminals report presses only, so the caller releases each note
    ``hold_s`` later (``press`` returns the pitch to release).
    """

    HELP = "keys: a-' notes, w-p sharps, z/x octave, c/v velocity, -/= morph, space pedal"

    def __init__(self, *, base_pitch: int = 60, velocity: int = 100, morph_cc: int | None = 1):
        self.base_pitch = base_pitch
        self.velocity = velocity
        self.morph_cc = morph_cc
        self.morph_value = 0
        self.pedal = False

    def press(self, char: str) -> tuple[list[list[int]], int | None]:
        """(MIDI messages to send now, pitch to release ``hold_s`` later or None)."""
        offset = KEY_SEMITONES.get(char)
        if offset is not None:
            pitch = self.base_pitch + offset
            if 0 <= pitch <= 127:
                return [[0x90, pitch, self.velocity]], pitch
            return [], None
        if char in "zx":
            self.base_pitch = min(108, max(12, self.base_pitch + (12 if char == "x" else -12)))
        elif char in "cv":
            self.velocity = min(127, max(1, self.velocity + (16 if char == "v" else -16)))
        elif char in "-=" and self.morph_cc is not None:
            self.morph_value = min(127, max(0, self.morph_value + (16 if char == "=" else -16)))
            return [[0xB0, self.morph_cc, self.morph_value]], None
        elif char == " ":
            self.pedal = not self.pedal
            return [[0xB0, 64, 127 if self.pedal else 0]], None
        return [], None


def live_render_threads() -> int:
    """The note renderer's CPU threads in live play: every core but one, which stays free for the
    JACK server and the audio callback. On the 2-core machine (bench_live, full-size model, cache
    filling) a silent client beside the renderer got 9 xruns with 2 threads, 0 and 1 with one;
    a cold note then takes about twice as long (preset switch 0.7-0.8 s → 1.3-1.5 s)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


def run_play(args: argparse.Namespace) -> int:
    """``gansynth-instrument play``: open everything, show the status line until Ctrl-C."""
    from gansynth_instrument.channels import parse_channels
    from gansynth_instrument.model import load_model_from_options
    from gansynth_instrument.presets import find_bank, find_preset

    channels = None if args.channel is None else parse_channels("--channel", args.channel)
    checks = (
        (args.polyphony >= 1, "--polyphony must be at least 1", args.polyphony),
        (args.blocksize >= 1, "--blocksize must be at least 1 frame", args.blocksize),
        (args.sample_rate > 0, "--sample-rate must be above 0 Hz", args.sample_rate),
        (args.velocity_curve > 0, "--velocity-curve must be above 0", args.velocity_curve),
        (0 <= args.bend_range <= 48, "--bend-range must be 0..48 semitones", args.bend_range),
    )
    for ok, rule, value in checks:
        if not ok:
            raise GansynthError(f"{rule}, got {value}")
    if args.keys and not sys.stdin.isatty():
        raise GansynthError("--keys needs a terminal to read key presses from")
    preset = find_preset(args.preset) if args.preset else None
    bank = find_bank(args.bank) if args.bank else None
    if preset is None and bank is None:
        bank = find_bank("default")
    if args.learn and (bank is None or not bank.morph_path):
        what = f"bank '{bank.name}' has no morph path" if bank else "a single preset has no morph"
        raise GansynthError(
            f"--learn binds a knob to the morph, and {what}: play a bank with a morph path "
            "(--bank NAME, or no --preset for the default bank)"
        )
    find_output(args.device)  # no audio output → one line suggesting 'render', before the model
    if args.threads is None:
        args.threads = live_render_threads()
    model = load_model_from_options(args)
    player = Player(
        model,
        preset=preset,
        bank=bank,
        sample_rate=args.sample_rate,
        block_frames=args.blocksize,
        device=args.device,
        midi_in=args.midi_in or (),
        virtual_midi=args.virtual_midi or DEFAULT_VIRTUAL_PORT,
        channels=channels,
        drums=find_preset(args.drums) if args.drums else None,
        polyphony=args.polyphony,
        cache_dir=args.cache_dir or DEFAULT_CACHE_DIR,
        bend_range_semitones=args.bend_range,
        velocity_exponent=args.velocity_curve,
        learn=args.learn,
        renderer=args.renderer or DEFAULT_RENDERER,
        max_memory_bytes=mib_to_bytes(args.max_memory_mb, DEFAULT_MAX_MEMORY_BYTES),
    )
    keyboard = TypingKeyboard(morph_cc=player.engine.morph_cc) if args.keys else None
    with player:
        _print_header(player, model.path)
        if keyboard is not None:
            print(TypingKeyboard.HELP)
        try:
            with _cbreak(keyboard is not None):
                _status_loop(player, keyboard)
        except KeyboardInterrupt:
            print(file=sys.stderr)
        learned = player.save_learned()  # bound after the status loop last looked
        if learned is not None:
            print(learned)
    return 0


def _print_header(player: Player, model_path: Any) -> None:
    assert player.midi is not None
    out = player.audio.device
    print(f"model   {model_path}")
    print(
        f"audio   {out.name} ({out.host_api}), {player.sample_rate} Hz, "
        f"{player.block_frames} frames, reported latency {1e3 * player.audio.latency_s:.1f} ms"
    )
    listen = sorted(player.engine.listen)
    chosen = (
        "all channels" if len(listen) == 16 else f"channels {','.join(str(c + 1) for c in listen)}"
    )
    drums = player.engine.drums.name if player.engine.drums is not None else "not played"
    print(f"MIDI    {', '.join(player.midi.port_names)} via {player.midi.api}, {chosen}")
    print(f"drums   channel 10: {drums}")
    if player.engine.learning:
        print("learn   move a knob (or the mod wheel) to bind it to the morph")
    print("Ctrl-C to stop.")


@contextlib.contextmanager
def _cbreak(enabled: bool) -> Iterator[None]:
    """Key presses arrive one by one, unechoed (the terminal is restored after)."""
    if not enabled:
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(sys.stdin)
    try:
        tty.setcbreak(sys.stdin)
        yield
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)


def _status_loop(player: Player, keyboard: TypingKeyboard | None = None) -> None:
    """Redraw the status line in place on a terminal (else print it every few seconds); with a
    typing keyboard, play its key presses in between."""
    tty = sys.stdout.isatty()
    last_print = last_midi_check = 0.0
    while True:
        assert player.midi is not None
        if not player.audio.active:
            raise DeviceError("the audio stream stopped (device gone, or JACK shut down)")
        if player.audio.stalled:
            raise DeviceError(
                f"the audio stream stalled: no callback for {STALL_S:g} s "
                "(the JACK server or the audio driver hung)"
            )
        line = status_line(player.status())
        learned = player.save_learned()
        if learned is not None:
            print("\r" + learned + "\x1b[K" if tty else learned, flush=True)
        now = time.monotonic()
        healthy = player.audio.seconds_since_callback < PORT_CHECK_MAX_SILENCE_S
        if healthy and now - last_midi_check >= MIDI_CHECK_PERIOD_S:
            last_midi_check = now
            for change in player.midi.check_ports():
                print("\r" + change + "\x1b[K" if tty else change, flush=True)
        if tty:
            print("\r" + line + "\x1b[K", end="", flush=True)
        elif now - last_print >= 5.0:
            print(line, flush=True)
            last_print = now
        if keyboard is None:
            time.sleep(STATUS_PERIOD_S)
        elif select.select([sys.stdin], [], [], STATUS_PERIOD_S)[0]:
            # os.read, not sys.stdin.read: Python's buffer would hide keys from select.
            for char in os.read(sys.stdin.fileno(), 64).decode(errors="ignore"):
                messages, release = keyboard.press(char)
                for msg in messages:
                    player.handle(msg)
                if release is not None:
                    off = threading.Timer(KEY_HOLD_S, player.handle, args=([0x80, release, 0],))
                    off.daemon = True
                    off.start()
