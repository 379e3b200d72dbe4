"""``gansynth-instrument play``: the instrument live, with a status line until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import select
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

from gansynth_instrument.commands import (
    load_model_from_args,
    model_info_from_args,
    sounds_from_args,
)
from gansynth_instrument.errors import DeviceError, GansynthError
from gansynth_instrument.live.audio import STALL_S, check_block_frames, find_output
from gansynth_instrument.live.channels import parse_channels
from gansynth_instrument.live.config import CacheConfig, EngineConfig
from gansynth_instrument.live.midi import DEFAULT_VIRTUAL_PORT
from gansynth_instrument.live.player import (
    DEFAULT_RENDERER,
    LiveStatus,
    PlayConfig,
    Player,
    live_render_threads,
)
from gansynth_instrument.live.stream_meters import StreamStats
from gansynth_instrument.midi_spec import note_off
from gansynth_instrument.model.knob_qualities import knob_summary
from gansynth_instrument.notes.cache import DEFAULT_MAX_MEMORY_BYTES, mib_to_bytes
from gansynth_instrument.notes.disk_store import DEFAULT_CACHE_DIR
from gansynth_instrument.notes.levels import velocity_exponent
from gansynth_instrument.presets.ganspace import knob_directions
from gansynth_instrument.presets.knobs import KNOB_CCS
from gansynth_instrument.surfaces.keyboard import TypingKeyboard

STATUS_PERIOD_S = 0.25
SHORT_NAME = 12  # the status line shortens a preset name to this before it drops voices or xruns
MIDI_CHECK_PERIOD_S = 1.0  # how often named MIDI inputs are checked for unplug/replug
KEY_HOLD_S = 0.4  # a typed note's length: terminals report presses, not releases
# MIDI ports are looked up (a JACK server request) only right after a callback: a frozen server
# would block the lookup, and with it the status loop that notices the stall.
PORT_CHECK_MAX_SILENCE_S = 0.05


def play_config(args: argparse.Namespace) -> PlayConfig:
    """Live play's settings from the arguments: each checked once as its config is made, before
    any file, model or device opens (a one-line error naming the option)."""
    channels = None if args.channel is None else parse_channels("--channel", args.channel)
    return PlayConfig(
        engine=EngineConfig(
            channels=channels,
            bend_range_semitones=args.bend_range,
            velocity_exponent=velocity_exponent(args.velocity_curve),
        ),
        cache=CacheConfig(
            args.cache_dir or DEFAULT_CACHE_DIR,
            args.renderer or DEFAULT_RENDERER,
            mib_to_bytes(args.max_memory_mb, DEFAULT_MAX_MEMORY_BYTES),
        ),
        sample_rate=args.sample_rate,
        block_frames=args.blocksize,
        device=args.device,
        midi_in=tuple(args.midi_in or ()),
        virtual_midi=args.virtual_midi or DEFAULT_VIRTUAL_PORT,
        polyphony=args.polyphony,
        gain_db=args.gain_db,
        knobs=not args.no_knobs,
        learn=args.learn,
        learn_knob=None if args.learn_knob is None else args.learn_knob - 1,
        mpe=args.mpe,
    )


def run(args: argparse.Namespace) -> int:
    """Open everything, show the status line until Ctrl-C."""
    config = play_config(args)
    if args.keys and not sys.stdin.isatty():
        raise GansynthError("--keys needs a terminal to read key presses from")
    if args.ui:
        check_ui(args.ui_host, args.ui_port)  # a missing extra is one line before the model loads
    if args.osc is not None:
        check_osc(args.osc_host, args.osc)
    single = args.preset and not args.bank  # known before the model's file is read
    sounds = sounds_from_args(args, None if args.learn and single else model_info_from_args(args))
    config.check_sounds(sounds)
    # No audio output → one line suggesting 'render'; a block size JACK cannot serve → one line
    # with its period; both before the model loads.
    check_block_frames(find_output(config.device), config.block_frames)
    if args.threads is None:
        args.threads = live_render_threads()
    # Each step can take seconds (the knobs' first time, 15 s): one bar names the step.
    with tqdm(
        total=3, leave=False, bar_format="starting: {desc} [{n}/{total}, {elapsed}]"
    ) as starting:
        starting.set_description_str("the model")
        model = load_model_from_args(args)
        starting.update()
        starting.set_description_str("timbre knobs")
        knobs = None
        if config.knobs:
            assert config.cache.cache_dir is not None  # the CLI always has a cache folder
            knobs = knob_directions(model, cache_dir=config.cache.cache_dir / "knobs")
        starting.update()
        starting.set_description_str("audio and MIDI")
        player = Player(model, sounds, config, knobs=knobs)
        player.start()
    keyboard = TypingKeyboard(morph_cc=player.engine.morph_cc) if args.keys else None
    with contextlib.closing(player), contextlib.ExitStack() as stack:
        # From here on Ctrl-C is the way to stop: also one that lands as "Ctrl-C to stop." is
        # printed, before the status loop has begun.
        try:
            if args.ui:
                stack.enter_context(
                    serve_ui(player, args.ui_host, args.ui_port, not args.no_browser)
                )
            if args.osc is not None:
                stack.enter_context(serve_osc(player, args.osc_host, args.osc))
            _print_header(player, model.path)
            if keyboard is not None:
                print(TypingKeyboard.HELP)
            with _cbreak(keyboard is not None):
                _status_loop(player, keyboard)
        except KeyboardInterrupt:
            print(file=sys.stderr)
        audio = player.audio
        print(
            session_summary(
                audio.stats(), audio.sample_rate, audio.block_frames, audio.limited_frames
            )
        )
        # bound or saved after the status loop last looked
        for news in (player.save_learned(), player.learned_knob(), player.save_found()):
            if news is not None:
                print(news)
    return 0


def check_ui(host: str, port: int) -> None:
    """``--ui`` needs the ``ui`` extra and a port number; one line each, before anything opens."""
    _check_server(
        "--ui",
        "--ui-port",
        host,
        port,
        "aiohttp",
        "the browser extra: pip install 'gansynth-instrument[ui]' (aiohttp)",
        "the control page (anyone with its URL, token included, can play and save presets)",
    )


def check_osc(host: str, port: int) -> None:
    """``--osc`` needs the ``osc`` extra and a port number; one line each, before anything
    opens."""
    _check_server(
        "--osc",
        "--osc",
        host,
        port,
        "pythonosc",
        "the OSC extra: pip install 'gansynth-instrument[osc]' (python-osc)",
        "the OSC port (anyone who can send to it can play and save presets; OSC has no token)",
    )


def _check_server(
    flag: str, port_flag: str, host: str, port: int, module: str, extra: str, what: str
) -> None:
    """The checks ``check_ui`` and ``check_osc`` share: the port, the extra, the host."""
    if not 0 <= port <= 65535:
        raise GansynthError(f"{port_flag} must be 0..65535 (0: a free port), got {port}")
    try:
        importlib.import_module(module)
    except ImportError:
        raise GansynthError(f"{flag} needs {extra}") from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: {flag}-host {host}: {what} is reachable from other machines",
            file=sys.stderr,
        )


@contextlib.contextmanager
def serve_ui(player: Player, host: str, port: int, browser: bool) -> Iterator[None]:
    """The browser control surface for the session (``ui_server``); its URL is printed."""
    from gansynth_instrument.surfaces.ui_server import UiServer
    from gansynth_instrument.surfaces.ui_surface import Surface

    with UiServer(Surface(player), host=host, port=port) as server:
        print(f"ui      {server.url}", flush=True)
        if browser:
            import webbrowser

            webbrowser.open(server.url)
        yield


@contextlib.contextmanager
def serve_osc(player: Player, host: str, port: int) -> Iterator[None]:
    """The OSC controls for the session (``osc_server``); the address is printed."""
    from gansynth_instrument.surfaces.osc_server import OscServer
    from gansynth_instrument.surfaces.ui_surface import Surface

    with OscServer(Surface(player), host=host, port=port) as server:
        print(f"osc     {server.host}:{server.port} (udp)", flush=True)
        yield


def _print_header(player: Player, model_path: Any) -> None:
    assert player.midi is not None
    out = player.audio.device
    print(f"model   {model_path}")
    deadline = time.monotonic() + STALL_S  # the output latency is measured in a callback
    while player.audio.stats().callbacks == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stream = player.audio.stats()
    print(
        f"audio   {out.name} ({out.host_api}), {player.sample_rate} Hz, "
        f"{player.block_frames} frames, output latency {latency_text(stream.output_latency_s)} "
        "(note→sound on the status line, measured as you play)"
    )
    listen = ",".join(str(c + 1) for c in sorted(player.engine.listen))
    chosen = "all channels" if len(player.engine.listen) == 16 else f"channels {listen}"
    print(f"MIDI    {', '.join(player.midi.port_names)} via {player.midi.api}, {chosen}")
    print(f"drums   channel 10: {player.engine.drums_summary()}")
    if player.engine.learning:
        print("learn   move a knob (or the mod wheel) to bind it")
    engine = player.engine
    if engine.space is not None and engine.space.knobs is not None:
        ccs = player.bank.knob_ccs if player.bank is not None else KNOB_CCS
        print(f"knobs   {', '.join(f'CC{cc}' for cc in ccs)} (64 = unchanged)")
        if engine.space.knobs.qualities:
            print(f"        {knob_summary(engine.space.knobs.qualities)}")
    if engine.space is not None and engine.space.corners:
        assert player.bank is not None
        x, y = player.bank.pad_ccs
        print(f"pad     CC{x} (x) and CC{y} (y) over {', '.join(player.bank.pad_corners)}")
    print(f"buttons CC{engine.random_cc} random timbre, CC{engine.save_cc} save it as a preset")
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
            raise DeviceError(
                player.audio.ended or "the audio stream stopped (device gone, or JACK shut down)"
            )
        if player.audio.stalled:
            raise DeviceError(
                f"the audio stream stalled: no callback for {STALL_S:g} s "
                "(the JACK server or the audio driver hung)"
            )
        line = status_line(player.status(), shutil.get_terminal_size().columns)
        for news in (player.save_learned(), player.learned_knob(), player.save_found()):
            if news is not None:
                print("\r" + news + "\x1b[K" if tty else news, flush=True)
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
                    off = threading.Timer(KEY_HOLD_S, player.handle, args=(note_off(release),))
                    off.daemon = True
                    off.start()


def latency_text(seconds: float | None) -> str:
    """A latency as every view shows it: milliseconds to 0.1, or "-" before it is measured."""
    return "-" if seconds is None else f"{1e3 * seconds:.1f} ms"


def session_summary(
    stats: StreamStats, sample_rate: int, block_frames: int, limited_frames: int
) -> str:
    """The line play ends with: how long the stream ran, the share of it the master limiter
    turned down (a safety net, rarely on: ``levels.py``) and the xruns."""
    frames = stats.callbacks * block_frames
    share = 100 * limited_frames / frames if frames else 0.0
    minutes, seconds = divmod(frames / sample_rate, 60)
    return (
        f"played  {int(minutes)}:{seconds:04.1f}, limiter on {share:.2f} % of frames, "
        f"{stats.xruns} xruns"
    )


def status_line(status: LiveStatus, width: int = 80) -> str:
    """One line of at most ``width - 1`` columns (a terminal wraps a line that reaches its last
    column): preset, morph, cache fill of the current timbre (and how many others are loading),
    voices, xruns, note → sound latency (measured, ``LiveStatus.note_to_sound_s``), the stream's
    output latency, callback load. Where it does not fit, the least needed parts go first (output
    latency, callback, note → sound, morph, the other timbres), then the preset name is shortened,
    then xruns, voices and cache go."""
    e, s = status.engine, status.stream
    ready, requested = e.cache_fill.get(e.timbre, (0, 0))
    loading = sum(1 for n, (c, r) in e.cache_fill.items() if n != e.timbre and c < r)
    # (text, rank): parts of the lowest rank are dropped first.
    parts: list[tuple[str, int]] = [(f"preset {e.timbre}", 9)]
    if e.morph_position is not None:
        parts.append((f"morph {e.morph_position:.2f}", 3))
    elif e.morph_cc is not None:
        parts.append((f"morph CC{e.morph_cc}", 3))
    parts.append((f"cache {ready}/{requested}" if requested else "cache -", 8))
    if loading:
        parts.append((f"+{loading} loading", 4))
    parts.append((f"voices {status.voices_sounding}/{status.polyphony}", 7))
    parts.append((f"xruns {s.xruns}", 6))
    parts.append((f"note→sound {latency_text(status.note_to_sound_s)}", 2))
    parts.append((f"output latency {latency_text(s.output_latency_s)}", 0))
    parts.append((f"callback {100 * s.callback_median_load:.0f}%", 1))
    if e.dropped_commands:
        parts.append((f"dropped {e.dropped_commands}", 9))
    room = max(1, width - 1)

    def fit(parts: list[tuple[str, int]], name: str, below: int) -> tuple[list, str]:
        """Drop parts ranked below ``below`` (least needed first), then shorten the name."""

        def line() -> str:
            return " | ".join([f"preset {name}", *(t for t, _ in parts[1:])])

        while len(line()) > room and any(r < below for _, r in parts):
            parts.remove(min(parts, key=lambda part: part[1]))
        excess = len(line()) - room
        if excess > 0 and len(name) > SHORT_NAME:
            name = name[: max(SHORT_NAME, len(name) - excess) - 1] + "…"
        return parts, name

    parts, name = fit(parts, e.timbre, below=6)  # morph, latencies, callback go first
    parts, name = fit(parts, name, below=9)  # then xruns, voices, cache
    return " | ".join([f"preset {name}", *(t for t, _ in parts[1:])])[:room]
