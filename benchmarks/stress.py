"""Stress and soak harness: a MIDI flood, then a long mixed-play session, on a JACK dummy server.

    python benchmarks/stress.py --model MODEL.onnx            # 60 s flood + 10 min soak
    python benchmarks/stress.py --model MODEL.onnx --short    # CI form: 10 s flood + 20 s soak

Runs the real ``play`` path in this process (``Player``: note cache + engine + PortAudio stream on
a private JACK dummy server at 48 kHz / 128 frames + a JACK MIDI virtual port) with the shipped
default bank and an empty disk cache, so the cache renders all along. MIDI comes from another
process (an rtmidi JACK MIDI output), as a keyboard's would: its Python does not compete for this
process's GIL.

1. Flood: ``--flood-rate`` (1000) events/s on all 16 channels: note-ons/offs, CCs (pedal, morph,
   channel modes), pitch bend, program changes (known and unknown), aftertouch, running-status
   data bytes, sysex and clock. Program changes start renders of every program's notes.
2. Soak: mixed play on channel 1: chords every 250 ms, a program change every 6 s, a morph knob
   sweep every 10 s, bend wiggles, the sustain pedal.

Two baselines show what the machine alone causes: a silent PortAudio client (another process,
nothing else on the server) for as long as the flood (at most ``SILENT_MAX_S``), before the player
starts and again after it stops; then the player idle for ``IDLE_S``, nothing played. Xruns are
server-wide events on JACK, so the silent client runs while no other client plays.

Prints, per phase: stream xruns (PortAudio's underflow flags) and jackd's XRun lines, callback
time median/max, max voices sounding, MIDI events sent, commands dropped (the voice queue was
full), MIDI handler errors, log records at WARNING and ERROR, CPU time the host stole from this
virtual machine (``jackrig.stolen_s``); then resident memory (RSS) at the
start, after the flood, mid-soak and at the end, against the bytes the note cache holds. ``--json``
also writes these figures (tests/test_stress.py asserts on them). Timing figures depend on the
machine: say whether it was shared.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import rtmidi

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the live-test rig: JACK server, MIDI sender


from jackrig import JackServer, silent_client_xruns, stolen_s  # noqa: E402

from gansynth_instrument.live.config import CacheConfig, Sounds  # noqa: E402
from gansynth_instrument.live.midi import CLIENT_NAME  # noqa: E402
from gansynth_instrument.live.player import (  # noqa: E402
    DEFAULT_RENDERER,
    PlayConfig,
    Player,
    live_render_threads,
)
from gansynth_instrument.model.runtime import load_model  # noqa: E402
from gansynth_instrument.notes.timbre import Timbre  # noqa: E402
from gansynth_instrument.presets.bank_files import find_bank  # noqa: E402

RATE = 48000
BLOCK = 128
SHORT = (10.0, 20.0)  # flood, soak seconds
LONG = (60.0, 600.0)
SILENT_MAX_S = 30.0  # each silent-client baseline lasts as long as the flood, at most this
IDLE_S = 5.0  # a quiet baseline first: xruns the machine causes with nothing played
FLOOD_RATE_HZ = 1000
PHASE_GRACE_S = 60.0  # a phase that overruns its length by this much counts as a hang
WARM_WAIT_S = 600.0
MIB = 1024**2


# --- what the other process sends ---------------------------------------------------------------


def flood_message(rng: np.random.Generator) -> list[int]:
    """One random event of the flood mix (every kind a controller or a bad cable can send)."""
    ch = int(rng.integers(16))
    kind = rng.choice(
        ["on", "off", "cc", "bend", "program", "running", "sysex", "pressure", "clock"],
        p=[0.3, 0.25, 0.15, 0.1, 0.04, 0.05, 0.03, 0.05, 0.03],
    )
    pitch, value = int(rng.integers(128)), int(rng.integers(128))
    if kind == "on":
        return [0x90 | ch, pitch, int(rng.integers(1, 128))]
    if kind == "off":  # half as note-off, half as the note-on-velocity-0 idiom
        return [0x80 | ch, pitch, value] if rng.random() < 0.5 else [0x90 | ch, pitch, 0]
    if kind == "cc":
        cc = int(rng.choice([1, 1, 7, 11, 64, 64, 74, 120, 121, 123, int(rng.integers(120))]))
        return [0xB0 | ch, cc, value]
    if kind == "bend":
        return [0xE0 | ch, int(rng.integers(128)), int(rng.integers(128))]
    if kind == "program":
        return [0xC0 | ch, int(rng.choice([0, 1, 4, 9, 14, 19, 24, 33, int(rng.integers(128))]))]
    if kind == "running":  # data bytes alone: running status, as a DIN cable carries it
        return [pitch, value]
    if kind == "sysex":
        return [0xF0, 0x7E, 0x7F, 0x09, 0x01, 0xF7]  # GM system on
    if kind == "pressure":
        return [0xD0 | ch, value] if rng.random() < 0.5 else [0xA0 | ch, pitch, value]
    return [0xF8]


def soak_script(
    rng: np.random.Generator, soak_s: float, programs: list[int]
) -> list[tuple[float, list[int]]]:
    """Mixed play on channel 1 as (seconds, message), sorted: see the module docstring."""
    script: list[tuple[float, list[int]]] = []
    scale = [p for p in range(48, 85) if p % 12 in (0, 2, 4, 5, 7, 9, 11)]
    for start in np.arange(0.1, soak_s - 2.0, 0.25):
        for pitch in rng.choice(scale, size=int(rng.integers(1, 4)), replace=False):
            hold_s = float(rng.uniform(0.2, 1.5))
            script.append((start, [0x90, int(pitch), int(rng.integers(50, 121))]))
            script.append((start + hold_s, [0x80, int(pitch), 0]))
    for i, at in enumerate(np.arange(1.0, soak_s - 2.0, 6.0)):
        script.append((at, [0xC0, programs[i % len(programs)]]))
    for at in np.arange(3.0, soak_s - 5.0, 10.0):  # knob sweep up and back over 4 s at 50 Hz
        for k, value in enumerate(np.linspace(0, 127, 100)):
            script.append((at + k * 0.02, [0xB0, 1, round(value)]))
        for k, value in enumerate(np.linspace(127, 0, 100)):
            script.append((at + 2.0 + k * 0.02, [0xB0, 1, round(value)]))
    for at in np.arange(1.5, soak_s - 1.0, 2.0):  # bend wiggle, back to centre
        for k, semis in enumerate(np.sin(np.linspace(0, 2 * np.pi, 20))):
            bend = round(8192 + semis * 4000)
            script.append((at + k * 0.02, [0xE0, bend & 0x7F, bend >> 7]))
        script.append((at + 0.42, [0xE0, 0x00, 0x40]))
    for at in np.arange(4.0, soak_s - 1.0, 8.0):
        script += [(at, [0xB0, 64, 127]), (at + 3.0, [0xB0, 64, 0])]
    return sorted(script, key=lambda item: item[0])


def _play_flood(out: rtmidi.MidiOut, seconds: float, rate_hz: int, seed: int) -> int:
    """Send ``rate_hz`` events/s for ``seconds``, paced every millisecond; returns the count."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate_hz)
        while sent < due:
            out.send_message(flood_message(rng))
            sent += 1
        time.sleep(0.001)
    return sent


def _play_script(out: rtmidi.MidiOut, script: list[tuple[float, list[int]]], seconds: float) -> int:
    start = time.perf_counter()
    for at_s, msg in script:
        time.sleep(max(0.0, start + at_s - time.perf_counter()))
        out.send_message(msg)
    time.sleep(max(0.0, start + seconds - time.perf_counter()))
    return len(script)


def sender_process(
    conn: Connection,
    port_pattern: str,
    flood_s: float,
    flood_rate_hz: int,
    soak_s: float,
    programs: list[int],
) -> None:
    """The other process: connect to the player's port, then play both phases when told to,
    reporting each phase's end (and event count) through ``conn``.

    rtmidi's JACK output runs no Python in JACK's cycle (it queues through a JACK ring buffer),
    so on a ``--sync`` server this client cannot hold up the cycle, as a keyboard would not.
    """
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="stress-keys")
    try:
        ports = [i for i, name in enumerate(out.get_ports()) if re.search(port_pattern, name)]
        if len(ports) != 1:
            raise RuntimeError(f"expected one port matching {port_pattern!r}: {out.get_ports()}")
        out.open_port(ports[0])
        time.sleep(0.2)  # JACK applies the connection between cycles
        conn.send(("ready", 0))
        conn.recv()
        conn.send(("flood", _play_flood(out, flood_s, flood_rate_hz, seed=1)))
        script = soak_script(np.random.default_rng(2), soak_s, programs)
        conn.send(("soak", _play_script(out, script, soak_s)))
        time.sleep(0.05)  # let JACK deliver the last events before the client goes
    finally:
        out.close_port()
        out.delete()


# --- measuring this process ------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


class LogCounter(logging.Handler):
    """Counts log records by level, keeping the first few messages of each level."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1
        examples = self.examples.setdefault(record.levelname, [])
        if len(examples) < 3:
            examples.append(record.getMessage())


def take_voices_peak(player: Player) -> int:
    """The most voices the audio thread mixed in one block since the last call (then from 0).

    Read off the mixer, not sampled by a thread: a polling thread in this process would compete
    with the audio callback for the GIL, as nothing in ``play`` does."""
    peak, player.audio.voices_peak = player.audio.voices_peak, 0
    return peak


def bank_timbres(player: Player) -> list[Timbre]:
    """Every timbre the bank can play (programs and morph steps), each once."""
    engine = player.engine
    timbres = {t.key: t for t in [engine.timbre, *engine.programs.values(), *engine.morph]}
    return list(timbres.values())


def cache_bytes(player: Player, pitches: tuple[int, ...]) -> int:
    """Bytes of note samples the cache holds in memory for the bank's timbres."""
    total = 0
    for timbre in bank_timbres(player):
        for pitch in pitches:
            note = player.cache.lookup(timbre.key, pitch)
            total += 0 if note is None else note.pcm.nbytes
    return total


@dataclass
class Phase:
    """One phase's figures."""

    name: str
    seconds: float
    events_sent: int
    callbacks: int
    xruns: int
    jackd_xrun_lines: int
    callback_median_ms: float
    callback_max_ms: float
    block_period_ms: float
    max_voices: int
    commands_dropped: int
    ignored_messages: int
    midi_handler_errors: int
    warnings_logged: int
    errors_logged: int
    stolen_ms: float  # CPU time the hypervisor gave to other guests (all cores; 0 off Linux)


@dataclass
class Report:
    """Everything the harness measured (``--json`` writes it)."""

    silent_before: tuple[int, int]  # (callbacks, xruns) of the silent client before the player
    silent_after: tuple[int, int]  # ... and after it closed
    idle: Phase
    flood: Phase
    soak: Phase
    rss_start_mib: float
    rss_after_flood_mib: float
    rss_mid_soak_mib: float
    rss_end_mib: float
    cache_start_mib: float
    cache_after_flood_mib: float
    cache_mid_soak_mib: float
    cache_end_mib: float
    cache_cap_mib: float  # the note cache's in-memory cap (NoteCache.max_memory_bytes)
    stream_active_at_end: bool
    polyphony: int
    machine: str
    log_examples: dict[str, list[str]]
    jackd_messages: list[str]  # the server's last lines other than xruns (e.g. a client dropped)

    @property
    def silent_xrun_fraction(self) -> float:
        """Xruns per callback of the silent client (both runs): the machine's own floor."""
        callbacks = self.silent_before[0] + self.silent_after[0]
        return (self.silent_before[1] + self.silent_after[1]) / max(callbacks, 1)

    @property
    def soak_growth_beyond_cache_mib(self) -> float:
        """RSS growth over the soak that the note cache's own growth does not explain."""
        rss = self.rss_end_mib - self.rss_after_flood_mib
        return rss - (self.cache_end_mib - self.cache_after_flood_mib)


def jackd_xruns(server: JackServer) -> int:
    return sum("xrun" in line.lower() for line in server.log_tail(1_000_000).splitlines())


def jackd_messages(server: JackServer, lines: int = 10) -> list[str]:
    log = server.log_tail(1_000_000).splitlines()
    return [line for line in log if "xrun" not in line.lower()][-lines:]


class Meter:
    """Reads a phase's figures off the running player: counters are differences from ``mark``."""

    def __init__(self, player: Player, server: JackServer, logs: LogCounter) -> None:
        self.player, self.server, self.logs = player, server, logs
        self._midi_errors = 0
        self.mark()

    def _counts(self) -> dict[str, int]:
        assert self.player.audio is not None and self.player.midi is not None
        status = self.player.status().engine
        return {
            "callbacks": self.player.audio.stats().callbacks,
            "xruns": self.player.audio.stats().xruns,
            "jackd": jackd_xruns(self.server),
            "dropped": status.dropped_commands,
            "ignored": status.ignored_messages,
            "midi_errors": self.player.midi.handler_errors,
            "warnings": self.logs.counts["WARNING"],
            "errors": self.logs.counts["ERROR"] + self.logs.counts["CRITICAL"],
        }

    def mark(self) -> None:
        self._start = self._counts()
        self._start_s = time.perf_counter()
        self._stolen_s = stolen_s()

    def phase(self, name: str, events_sent: int, max_voices: int) -> Phase:
        assert self.player.audio is not None
        now = self._counts()
        diff = {k: now[k] - self._start[k] for k in now}
        stats = self.player.audio.stats(since=self._start["callbacks"])
        phase = Phase(
            name=name,
            seconds=time.perf_counter() - self._start_s,
            events_sent=events_sent,
            callbacks=diff["callbacks"],
            xruns=diff["xruns"],
            jackd_xrun_lines=diff["jackd"],
            callback_median_ms=1e3 * stats.callback_median_s,
            callback_max_ms=1e3 * stats.callback_max_s,
            block_period_ms=1e3 * stats.block_period_s,
            max_voices=max_voices,
            commands_dropped=diff["dropped"],
            ignored_messages=diff["ignored"],
            midi_handler_errors=diff["midi_errors"],
            warnings_logged=diff["warnings"],
            errors_logged=diff["errors"],
            stolen_ms=1e3 * (stolen_s() - self._stolen_s),
        )
        self.mark()
        return phase


@contextmanager
def counting_logs() -> Iterator[LogCounter]:
    """Count (and keep quiet) log records: a flood of unknown programs warns once per program."""
    root = logging.getLogger()
    counter, level = LogCounter(), root.level
    root.addHandler(counter)
    root.setLevel(logging.WARNING)
    try:
        yield counter
    finally:
        root.removeHandler(counter)
        root.setLevel(level)


def _receive(conn: Connection, expected: str, timeout_s: float) -> int:
    if not conn.poll(timeout_s):
        raise RuntimeError(f"the MIDI sender did not finish its {expected} phase in {timeout_s} s")
    what, count = conn.recv()
    if what != expected:
        raise RuntimeError(f"the MIDI sender said {what!r}, expected {expected!r}")
    return int(count)


def run(
    model_path: Path,
    flood_s: float,
    soak_s: float,
    cache_dir: Path,
    flood_rate_hz: int = FLOOD_RATE_HZ,
    *,
    preload: bool = False,
    renderer: str = DEFAULT_RENDERER,
    realtime: bool = True,
) -> Report:
    """Start a private JACK server and a player, run both phases, return the figures."""
    model = load_model(model_path, threads=live_render_threads())  # as play
    bank = find_bank("default", model=model.info)
    port = f"stress-{uuid.uuid4().hex[:6]}"
    blocks = int((max(flood_s, soak_s) + PHASE_GRACE_S) * RATE / BLOCK)
    spawn = multiprocessing.get_context("spawn")
    with (
        JackServer(sample_rate=RATE, period_frames=BLOCK, realtime=realtime, sync=True) as server,
        counting_logs() as logs,
    ):
        silent_s = min(flood_s, SILENT_MAX_S)
        silent_before = silent_client_xruns(silent_s, RATE, BLOCK)
        config = PlayConfig(
            cache=CacheConfig(cache_dir, renderer),
            sample_rate=RATE,
            block_frames=BLOCK,
            virtual_midi=port,
            timing_blocks=blocks,
        )
        player = Player(model, Sounds(bank=bank), config)
        with player:
            for timbre in bank_timbres(player) if preload else [player.engine.timbre]:
                player.cache.request(timbre.latent, model.pitches)
                if not player.cache.wait(timbre.key, model.pitches, WARM_WAIT_S):
                    raise RuntimeError(f"{timbre.name} did not render in {WARM_WAIT_S} s")
            conn, child_conn = spawn.Pipe()
            programs = sorted(player.engine.programs)
            pattern = f"{CLIENT_NAME}.*:{port}"
            sender = spawn.Process(
                target=sender_process,
                args=(child_conn, pattern, flood_s, flood_rate_hz, soak_s, programs),
                daemon=True,
            )
            sender.start()
            try:
                _receive(conn, "ready", 60.0)
                meter = Meter(player, server, logs)
                rss_start, cache_start = rss_bytes(), cache_bytes(player, model.pitches)
                take_voices_peak(player)  # from here on
                time.sleep(IDLE_S)
                idle = meter.phase("idle", 0, take_voices_peak(player))
                conn.send("go")
                meter.mark()
                sent = _receive(conn, "flood", flood_s + PHASE_GRACE_S)
                flood = meter.phase("flood", sent, take_voices_peak(player))
                rss_flood, cache_flood = rss_bytes(), cache_bytes(player, model.pitches)
                time.sleep(soak_s / 2)
                rss_mid, cache_mid = rss_bytes(), cache_bytes(player, model.pitches)
                sent = _receive(conn, "soak", soak_s / 2 + PHASE_GRACE_S)
                soak = meter.phase("soak", sent, take_voices_peak(player))
                rss_end, cache_end = rss_bytes(), cache_bytes(player, model.pitches)
                assert player.audio is not None
                active = player.audio.active
                server_lines = jackd_messages(server)
            finally:
                sender.join(timeout=10)
                if sender.is_alive():
                    sender.kill()
            cap = player.cache.max_memory_bytes
        silent_after = silent_client_xruns(silent_s, RATE, BLOCK)
    return Report(
        silent_before=silent_before,
        silent_after=silent_after,
        idle=idle,
        flood=flood,
        soak=soak,
        rss_start_mib=rss_start / MIB,
        rss_after_flood_mib=rss_flood / MIB,
        rss_mid_soak_mib=rss_mid / MIB,
        rss_end_mib=rss_end / MIB,
        cache_start_mib=cache_start / MIB,
        cache_after_flood_mib=cache_flood / MIB,
        cache_mid_soak_mib=cache_mid / MIB,
        cache_end_mib=cache_end / MIB,
        cache_cap_mib=cap / MIB,
        stream_active_at_end=active,
        polyphony=player.audio.polyphony,
        machine=(
            f"renderer {renderer}; {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.2f}"
        ),
        log_examples=logs.examples,
        jackd_messages=server_lines,
    )


def print_report(report: Report) -> None:
    phases = (report.idle, report.flood, report.soak)
    rows = [
        ("seconds", "{:.1f}", "seconds"),
        ("MIDI events sent", "{}", "events_sent"),
        ("audio callbacks", "{}", "callbacks"),
        ("xruns (stream underflow flags)", "{}", "xruns"),
        ("xruns (jackd log lines)", "{}", "jackd_xrun_lines"),
        ("callback median ms", "{:.3f}", "callback_median_ms"),
        ("callback max ms", "{:.3f}", "callback_max_ms"),
        ("block period ms", "{:.3f}", "block_period_ms"),
        (f"max voices mixed (polyphony {report.polyphony})", "{}", "max_voices"),
        ("commands dropped (queue full)", "{}", "commands_dropped"),
        ("MIDI messages ignored", "{}", "ignored_messages"),
        ("MIDI handler errors", "{}", "midi_handler_errors"),
        ("log records WARNING", "{}", "warnings_logged"),
        ("log records ERROR", "{}", "errors_logged"),
        ("CPU time stolen by the host ms", "{:.0f}", "stolen_ms"),
    ]
    for when, (callbacks, xruns) in (
        ("before", report.silent_before),
        ("after", report.silent_after),
    ):
        print(f"silent client alone, {when} the player: {xruns} xruns in {callbacks} callbacks")
    print(f"{'':<34} " + " ".join(f"{p.name:>12}" for p in phases))
    for label, fmt, attr in rows:
        print(f"{label:<34} " + " ".join(f"{fmt.format(getattr(p, attr)):>12}" for p in phases))
    print()
    print(f"{'':<34} {'RSS MiB':>12} {'cache MiB':>12}")
    for label, rss, cache in (
        ("start (first preset cached)", report.rss_start_mib, report.cache_start_mib),
        ("after the flood", report.rss_after_flood_mib, report.cache_after_flood_mib),
        ("mid-soak", report.rss_mid_soak_mib, report.cache_mid_soak_mib),
        ("end", report.rss_end_mib, report.cache_end_mib),
    ):
        print(f"{label:<34} {rss:>12.1f} {cache:>12.1f}")
    print(f"{'note cache cap (max_memory_bytes)':<34} {'':>12} {report.cache_cap_mib:>12.1f}")
    print(f"soak RSS growth beyond the cache's: {report.soak_growth_beyond_cache_mib:.1f} MiB")
    print(f"stream still running at the end: {report.stream_active_at_end}")
    for level, examples in report.log_examples.items():
        print(f"first {level} records: " + " | ".join(examples))
    print("jackd said: " + " | ".join(report.jackd_messages))
    print(f"machine: {report.machine}; 48 kHz, {BLOCK} frames, JACK dummy driver")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="exported .onnx model")
    parser.add_argument("--short", action="store_true", help="CI form: 10 s flood + 20 s soak")
    parser.add_argument("--flood-s", type=float, help="flood seconds (default 60, short 10)")
    parser.add_argument("--soak-s", type=float, help="soak seconds (default 600, short 20)")
    parser.add_argument(
        "--flood-rate", type=int, default=FLOOD_RATE_HZ, help="flood events/s (default 1000)"
    )
    parser.add_argument("--cache-dir", type=Path, help="note cache dir (default: a fresh temp dir)")
    parser.add_argument(
        "--preload",
        action="store_true",
        help="cache the whole bank before playing (the renderer then idles: MIDI load alone)",
    )
    parser.add_argument(
        "--renderer", choices=["thread", "process"], default=DEFAULT_RENDERER, help="see play"
    )
    parser.add_argument("--no-realtime", action="store_true", help="jackd without -R")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    flood_s, soak_s = SHORT if args.short else LONG
    flood_s = args.flood_s or flood_s
    soak_s = args.soak_s or soak_s
    with tempfile.TemporaryDirectory(prefix="gsi-stress-") as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "notes"
        report = run(
            args.model,
            flood_s,
            soak_s,
            cache_dir,
            args.flood_rate,
            preload=args.preload,
            renderer=args.renderer,
            realtime=not args.no_realtime,
        )
    print_report(report)
    if args.json:
        data = asdict(report) | {
            "soak_growth_beyond_cache_mib": report.soak_growth_beyond_cache_mib,
            "silent_xrun_fraction": report.silent_xrun_fraction,
        }
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
