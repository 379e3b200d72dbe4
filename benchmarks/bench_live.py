"""Live-play latency and load on a JACK dummy server (48 kHz, 128 frames) while the cache fills.

    python benchmarks/bench_live.py --model MODEL.onnx [--notes 120] [--voices 32] [--no-realtime]
        [--renderer thread|process] [--compare ROUNDS] [--ui ROUNDS]
    python benchmarks/bench_live.py --model MODEL.onnx --floor [--floor-notes 40]
        [--blocks 128,64] [--hops] [--no-realtime]

Runs the real ``play`` path (Player: note cache + engine + JACK MIDI input in this process, the
mixer and PortAudio stream in its audio process) and measures it from outside with two other JACK
clients, as the live tests do: a MIDI sender and a recorder of PortAudio's output ports
(tests/jackrig.py). Times are wall clock (``perf_counter``) from the send call to the recorder's
process cycle that captured the sample.

Phases (the note cache keeps rendering every other preset of the default bank at BACKGROUND
priority all along, so the model competes with the audio for the 2 cores):
1. ``--voices`` quiet notes (velocity 1: inaudible, but mixed in full) sustain, retriggered before
   their 4 s end; ``--notes`` loud probe notes are sent 150 ms apart. Each probe's first sample is
   found by aligning the capture with the probe's own cached waveform (not by a threshold).
2. Knob → audible change: a held note, CC1 jumps along the morph path; the first captured sample
   that departs from the un-morphed note (predicted from the capture before the move).
3. Preset switch → first playable note: program change to a preset with nothing cached, until the
   played pitch's exact note is in the cache (before that it is silent: nothing to fall back on).

Callback time and xruns come from the stream itself (audio.py). Xruns are server-wide on JACK,
and this VM's kernel does not preempt, so other load causes them too: before the probes, a silent
PortAudio client runs alone on the server for as long (another process, writing zeros), and its
xruns are printed as the machine's own floor in this run; then once more beside the note renderer
kept as busy as in phase 1, the floor under that load; and once beside this benchmark's own rig
(recorder and MIDI sender: Python callbacks on JACK's real-time thread, as in phase 1). Print the
table; nothing is asserted (timings never go in tests).

``--compare ROUNDS`` runs phase 1 only, ROUNDS times with each renderer (note cache rendering in a
thread of this process vs in a worker process) and the silent client, interleaved (thread/process,
then process/thread, ...) so that load from other jobs on a shared machine falls on all; it prints
each run (with the 1-minute load average at its start) and the medians.

``--ui ROUNDS`` runs phase 1 only, ROUNDS times without and with the browser control surface
(``play --ui``: its server in the player, and its page open in a headless Chromium, meters
updating), interleaved the same way, and prints the same table: what the page costs the audio.

``--floor`` measures the instrument beside the floor, the least a Python PortAudio instrument
does on this rig, at each of ``--blocks`` (a fresh JACK server each, its period the block size):
a minimal instrument in another process (an rtmidi JACK virtual input whose callback appends
(pitch, on) to a deque; a sounddevice stream, latency "low", whose callback drains it and starts
or stops a sine with a 1 ms attack), then the player (a preset with a 1 ms attack), each sent the
same ``--floor-notes`` notes about 0.8 s apart after a warm-up. 0.8 s is a whole number of JACK
periods, so each note is offset by a share of 128 frames (a golden-ratio sequence): the notes
land at every phase of the cycle, and a run's median no longer depends on the one phase its
notes all shared (that alone moved a side's median by up to a period between runs). Latency runs
from the send call to the recorder's cycle of the first sample above −80 dBFS. It prints latency
median and max, xruns and callback time for both, and their ratios. ``--hops`` adds, per note-on,
the median and the maximum of each step of its way: to the sender's JACK cycle, to the MIDI
callback (``Player.handle``), to the note-on command sent to the audio process, to the start of the
audio callback that took it (the stream's meters), to the recorder's cycle of the onset.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import correlate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the live-test rig: JACK server, recorder, MIDI sender

from jackrig import (  # noqa: E402
    JackServer,
    MidiSender,
    Recorder,
    midi_input_port,
    silent_client_xruns,
    stolen_s,
)

from gansynth_instrument.live.config import CacheConfig, Sounds  # noqa: E402
from gansynth_instrument.live.midi import CLIENT_NAME  # noqa: E402
from gansynth_instrument.live.mixer import CMD_NOTE_ON  # noqa: E402
from gansynth_instrument.live.player import (  # noqa: E402
    DEFAULT_RENDERER,
    PlayConfig,
    Player,
    live_render_threads,
)
from gansynth_instrument.live.stream_meters import StreamStats  # noqa: E402
from gansynth_instrument.model.runtime import load_model  # noqa: E402
from gansynth_instrument.notes.cache import NoteCache  # noqa: E402
from gansynth_instrument.notes.note_queue import Priority  # noqa: E402
from gansynth_instrument.notes.note_workers import WORKERS  # noqa: E402
from gansynth_instrument.notes.timbre import Timbre  # noqa: E402
from gansynth_instrument.presets.bank_files import bank_preset, find_bank  # noqa: E402
from gansynth_instrument.presets.ganspace import KnobDirections  # noqa: E402
from gansynth_instrument.presets.preset import Preset  # noqa: E402

RATE = 48000
BLOCK = 128
WAIT_S = 3600.0
PROBE_SPACING_S = 0.15
PROBE_HOLD_S = 0.05
PROBE_PITCHES = (72, 74, 76, 77, 79)
QUIET_PITCHES_FROM = 36  # the quiet chord: --voices pitches upward from here
RETRIGGER_S = 3.0  # quiet notes are renewed before their 4 s end
ALIGN_S = 0.03  # waveform used to find a probe's first sample
# The probe preset: a short attack and release so probes neither blur nor overlap.
PROBE = Preset("bench-probe", seed=4242, latent=None, attack_s=0.001, release_s=0.02)


@dataclass(frozen=True)
class Capture:
    """What the measuring process sent and recorded (left channel, or [frames, 2] stereo)."""

    audio: np.ndarray
    cycle_wall_s: np.ndarray  # recorded cycle k = frames k * block_frames onwards
    block_frames: int
    sent_s: np.ndarray  # perf_counter at each scripted send
    written_s: np.ndarray  # perf_counter of the sender's JACK cycle that wrote each message

    def frame_at(self, wall_s: float) -> int:
        """First frame of the recorder cycle that ran at or after ``wall_s``."""
        cycles = len(self.audio) // self.block_frames
        k = int(np.searchsorted(self.cycle_wall_s[:cycles], wall_s))
        return min(k, cycles - 1) * self.block_frames

    def wall_s(self, frame: int) -> float:
        return float(self.cycle_wall_s[frame // self.block_frames])


def _measure(
    port: str | None,
    script: list[tuple[float, list[int]]],
    seconds: float,
    out: str,
    marks: tuple[EventType, EventType, EventType],
    stereo: bool = False,
) -> None:
    """In the measuring process: connect (to nothing when ``port`` is None), record, send the
    script on time, save the capture. ``marks``: set when recording starts, set when it has
    ended, and waited for before saving (see ``measure``)."""
    started, ended, may_save = marks
    with MidiSender() as sender:
        if port is not None:
            sender.connect(midi_input_port(sender.client, port))
        with Recorder(seconds=seconds) as recorder:
            started.set()
            start = time.perf_counter()
            sent = []
            for at_s, msg in script:
                time.sleep(max(0.0, start + at_s - time.perf_counter()))
                sent.append(sender.send(msg))
            audio = recorder.wait(timeout_s=seconds + 60)
            audio = (audio if stereo else audio[:, 0]).copy()
            walls = recorder.cycle_wall_s.copy()
        written = sender.written_s[-len(sent) :] if sent else []
    ended.set()
    may_save.wait()
    np.savez(out, audio=audio, walls=walls, block=recorder.block_frames, sent=sent, written=written)


def measure(
    port: str | None,
    script: list[tuple[float, list[int]]],
    seconds: float,
    on_start: Callable[[], None] = lambda: None,
    on_end: Callable[[], None] = lambda: None,
    stereo: bool = False,
) -> Capture:
    """Run ``script`` from a separate process (its JACK clients' Python callbacks must not take
    the player's GIL: a musician's keyboard and a recorder are other programs).

    ``on_start`` / ``on_end`` run here when the recording starts and ends: the window in which
    the instrument is measured. The measuring process's own start-up (imports, JACK clients)
    and its writing of the capture file lie outside it: ftrace showed that write (4 MB, one
    non-preemptible system call on this kernel) delaying JACK's real-time threads by 2-3 ms."""
    context = multiprocessing.get_context("spawn")
    marks = (context.Event(), context.Event(), context.Event())
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "capture.npz")
        child = context.Process(target=_measure, args=(port, script, seconds, out, marks, stereo))
        child.start()
        for mark, then in zip(marks[:2], (on_start, on_end), strict=True):
            while not mark.wait(0.1):
                if not child.is_alive():
                    raise RuntimeError(f"measuring process failed (exit {child.exitcode})")
            then()
        marks[2].set()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"measuring process failed (exit {child.exitcode})")
        data = np.load(out)
        return Capture(
            data["audio"], data["walls"], int(data["block"]), data["sent"], data["written"]
        )


def warm(player: Player, timbre: Timbre, pitches: list[int]) -> dict[int, np.ndarray]:
    player.cache.request(timbre.latent, pitches, Priority.WAITING)
    assert player.cache.wait(timbre.key, pitches, WAIT_S)
    return {p: player.cache.lookup(timbre.key, p).to_float() for p in pitches}


def keep_renderer_busy(cache: NoteCache, model) -> int:
    """Queue every pitch of every default-bank preset in the background."""
    bank = find_bank("default", model=model.info)
    names = sorted(set(bank.programs.values()) | set(bank.morph_path))
    for name in names:
        z = bank_preset(bank, name).latent_vector(model.latent_size)
        cache.request(z, model.pitches, Priority.BACKGROUND)
    return len(names) * len(model.pitches)


def onset(audio: np.ndarray) -> int:
    return int(np.flatnonzero(np.abs(audio) > 1e-6)[0])


def align(audio: np.ndarray, template: np.ndarray, lo: int, hi: int) -> int:
    """Frame in [lo, hi) where ``template`` starts in ``audio`` (normalised correlation)."""
    n = len(template)
    region = audio[lo : hi + n].astype(np.float64)
    dots = correlate(region, template, mode="valid", method="fft")
    energy = np.concatenate([[0.0], np.cumsum(region**2)])
    norms = np.sqrt(np.maximum(energy[n:] - energy[:-n], 1e-20))
    return lo + int(np.argmax(dots / norms))


def attack_envelope(attack_s: float) -> np.ndarray:
    """The first ``ALIGN_S`` of a voice's envelope (mixer.py: min(1, (f + 1) / attack frames))."""
    frames = np.arange(1, round(ALIGN_S * RATE) + 1)
    return np.minimum(1.0, frames / max(1, round(attack_s * RATE)))


def percent(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def new_player(
    model,
    args,
    cache_dir: Path,
    sounds: Sounds,
    *,
    renderer: str | None = None,
    knobs: KnobDirections | None = None,
    **settings: Any,
) -> tuple[Player, str]:
    """A player of ``sounds`` on a virtual MIDI port (``settings``: other ``PlayConfig``
    fields), and the port's name pattern for ``measure``."""
    port = f"bench-{uuid.uuid4().hex[:6]}"
    cache = CacheConfig(cache_dir, renderer or args.renderer)
    config = PlayConfig(cache=cache, virtual_midi=port, **settings)
    return Player(model, sounds, config, knobs=knobs), f"{CLIENT_NAME}.*:{port}"


@contextlib.contextmanager
def page_open(player: Player) -> Iterator[None]:
    """The browser control surface served by ``player`` and open in a headless Chromium (the
    test suite's browser), its WebSocket connected, so its meters update while measured."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from gansynth_instrument.surfaces.ui_server import UiServer
    from gansynth_instrument.surfaces.ui_surface import Surface

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1100"):
        options.add_argument(flag)
    with UiServer(Surface(player)) as server:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(server.url)
            deadline = time.monotonic() + 60
            while driver.find_element("id", "connection").text != "connected":
                if time.monotonic() > deadline:
                    raise RuntimeError("the control page did not connect within 60 s")
                time.sleep(0.1)
            yield
        finally:
            driver.quit()


def process_cpu_s(pid: int | None) -> float:
    """CPU time (user + system) process ``pid`` has used so far, from /proc; NaN if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_player(
    player: Player, port: str | None, script: list[tuple[float, list[int]]], seconds: float
) -> tuple[Capture, list[StreamStats]]:
    """``measure`` with the player's stream stats at the start and the end of the recording (the
    end's callback times over the recorded callbacks only)."""
    window: list[StreamStats] = []
    capture = measure(
        port,
        script,
        seconds,
        lambda: window.append(player.audio.stats()),
        lambda: window.append(player.audio.stats(since=window[0].callbacks)),
    )
    return capture, window


def phase_latency(
    model, args, cache_dir: Path, renderer: str | None = None, page: bool = False
) -> dict[str, object]:
    quiet = list(range(QUIET_PITCHES_FROM, QUIET_PITCHES_FROM + args.voices))
    probe_s = args.notes * PROBE_SPACING_S
    player, port = new_player(
        model,
        args,
        cache_dir,
        Sounds(PROBE),
        polyphony=args.voices + 8,
        # The stream's timing ring then holds the probe phase only (read right after it).
        timing_blocks=int(probe_s * RATE / BLOCK),
        renderer=renderer or args.renderer,
    )
    with player:
        notes = warm(player, player.engine.timbre, sorted(set(quiet) | set(PROBE_PITCHES)))
        if args.idle_renderer:  # the comparison: every note of the preset cached, nothing queued
            warm(player, player.engine.timbre, list(model.pitches))
            queued = 0
        else:
            queued = keep_renderer_busy(player.cache, model)
        stack = contextlib.ExitStack()
        if page:
            stack.enter_context(page_open(player))
        env = attack_envelope(PROBE.attack_s)
        templates = {p: env * notes[p][: len(env)] for p in PROBE_PITCHES}
        chord_s = 0.5  # the quiet chord starts, then the probes
        script = [(chord_s + 0.0, [0x90, q, 1]) for q in quiet]
        probes = []
        for i in range(args.notes):
            at_s = chord_s + 0.3 + i * PROBE_SPACING_S
            pitch = PROBE_PITCHES[i % len(PROBE_PITCHES)]
            probes.append((len(script), pitch))
            script += [(at_s, [0x90, pitch, 127]), (at_s + PROBE_HOLD_S, [0x80, pitch, 0])]
            if i and i % round(RETRIGGER_S / PROBE_SPACING_S) == 0:
                # A retrigger releases the old quiet voice and starts a new one.
                script += [(at_s + 2 * PROBE_HOLD_S, [0x90, q, 1]) for q in quiet]
        samples: list[tuple[float, int]] = []  # (time, voices the audio thread mixed)
        done = threading.Event()

        def sample_voices() -> None:
            while not done.wait(0.02):
                samples.append((time.perf_counter(), player.audio.voices_active))

        sampler = threading.Thread(target=sample_voices)
        sampler.start()
        # stream stats, stolen s, the audio process's CPU s, wall s
        window: dict[str, tuple[StreamStats, float, float, float]] = {}

        def mark(name: str) -> Callable[[], None]:
            def read() -> None:
                cpu_s = process_cpu_s(player.audio.pid)
                window[name] = (player.audio.stats(), stolen_s(), cpu_s, time.perf_counter())

            return read

        with stack:
            capture = measure(port, script, probe_phase_s(args), mark("before"), mark("after"))
        before, stolen_before_s, cpu_before_s, wall_before_s = window["before"]
        after, stolen_after_s, cpu_after_s, wall_after_s = window["after"]
        done.set()
        sampler.join()
    first_probe, last_probe = capture.sent_s[probes[0][0]], capture.sent_s[probes[-1][0]]
    voices = [n for t, n in samples if first_probe <= t <= last_probe]
    latencies = []
    for index, pitch in probes:
        sent_s = capture.sent_s[index]
        lo = max(capture.frame_at(sent_s) - BLOCK, 0)
        first = align(capture.audio, templates[pitch], lo, lo + round(0.03 * RATE))
        latencies.append(1e3 * (capture.wall_s(first) - sent_s))
    return {
        "latencies_ms": latencies,
        "xruns": after.xruns - before.xruns,
        "callback_median": after.callback_median_load,
        "callback_max": after.callback_max_load,
        "callbacks": after.callbacks - before.callbacks,
        "stolen_ms": 1e3 * (stolen_after_s - stolen_before_s),
        "audio_cpu": (cpu_after_s - cpu_before_s) / (wall_after_s - wall_before_s),
        "reported_latency_ms": 1e3 * after.latency_s,
        "queued": queued,
        "voices": min(voices),
    }


def phase_knob(model, args, cache_dir: Path) -> dict[str, object]:
    """CC1 → 0 first (the morph path's start), then each move: note on, CC1 → 127 after 0.3 s,
    note off, CC1 → 0. Besides the latencies, the stream's figures over the moves (callback
    times of a held note whose layers glide across the morph steps)."""
    period_s = 1.2
    seconds = 0.6 + args.knob_moves * period_s
    player, port = new_player(
        model,
        args,
        cache_dir,
        Sounds(bank=find_bank("default", model=model.info)),
        timing_blocks=int(seconds * RATE / BLOCK) + 1,  # the timing ring holds the whole phase
    )
    with player:
        engine = player.engine
        start = engine.morph[0]
        start_note = warm(player, start, [60])[60]
        warm(player, engine.morph[-1], [60])
        keep_renderer_busy(player.cache, model)
        template = attack_envelope(start.attack_s) * start_note[: round(ALIGN_S * RATE)]
        script = [(0.1, [0xB0, 1, 0])]
        for k in range(args.knob_moves):
            t = 0.3 + k * period_s
            script += [
                (t, [0x90, 60, 127]),
                (t + 0.3, [0xB0, 1, 127]),
                (t + 0.6, [0x80, 60, 0]),
                (t + 1.0, [0xB0, 1, 0]),
            ]
        capture, window = measure_player(player, port, script, seconds)
    out = []
    audio = capture.audio.astype(np.float64)
    for k in range(args.knob_moves):
        on_s, move_s = capture.sent_s[1 + 4 * k], capture.sent_s[2 + 4 * k]
        lo = capture.frame_at(on_s)
        first = lo + onset(audio[lo:])
        begin = align(audio, template, max(first - BLOCK, 0), first + BLOCK)
        moved = capture.frame_at(move_s)
        # The note before the move, fitted to the capture, predicts "no change".
        fit = slice(begin + round(0.05 * RATE), moved - BLOCK)
        ref = start_note[fit.start - begin : fit.stop - begin]
        scale = audio[fit] @ ref / (ref @ ref)
        look = slice(fit.stop, fit.stop + round(0.1 * RATE))
        residual = np.abs(audio[look] - scale * start_note[look.start - begin : look.stop - begin])
        level = np.sqrt(np.mean(audio[fit] ** 2))
        changed = look.start + int(np.flatnonzero(residual > 0.1 * level)[0])
        out.append(1e3 * (capture.wall_s(changed) - move_s))
    before, after = window
    return {
        "latencies_ms": out,
        "xruns": after.xruns - before.xruns,
        "callbacks": after.callbacks - before.callbacks,
        "callback_median": after.callback_median_load,
        "callback_max": after.callback_max_load,
    }


def phase_switch(model, args, cache_dir: Path) -> list[float]:
    """Program change to a preset with nothing cached → its note for the played pitch is ready."""
    player, port = new_player(
        model, args, cache_dir, Sounds(bank=find_bank("default", model=model.info))
    )
    out = []
    with player:
        warm(player, player.engine.timbre, [60, 64, 67])
        keep_renderer_busy(player.cache, model)
        played = [(0.1, [0x90, p, 100]) for p in (60, 64, 67)]
        played += [(0.3, [0x80, p, 0]) for p in (60, 64, 67)]
        measure(port, played, 0.5)  # the played pitches: a new preset renders these first
        programs = [p for p in sorted(player.engine.programs) if p != min(player.engine.programs)]
        for program in programs[: args.switches]:
            timbre = player.engine.programs[program]
            with ThreadPoolExecutor(1) as pool:
                sending = pool.submit(measure, port, [(0.2, [0xC0, program])], 0.4)
                while player.cache.lookup(timbre.key, 60) is None:
                    time.sleep(0.001)
                ready_s = time.perf_counter()
                out.append(1e3 * (ready_s - sending.result().sent_s[0]))
    return out


SILENT = "silent"  # a PortAudio client writing zeros, alone on the server
NO_PAGE, PAGE = "no page", "page open"  # --ui: the control surface closed, open


def probe_phase_s(args) -> float:
    """How long phase 1 records: the quiet chord, then the probes."""
    return 0.5 + 0.6 + args.notes * PROBE_SPACING_S


def silent_with_rig_run(args) -> dict[str, object]:
    """The silent client's xruns while this benchmark's own rig runs as in phase 1: the recorder
    (of the silent client's ports) and the MIDI sender, whose Python callbacks run on JACK's
    real-time thread in the measuring process, sending the probes' rhythm to nowhere."""
    seconds = probe_phase_s(args)
    counts: list[tuple[int, int]] = []
    silent = threading.Thread(
        target=lambda: counts.append(silent_client_xruns(seconds + 2.0, RATE, BLOCK))
    )
    silent.start()
    time.sleep(1.0)  # its ports exist before the recorder looks for them
    script = [(0.5 + k * PROBE_SPACING_S, [0x90, 60, 100]) for k in range(args.notes)]
    measure(None, script, seconds - 1.0)
    silent.join()
    callbacks, xruns = counts[0]
    return {"xruns": xruns, "callbacks": callbacks, "latencies_ms": []}


def silent_run(args, model=None, cache_dir: Path | None = None) -> dict[str, object]:
    """The machine's own xruns for as long as phase 1: a silent client with no player on the
    server, alone, or (``model`` given) beside the note renderer kept as busy as in phase 1. Its
    callback time and latency are not measured, so they are left out."""
    with contextlib.ExitStack() as stack:
        if model is not None:
            cache = NoteCache(model, RATE, cache_dir=cache_dir, renderer=args.renderer)
            cache.start()
            stack.callback(cache.close)
            keep_renderer_busy(cache, model)
        stolen_before_s = stolen_s()
        callbacks, xruns = silent_client_xruns(probe_phase_s(args), RATE, BLOCK)
        stolen_ms = 1e3 * (stolen_s() - stolen_before_s)
    return {"xruns": xruns, "callbacks": callbacks, "latencies_ms": [], "stolen_ms": stolen_ms}


def compare(model, args) -> None:
    """Phase 1 with each renderer (or ``--ui``: without and with the page open), interleaved;
    a row per run, then the medians."""
    kinds = (NO_PAGE, PAGE) if args.ui else WORKERS
    rounds = args.ui or args.compare
    runs: list[tuple[str, float, dict[str, object]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            order = kinds if i % 2 == 0 else kinds[::-1]
            for kind in (*order, SILENT):
                load = os.getloadavg()[0]
                cache_dir = Path(tmp) / f"{i}-{kind}"
                if kind == SILENT:
                    lat = silent_run(args)
                elif args.ui:
                    lat = phase_latency(model, args, cache_dir, page=kind == PAGE)
                else:
                    lat = phase_latency(model, args, cache_dir, kind)
                runs.append((kind, load, lat))
                print(f"  run {len(runs)}: {kind} done (load {load:.1f})", flush=True)
    period_ms = 1e3 * BLOCK / RATE
    what = "browser page closed vs open" if args.ui else "renderer thread vs process"
    print(
        f"bench_live --{'ui' if args.ui else 'compare'}: {what}, {args.voices} voices, "
        f"{args.notes} probes, {'renderer idle' if args.idle_renderer else 'cache filling'}; "
        f"{model.backend}; "
        f"{len(os.sched_getaffinity(0))} cores SHARED with other jobs (load = 1-min average)"
    )
    header = (
        "page" if args.ui else "renderer",
        "load",
        "xruns",
        "callbacks",
        "stolen ms",
        "cb median %",
        "cb max %",
        "lat med ms",
        "audio cpu %",
    )
    print("  " + f"{header[0]:>15}  " + "  ".join(f"{h:>11}" for h in header[1:]))

    def row(name: str, load: float, lat: dict) -> str:
        cells = (
            name,
            f"{load:.1f}",
            f"{lat['xruns']}",
            f"{lat['callbacks']}",
            f"{lat['stolen_ms']:.0f}",
            f"{100 * lat['callback_median']:.1f}" if "callback_median" in lat else "-",
            f"{100 * lat['callback_max']:.0f}" if "callback_max" in lat else "-",
            f"{statistics.median(lat['latencies_ms']):.2f}" if lat["latencies_ms"] else "-",
            f"{100 * lat['audio_cpu']:.1f}" if "audio_cpu" in lat else "-",
        )
        return "  " + f"{cells[0]:>15}  " + "  ".join(f"{c:>11}" for c in cells[1:])

    for renderer, load, lat in runs:
        print(row(renderer, load, lat))
    for renderer in (*kinds, SILENT):
        mine = [(load, lat) for r, load, lat in runs if r == renderer]
        median = {
            key: statistics.median(lat[key] for _, lat in mine)
            for key in (
                "xruns",
                "callbacks",
                "stolen_ms",
                "callback_median",
                "callback_max",
                "audio_cpu",
            )
            if key in mine[0][1]  # the silent client has no callback times
        }
        median["latencies_ms"] = [
            statistics.median(lat["latencies_ms"]) for _, lat in mine if lat["latencies_ms"]
        ]
        print(row(f"median {renderer}", statistics.median(ld for ld, _ in mine), median))
    print(f"  (callback % of the {period_ms:.2f} ms period; medians over {rounds} runs each)")
    print("  (silent: a PortAudio client writing zeros, alone on the server as long: the floor)")
    print("  (stolen: CPU time the host took from this virtual machine meanwhile, all cores)")
    print("  (audio cpu: the audio process's CPU time over the probes' wall time, % of one core)")


# -- --floor: the instrument beside a minimal Python instrument, on the same server ------------

FLOOR_SPACING_S = 0.8  # between the measured notes
FLOOR_HOLD_S = 0.4
FLOOR_WARMUP = 5  # notes sent first and not measured (first-use costs on either side)
FLOOR_PITCHES = (60, 64, 67, 72)
FLOOR_PHASE_SPREAD_S = 128 / 48000  # each note's offset is a share of this (one or two periods)
GOLDEN = (math.sqrt(5) - 1) / 2
AUDIBLE = 10 ** (-80 / 20)  # the first captured sample above -80 dBFS is the note's onset
SINE_ATTACK_S = 0.001
FLOOR = "floor"  # the minimal instrument, as a row name


def floor_script(notes: int) -> tuple[list[tuple[float, list[int]]], list[int]]:
    """Warm-up notes, then ``notes`` measured ones, each held FLOOR_HOLD_S and offset within
    FLOOR_PHASE_SPREAD_S (see the module docstring); the script and the indices of the measured
    note-ons in it."""
    script, measured = [], []
    for i in range(FLOOR_WARMUP + notes):
        at_s = 0.3 + i * FLOOR_SPACING_S + (i * GOLDEN % 1.0) * FLOOR_PHASE_SPREAD_S
        pitch = FLOOR_PITCHES[i % len(FLOOR_PITCHES)]
        if i >= FLOOR_WARMUP:
            measured.append(len(script))
        script += [(at_s, [0x90, pitch, 100]), (at_s + FLOOR_HOLD_S, [0x80, pitch, 0])]
    return script, measured


def floor_seconds(notes: int) -> float:
    return 0.3 + (FLOOR_WARMUP + notes) * FLOOR_SPACING_S + FLOOR_PHASE_SPREAD_S + 0.2


def onset_latencies(capture: Capture, measured: list[int]) -> tuple[list[float], np.ndarray]:
    """Send → the recorder cycle of the first sample above −80 dBFS (ms) of each note-on heard
    while held, and per measured note-on that cycle's wall clock (s; NaN if none: a loaded
    machine can drop the blocks that held it, in the capture or in the stream)."""
    heard = np.full(len(measured), np.nan)
    audio = np.abs(capture.audio)
    for i, index in enumerate(measured):
        lo = max(capture.frame_at(capture.sent_s[index]) - capture.block_frames, 0)
        loud = np.flatnonzero(audio[lo : lo + round(FLOOR_HOLD_S * RATE)] > AUDIBLE)
        if len(loud):
            heard[i] = capture.wall_s(lo + int(loud[0]))
    latencies = 1e3 * (heard - capture.sent_s[measured])
    return latencies[~np.isnan(latencies)].tolist(), heard


def _floor_synth(
    block: int, blocks: int, meters_buffer, taken, ready: EventType, stop: EventType
) -> None:
    """The floor (another process): an rtmidi JACK virtual input whose callback appends
    (pitch, on, when) to a deque, and a sounddevice stream whose callback drains it and starts or
    stops a sine with a 1 ms attack. Its meters (``blocks`` callbacks) go in ``meters_buffer``;
    ``taken`` gets, for each note-on in order, the rtmidi callback's time and the start of the
    audio callback that took it (the floor's hops)."""
    from collections import deque

    import rtmidi
    import sounddevice as sd

    from gansynth_instrument.live.stream_meters import StreamMeters

    meters = StreamMeters(blocks, np.frombuffer(meters_buffer, np.float64))
    inbox: deque[tuple[int, bool, float]] = deque()
    step = 1.0 / (SINE_ATTACK_S * RATE)
    sounding: dict[int, list[float]] = {}  # pitch → [phase, level, target]
    ons = [0]

    def on_midi(event, _data) -> None:
        msg = event[0]
        if len(msg) == 3 and msg[0] & 0xE0 == 0x80:
            inbox.append((msg[1], msg[0] & 0xF0 == 0x90 and msg[2] > 0, time.perf_counter()))

    def on_audio(out, frames, _when, status) -> None:
        start_s = meters.begin(bool(status.output_underflow))
        while inbox:
            pitch, on, when_s = inbox.popleft()
            if on:
                sounding[pitch] = [0.0, 0.0, 1.0]
                if 2 * ons[0] + 1 < len(taken):
                    taken[2 * ons[0]], taken[2 * ons[0] + 1] = when_s, start_s
                    ons[0] += 1
            elif pitch in sounding:
                sounding[pitch][2] = 0.0
        out.fill(0)
        n = np.arange(1, frames + 1)
        for pitch, voice in list(sounding.items()):
            phase, level, target = voice
            hz = 440.0 * 2 ** ((pitch - 69) / 12)
            ramp = np.clip(level + np.sign(target - level) * step * n, 0.0, 1.0)
            tone = 0.3 * ramp * np.sin(phase + 2 * np.pi * hz / RATE * n)
            out += tone[:, None]
            voice[0] = (phase + 2 * np.pi * hz / RATE * frames) % (2 * np.pi)
            voice[1] = float(ramp[-1])
            if target == 0.0 and voice[1] == 0.0:
                del sounding[pitch]
        meters.end(start_s, 0.0)

    midi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench-floor")
    midi.open_virtual_port("in")
    midi.set_callback(on_midi)
    with sd.OutputStream(
        samplerate=RATE, blocksize=block, channels=2, latency="low", callback=on_audio
    ):
        ready.set()
        stop.wait()
    midi.close_port()
    midi.delete()


def floor_run(block: int, notes: int) -> dict[str, object]:
    """The minimal instrument, measured as ``instrument_run`` measures the player."""
    from gansynth_instrument.live.stream_meters import StreamMeters

    context = multiprocessing.get_context("spawn")
    seconds = floor_seconds(notes)
    blocks = int(seconds * RATE / block) + 64
    meters_buffer = context.RawArray("d", StreamMeters.size(blocks))
    meters = StreamMeters(blocks, np.frombuffer(meters_buffer, np.float64))
    taken = context.RawArray("d", 4 * (FLOOR_WARMUP + notes))  # room for repeated messages
    ready, stop = context.Event(), context.Event()
    synth = context.Process(
        target=_floor_synth, args=(block, blocks, meters_buffer, taken, ready, stop)
    )
    synth.start()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"the floor synth did not start (exit {synth.exitcode})")
        script, measured = floor_script(notes)
        window: list[StreamStats] = []  # at the start of the recording

        def mark() -> None:
            window.append(meters.stats(block / RATE, 0.0))

        capture = measure("bench-floor.*:in", script, seconds, mark, mark)
        before, after = window[0], meters.stats(block / RATE, 0.0, since=window[0].callbacks)
    finally:
        stop.set()
        synth.join(30)
    latencies, heard = onset_latencies(capture, measured)
    # Each measured note-on is the first the MIDI callback took after the cycle that wrote it.
    pairs = np.frombuffer(taken, np.float64).reshape(-1, 2)
    pairs = pairs[pairs[:, 0] > 0]
    sent = capture.sent_s[measured]
    written = capture.written_s[measured]
    times = pairs[np.minimum(np.searchsorted(pairs[:, 0], written), len(pairs) - 1)]
    hops = {
        "send → sender's JACK cycle": written - sent,
        "→ MIDI callback": times[:, 0] - written,
        "→ audio callback start": times[:, 1] - times[:, 0],
        "→ recorder's cycle of the onset": heard - times[:, 1],
    }
    return {
        "latencies_ms": latencies,
        "missed": notes - len(latencies),
        "xruns": window[1].xruns - before.xruns,
        "callbacks": window[1].callbacks - before.callbacks,
        "callback_median": after.callback_median_load,
        "callback_max": after.callback_max_load,
        "hops": hops,
    }


def instrument_run(
    model,
    args,
    block: int,
    cache_dir: Path,
    notes: int,
    script: tuple[list[tuple[float, list[int]]], list[int]] | None = None,
    warm_up: Callable[[Player], None] | None = None,
    **player_kw: object,
) -> dict[str, object]:
    """The player (the ``play`` path) at ``block`` frames, the floor's notes sent to it; its hops
    timed on the way: Player.handle entered, the note-on command sent to the audio process, the
    start of the audio callback after that (the stream's meters). ``script`` (as
    ``floor_script`` returns it), ``warm_up`` (notes made before it) and ``player_kw`` replace
    the floor's notes and the player's defaults (``bench_mpe.py``: the same notes as MPE)."""
    script, measured = script or floor_script(notes)
    seconds = floor_seconds(notes)
    player, port = new_player(
        model,
        args,
        cache_dir,
        Sounds(PROBE),
        block_frames=block,
        timing_blocks=int(seconds * RATE / block) + 64,
        **player_kw,
    )
    handled: list[float] = []  # perf_counter as each note-on enters Player.handle
    commanded: list[float] = []  # ... and as its command has gone to the audio process
    handle, send = player.handle, player.audio.send

    def timed_handle(msg) -> None:
        if msg[0] & 0xF0 == 0x90 and msg[2] > 0:
            handled.append(time.perf_counter())
        handle(msg)

    def timed_send(cmd: tuple) -> bool:
        sent = send(cmd)
        if cmd[1] == CMD_NOTE_ON:
            commanded.append(time.perf_counter())
        return sent

    player.handle = timed_handle  # type: ignore[method-assign]  # before start(): MIDI calls it
    player.audio.send = timed_send  # type: ignore[method-assign]
    with player:
        warm(player, player.engine.timbre, list(FLOOR_PITCHES))
        if warm_up is not None:
            warm_up(player)
        capture, window = measure_player(player, port, script, seconds)
        starts = player.audio.meters.starts(since=window[0].callbacks).copy()
    before, after = window
    latencies, heard = onset_latencies(capture, measured)
    written = capture.written_s[measured]

    def first_after(times: list[float] | np.ndarray, after: np.ndarray) -> np.ndarray:
        """Per time in ``after``, the first of ``times`` (sorted) at or after it."""
        times = np.asarray(times)
        return times[np.minimum(np.searchsorted(times, after), len(times) - 1)]

    handled_s = first_after(handled, written)
    commanded_s = first_after(commanded, handled_s)
    taken_s = first_after(starts, commanded_s)
    hops = {
        "send → sender's JACK cycle": written - capture.sent_s[measured],
        "→ MIDI callback": handled_s - written,
        "→ note-on command sent": commanded_s - handled_s,
        "→ audio callback start": taken_s - commanded_s,
        "→ recorder's cycle of the onset": heard - taken_s,
    }
    return {
        "latencies_ms": latencies,
        "missed": notes - len(latencies),
        "xruns": after.xruns - before.xruns,
        "callbacks": after.callbacks - before.callbacks,
        "callback_median": after.callback_median_load,
        "callback_max": after.callback_max_load,
        "hops": hops,
    }


def floor_compare(model, args) -> None:
    """--floor: at each block size, a fresh server; the floor, then the instrument, the same
    notes; a table of both and their ratios (and with --hops, each hop's median)."""
    results: list[tuple[int, dict, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for block in args.blocks:
            with JackServer(sample_rate=RATE, period_frames=block, realtime=not args.no_realtime):
                floor = floor_run(block, args.floor_notes)
                mine = instrument_run(model, args, block, Path(tmp) / str(block), args.floor_notes)
            results.append((block, mine, floor))
            print(f"  {block} frames done (load {os.getloadavg()[0]:.1f})", flush=True)
    print(
        f"bench_live --floor: {args.floor_notes} notes {FLOOR_SPACING_S} s apart after "
        f"{FLOOR_WARMUP} warm-up notes; jackd dummy {RATE} Hz, "
        f"{'non-RT' if args.no_realtime else 'RT'}; {args.model.name} ({model.backend}); "
        f"{len(os.sched_getaffinity(0))} cores shared with other jobs"
    )
    print(
        f"  {'block':>5} {'who':>10} {'lat med ms':>10} {'lat max ms':>10} {'xruns':>6} "
        f"{'callbacks':>9} {'cb med %':>8} {'cb max %':>8} {'missed':>6}"
    )
    for block, mine, floor in results:
        for who, run in (("instrument", mine), (FLOOR, floor)):
            ms = run["latencies_ms"]
            print(
                f"  {block:>5} {who:>10} {statistics.median(ms):>10.2f} {max(ms):>10.2f} "
                f"{run['xruns']:>6} {run['callbacks']:>9} {100 * run['callback_median']:>8.1f} "
                f"{100 * run['callback_max']:>8.0f} {run['missed']:>6}"
            )
        a, b = mine["latencies_ms"], floor["latencies_ms"]
        print(
            f"  {block:>5} {'ratio':>10} {statistics.median(a) / statistics.median(b):>10.2f} "
            f"{max(a) / max(b):>10.2f} {mine['xruns'] / max(floor['xruns'], 1):>6.1f}   "
            f"(instrument − floor: median {statistics.median(a) - statistics.median(b):+.2f} ms, "
            f"max {max(a) - max(b):+.2f} ms, xruns {mine['xruns'] - floor['xruns']:+d})"
        )
    print("  (latency: send → the recorder's cycle of the first sample above −80 dBFS;")
    print("   callback time as % of the period; xruns: the stream's underflows while recording;")
    print("   missed: notes with no such sample while held, left out)")
    if not args.hops:
        return
    print("  hops, ms, median / max (instrument; floor):")
    for block, mine, floor in results:
        print(f"  {block} frames:")
        for name, times in mine["hops"].items():
            theirs = floor["hops"].get(name)
            other = "-" if theirs is None else _median_max(theirs)
            print(f"    {name:<34} {_median_max(times):>13}  {other:>13}")


def _median_max(times_s: np.ndarray) -> str:
    return f"{1e3 * np.nanmedian(times_s):.2f} / {1e3 * np.nanmax(times_s):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--notes", type=int, default=120, help="probe notes (120)")
    parser.add_argument("--voices", type=int, default=32, help="quiet voices sounding (32)")
    parser.add_argument("--knob-moves", type=int, default=10)
    parser.add_argument("--switches", type=int, default=4, help="program changes (4)")
    parser.add_argument(
        "--threads", type=int, help="model threads (default: as play, all cores but one)"
    )
    parser.add_argument("--no-realtime", action="store_true", help="jackd without -R")
    parser.add_argument(
        "--renderer",
        choices=WORKERS,
        default=DEFAULT_RENDERER,
        help=f"where the note cache renders ({DEFAULT_RENDERER}, as play)",
    )
    parser.add_argument(
        "--compare",
        type=int,
        metavar="ROUNDS",
        help="phase 1 only, ROUNDS runs per renderer (interleaved); a comparison table",
    )
    parser.add_argument(
        "--ui",
        type=int,
        metavar="ROUNDS",
        help="phase 1 only, ROUNDS runs without and with the browser control surface open "
        "(needs the ui extra, selenium and chromium); a comparison table",
    )
    parser.add_argument(
        "--idle-renderer", action="store_true", help="probe phase with nothing left to render"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="the instrument beside a minimal Python instrument (the floor), same server and "
        "notes, at each --blocks size; a table of both",
    )
    parser.add_argument("--floor-notes", type=int, default=40, help="--floor's notes (40)")
    parser.add_argument(
        "--blocks",
        type=lambda text: [int(b) for b in text.split(",")],
        default=[128, 64],
        help="--floor's block sizes, = the JACK period (128,64)",
    )
    parser.add_argument(
        "--hops", action="store_true", help="with --floor: each hop of a note-on's way, medians"
    )
    args = parser.parse_args()
    if args.floor:
        args.threads = args.threads or live_render_threads()
        floor_compare(load_model(args.model, threads=args.threads), args)
        return

    server = JackServer(sample_rate=RATE, period_frames=BLOCK, realtime=not args.no_realtime)
    server.start()
    try:
        args.threads = args.threads or live_render_threads()
        model = load_model(args.model, threads=args.threads)
        if args.compare or args.ui:
            compare(model, args)
            return
        with tempfile.TemporaryDirectory() as tmp:
            silent = silent_run(args)
            silent_busy = silent_run(args, model, Path(tmp) / "s")
            silent_rig = silent_with_rig_run(args)
            lat = phase_latency(model, args, Path(tmp) / "a")
            knob_phase = phase_knob(model, args, Path(tmp) / "b")
            knob = knob_phase["latencies_ms"]
            switch = phase_switch(model, args, Path(tmp) / "c")
    finally:
        server.stop()

    ms = lat["latencies_ms"]
    period_ms = 1e3 * BLOCK / RATE
    rows = [
        ("machine", f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"),
        ("model", f"{args.model.name} ({model.backend}, threads {args.threads})"),
        ("jackd", f"dummy {RATE} Hz / {BLOCK} frames, {'non-RT' if args.no_realtime else 'RT'}"),
        ("note renderer", args.renderer),
        ("voices sounding at every probe", f"≥ {lat['voices']} (quiet chord + probes)"),
        ("notes queued for the cache", f"{lat['queued']} (BACKGROUND, during the probes)"),
        ("probe notes", f"{len(ms)}"),
        ("note-on → first captured sample", ""),
        (
            "    median / p99 / max",
            f"{statistics.median(ms):.2f} / {percent(ms, 99):.2f} / {max(ms):.2f} ms",
        ),
        (
            "xruns during the probes",
            f"{lat['xruns']} in {lat['callbacks']} callbacks "
            f"(host stole {lat['stolen_ms']:.0f} ms)",
        ),
        (
            "xruns of a silent client alone, as long",
            f"{silent['xruns']} in {silent['callbacks']} callbacks "
            f"(the machine's floor; host stole {silent['stolen_ms']:.0f} ms)",
        ),
        (
            "  the same beside the busy note renderer",
            f"{silent_busy['xruns']} in {silent_busy['callbacks']} callbacks (its floor under "
            f"phase 1's rendering; host stole {silent_busy['stolen_ms']:.0f} ms)",
        ),
        (
            "  the same beside this benchmark's rig",
            f"{silent_rig['xruns']} in {silent_rig['callbacks']} callbacks (recorder and MIDI "
            "sender as in phase 1)",
        ),
        (
            "callback time (median / max)",
            f"{100 * lat['callback_median']:.1f} % / "
            f"{100 * lat['callback_max']:.1f} % of {period_ms:.2f} ms",
        ),
        (
            "  the same during the knob moves",
            f"{100 * knob_phase['callback_median']:.1f} % / "
            f"{100 * knob_phase['callback_max']:.1f} % (a held note; {knob_phase['xruns']} "
            f"xruns in {knob_phase['callbacks']} callbacks)",
        ),
        ("PortAudio reported output latency", f"{lat['reported_latency_ms']:.2f} ms"),
        (
            "knob move → audible change",
            f"median {statistics.median(knob):.2f} ms, max {max(knob):.2f} ms ({len(knob)} moves)",
        ),
        (
            "preset switch → first playable note",
            f"median {statistics.median(switch):.0f} ms, "
            f"max {max(switch):.0f} ms ({len(switch)} switches, played pitch, cold cache)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print("bench_live (shared machine: other jobs may load the cores; see --help)")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    main()
