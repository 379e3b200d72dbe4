"""Live quality as a musician hears it: level, clicks under the morph knob, xruns around a preset
switch; each beside the floor measured in the same run.

    python benchmarks/bench_quality.py [--model MODEL.onnx] [--cache-dir DIR] [--rounds 3]
        [--json OUT.json] [-- PLAY OPTIONS ...]

Runs ``gansynth-instrument play`` as a user does (its own process, the default bank, a private JACK
dummy server at 48 kHz / 128 frames, real-time and synchronous as in tests/conftest.py) with every
note it will play already in the disk cache (warmed here first; ``--cache-dir`` keeps them for the
next run). MIDI comes from an rtmidi JACK MIDI output in this process (no Python on JACK's thread);
the output is recorded by a JACK-Client recorder (tests/jackrig.py). Per round:

1. held: a C4 held for ``PHASE_S``, nothing else: the click floor and the held-note xruns.
2. knob: the same C4 while the morph knob sweeps 0 → 127 → 0 in 3 s (86 CC1 messages).
3. switch: a program change to a preset not played yet (its notes on disk only), then ten notes
   0.4 s apart while it loads.
Then once: a 32-voice chord at velocity 127 (peak), and a velocity-127 C4 of every program.

Definitions (``../shared/docs/wave2-facts.md``): level = peak and RMS of the recording in dBFS; a
click = a run of 1 ms frames whose RMS above 10 kHz (8th-order Butterworth high-pass) exceeds
-40 dB relative to the held note's RMS (the model makes nothing above 8 kHz, so energy there is a
discontinuity); xruns = ``XRun`` lines in jackd's log during the phase. Floors: the xruns of a
silent PortAudio client recorded as the player is (same server, same recorder, counted once both
run), before the player starts and after it stops; and the held phase's clicks. Prints a table;
nothing is asserted here (tests/model/test_quality.py asserts on ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rtmidi
from scipy.signal import butter, sosfilt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the live-test rig: JACK server, recorder

from jackrig import (  # noqa: E402
    PORTAUDIO_CLIENTS,
    JackServer,
    Recorder,
    start_silent_client,
    stolen_s,
)

from gansynth_instrument.live.audio_process import JACK_CLIENT_NAME  # noqa: E402
from gansynth_instrument.memory import no_huge_pages  # noqa: E402
from gansynth_instrument.model.runtime import BUNDLED_MODEL, load_model, read_info  # noqa: E402
from gansynth_instrument.notes.cache import NoteCache  # noqa: E402
from gansynth_instrument.notes.timbre import Timbre, morph_steps  # noqa: E402
from gansynth_instrument.presets.bank_files import bank_preset, find_bank  # noqa: E402

RATE = 48000
BLOCK = 128
C4 = 60
PHASE_S = 4.5
SWEEP_S = 3.0
SWEEP_MESSAGES = 86
SWEEP_START_S = 0.5
SWITCH_NOTES = (60, 62, 64, 65, 67, 69, 71, 72, 74, 76)
SWITCH_SPACING_S = 0.4
SWITCH_HOLD_S = 0.3
CHORD = tuple(range(36, 36 + 32 * 2, 2))  # 32 voices
CLICK_CUTOFF_HZ = 10_000.0
CLICK_THRESHOLD_DB = -40.0
CLICK_FRAME_S = 0.001
READY_TIMEOUT_S = 120.0
SETTLE_S = 1.5  # after a warm-up sweep or a program change, before measuring
TARGET_PEAK_DBFS = (-14.5, -3.0)  # before the preset's gain_db (tests/model/test_quality.py)
LEVEL_TRIES = 10


@dataclass
class Round:
    """One round's figures (clicks and xruns per phase)."""

    held_clicks: int
    knob_clicks: int
    switch_clicks: int
    held_xruns: int
    knob_xruns: int
    switch_xruns: int
    switch_program: int
    switch_stolen_ms: float  # CPU time the host took from this VM during the switch phase


@dataclass
class Report:
    rounds: list[Round]
    silent_before: int  # jackd xrun lines beside a silent client (silent_floor)
    silent_after: int
    c4_peak_dbfs: dict[str, float]  # preset → peak of a velocity-127 C4
    c4_rms_dbfs: dict[str, float]
    chord_peak_dbfs: float
    play_options: list[str]
    machine: str
    player_tail: list[str] = field(default_factory=list)

    @property
    def silent_xruns(self) -> int:
        """The floor: the larger of the silent client's jackd xruns before and after."""
        return max(self.silent_before, self.silent_after)


# --- analysis ------------------------------------------------------------------------------------


def dbfs(value: float) -> float:
    return 20.0 * float(np.log10(max(value, 1e-12)))


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if len(signal) else 0.0


def click_frames(audio: np.ndarray, window: slice, reference_rms: float) -> np.ndarray:
    """Where each click in ``audio[window]`` (as defined in the module docstring) starts, in
    CLICK_FRAME_S frames from the window's start (the filter runs over the whole recording, so
    its start-up transient falls before the window)."""
    sos = butter(8, CLICK_CUTOFF_HZ, "highpass", fs=RATE, output="sos")
    high = sosfilt(sos, audio.astype(np.float64))[window]
    frame = round(CLICK_FRAME_S * RATE)
    frames = len(high) // frame
    energy = np.sqrt(np.mean(np.square(high[: frames * frame]).reshape(frames, frame), axis=1))
    above = energy > reference_rms * 10 ** (CLICK_THRESHOLD_DB / 20)
    return np.flatnonzero(above & ~np.r_[False, above[:-1]])


def count_clicks(audio: np.ndarray, window: slice, reference_rms: float) -> int:
    """Clicks in ``audio[window]`` (``click_frames``)."""
    return len(click_frames(audio, window, reference_rms))


# --- the cache ---------------------------------------------------------------------------------


def warm_cache(model_path: Path, cache_dir: Path, switch_programs: list[int]) -> None:
    """Every note the phases play into the disk cache: all pitches of the first program, the
    switch programs and the morph steps (the engine asks for all of a timbre's pitches once it
    plays it), C4 of every other program."""
    model = load_model(model_path)
    bank = find_bank("default", model=model.info)
    size = model.latent_size
    programs = {p: Timbre.from_preset(bank_preset(bank, n), size) for p, n in bank.programs.items()}
    path = [Timbre.from_preset(bank_preset(bank, n), size) for n in bank.morph_path]
    full = [programs[min(programs)], *(programs[p] for p in switch_programs)]
    full += morph_steps(path, bank.morph_steps)
    wanted = [(t.latent, model.pitches) for t in full]
    wanted += [(t.latent, (C4,)) for t in programs.values()]
    started = time.perf_counter()
    with NoteCache(model, RATE, cache_dir, batch_size=8) as cache:
        keys = [(cache.request(z, pitches), pitches) for z, pitches in wanted]
        for key, pitches in keys:
            if not cache.wait(key, pitches, timeout_s=3600, in_memory=False):
                raise RuntimeError(f"timbre {key} did not render")
    print(f"cache warm: {len(wanted)} timbres in {time.perf_counter() - started:.0f} s")


# --- the player and the rig ----------------------------------------------------------------------


def jackd_xruns(server: JackServer) -> int:
    return sum("xrun" in line.lower() for line in server.log_tail(1_000_000).splitlines())


class Rig:
    """``play`` in its own process, an rtmidi output connected to it, ports to record."""

    def __init__(self, model: Path, cache_dir: Path, options: list[str], log: Path) -> None:
        port = f"quality-{uuid.uuid4().hex[:6]}"
        command = [sys.executable, "-m", "gansynth_instrument", "play", "--model", str(model)]
        command += ["--bank", "default", "--virtual-midi", port, "--cache-dir", str(cache_dir)]
        command += ["--blocksize", str(BLOCK), "--sample-rate", str(RATE), *options]
        self._log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        self.midi = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="quality-keys")
        self.sources = self._wait_ready(port)

    def _wait_ready(self, port: str) -> tuple[str, ...]:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"play exited:\n{self.tail()}")
            midi = [i for i, name in enumerate(self.midi.get_ports()) if port in name]
            audio = _audio_ports(JACK_CLIENT_NAME)
            if midi and len(audio) == 2:
                self.midi.open_port(midi[0])
                time.sleep(0.3)  # JACK applies the connection between cycles
                return audio
            time.sleep(0.2)
        raise RuntimeError(f"play not ready after {READY_TIMEOUT_S} s:\n{self.tail()}")

    def tail(self, lines: int = 8) -> str:
        text = self._log.read_text(errors="replace").replace("\r", "\n").splitlines()
        return "\n".join(line for line in text if line.strip())[-2000:] if lines else ""

    def send(self, message: list[int]) -> None:
        self.midi.send_message(message)

    def play(
        self, server: JackServer, seconds: float, script: list[tuple[float, list[int]]]
    ) -> tuple[np.ndarray, int]:
        """Record ``seconds`` while sending ``script`` ((seconds, message), sorted); the left
        channel and the jackd xrun lines meanwhile."""
        with Recorder(seconds, self.sources, name=f"rec-{uuid.uuid4().hex[:4]}") as recorder:
            before = jackd_xruns(server)
            start = time.perf_counter()
            for at_s, message in script:
                time.sleep(max(0.0, start + at_s - time.perf_counter()))
                self.send(message)
            audio = recorder.wait(seconds + 30.0)[:, 0].copy()
            xruns = jackd_xruns(server) - before
        return audio, xruns

    def close(self) -> None:
        self.midi.close_port()
        self.midi.delete()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _audio_ports(client_names: str) -> tuple[str, ...]:
    """Output ports of the JACK clients named ``client_names`` (a regex alternation)."""
    import jack

    client = jack.Client(f"probe-{uuid.uuid4().hex[:4]}", no_start_server=True)
    try:
        pattern = f"^({client_names})(-[0-9]+)?:"
        return tuple(p.name for p in client.get_ports(pattern, is_audio=True, is_output=True))
    finally:
        client.close()


def silent_floor(server: JackServer) -> int:
    """jackd's xruns over PHASE_S with the rig as in a phase (the recorder on a stream's ports)
    but a silent client instead of the player; counted once both run, as a phase's are."""
    client = start_silent_client(PHASE_S + 2 * SETTLE_S + 2.0, RATE, BLOCK)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(sources := _audio_ports(PORTAUDIO_CLIENTS[0])) != 2:
            if client.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the silent client did not start: {client.communicate()}")
            time.sleep(0.1)
        time.sleep(SETTLE_S)
        with Recorder(PHASE_S, sources, name=f"rec-{uuid.uuid4().hex[:4]}") as recorder:
            before = jackd_xruns(server)
            recorder.wait(PHASE_S + 30.0)
            return jackd_xruns(server) - before
    finally:
        client.communicate(timeout=60)


# --- the phases --------------------------------------------------------------------------------


def sweep_script(start_s: float) -> list[tuple[float, list[int]]]:
    """CC1 0 → 127 → 0 over SWEEP_S in SWEEP_MESSAGES messages from ``start_s``."""
    half = SWEEP_MESSAGES // 2
    values = np.concatenate([np.linspace(0, 127, half), np.linspace(127, 0, half)])
    times = start_s + np.linspace(0.0, SWEEP_S, len(values))
    return [(float(t), [0xB0, 1, round(v)]) for t, v in zip(times, values, strict=True)]


def held_note(rig: Rig, server: JackServer, knob: bool) -> tuple[int, int]:
    """(clicks, xruns) of a held C4, with or without the knob sweep."""
    script = [(0.1, [0xB0, 1, 0]), (0.2, [0x90, C4, 100])]
    script += sweep_script(SWEEP_START_S) if knob else []
    script.append((PHASE_S - 0.3, [0x80, C4, 0]))
    audio, xruns = rig.play(server, PHASE_S, sorted(script, key=lambda item: item[0]))
    window = slice(round(SWEEP_START_S * RATE), round((SWEEP_START_S + SWEEP_S + 0.1) * RATE))
    return count_clicks(audio, window, rms(audio[window])), xruns


def switch(rig: Rig, server: JackServer, program: int) -> tuple[int, int]:
    """(clicks, xruns): a program change, then ten notes while its preset loads."""
    script: list[tuple[float, list[int]]] = [(0.1, [0xC0, program])]
    for i, pitch in enumerate(SWITCH_NOTES):
        at = 0.2 + i * SWITCH_SPACING_S
        script += [(at, [0x90, pitch, 100]), (at + SWITCH_HOLD_S, [0x80, pitch, 0])]
    audio, xruns = rig.play(server, PHASE_S, sorted(script, key=lambda item: item[0]))
    sounding = np.abs(audio) > 1e-4
    if not sounding.any():
        return 0, xruns
    window = slice(int(np.argmax(sounding)) + round(0.02 * RATE), len(audio))
    return count_clicks(audio, window, rms(audio[window])), xruns


def warm_up_morph(rig: Rig) -> None:
    """Sweep the knob once over a quiet note so every morph step is read into memory."""
    rig.send([0x90, C4, 1])
    for value in [*range(0, 128, 8), 127, *range(127, -1, -8), 0]:
        rig.send([0xB0, 1, value])
        time.sleep(0.05)
    rig.send([0x80, C4, 0])
    time.sleep(SETTLE_S)


def levels(rig: Rig, server: JackServer, programs: dict[int, str]) -> tuple[dict, dict, float]:
    """Peak and RMS of a velocity-127 C4 of every program; peak of a 32-voice chord."""
    peaks, rmss = {}, {}
    # First an inaudible C4 of every program, so each one's exact C4 is read from disk first
    # (a note-on asks for its exact note first in line): the probes then never hear a stand-in
    # of another pitch.
    for program in sorted(programs):
        rig.send([0xC0, program])
        rig.send([0x90, C4, 1])
        time.sleep(0.2)
        rig.send([0x80, C4, 0])
    time.sleep(2 * SETTLE_S)
    for program, name in sorted(programs.items()):
        rig.send([0xC0, program])
        time.sleep(0.3)
        for _ in range(LEVEL_TRIES):  # until the C4 sounds
            script = [(0.05, [0x90, C4, 127]), (1.0, [0x80, C4, 0])]
            audio, _ = rig.play(server, 1.3, script)
            if np.abs(audio).max() > 0.0:
                break
            time.sleep(SETTLE_S)
        peaks[name], rmss[name] = dbfs(float(np.abs(audio).max())), dbfs(note_rms(audio))
    rig.send([0xC0, min(programs)])
    time.sleep(0.3)
    chord = [(0.05, [0x90, p, 127]) for p in CHORD] + [(1.2, [0x80, p, 0]) for p in CHORD]
    audio, _ = rig.play(server, 1.6, chord)
    return peaks, rmss, dbfs(float(np.abs(audio).max()))


def note_rms(audio: np.ndarray) -> float:
    """RMS over the first second from the note's first audible sample."""
    sounding = np.flatnonzero(np.abs(audio) > 1e-4)
    return rms(audio[sounding[0] : sounding[0] + RATE]) if len(sounding) else 0.0


def run(
    model: Path, cache_dir: Path, rounds: int, options: list[str], log: Path, realtime: bool
) -> Report:
    bank = find_bank("default", model=read_info(model))
    first = min(bank.programs)
    switch_programs = sorted(p for p in bank.programs if p != first)[:rounds]
    warm_cache(model, cache_dir, switch_programs)
    results = []
    jackd = JackServer(sample_rate=RATE, period_frames=BLOCK, realtime=realtime, sync=True)
    with jackd as server:
        silent_before = silent_floor(server)
        rig = Rig(model, cache_dir, options, log)
        try:
            time.sleep(SETTLE_S)
            warm_up_morph(rig)
            for program in switch_programs:
                held_clicks, held_xruns = held_note(rig, server, knob=False)
                knob_clicks, knob_xruns = held_note(rig, server, knob=True)
                time.sleep(0.5)
                stolen = stolen_s()
                switch_clicks, switch_xruns = switch(rig, server, program)
                rig.send([0xC0, first])
                time.sleep(SETTLE_S)
                results.append(
                    Round(
                        held_clicks,
                        knob_clicks,
                        switch_clicks,
                        held_xruns,
                        knob_xruns,
                        switch_xruns,
                        program,
                        1e3 * (stolen_s() - stolen),
                    )
                )
            peaks, rmss, chord = levels(rig, server, bank.programs)
        finally:
            rig.close()
            while _audio_ports(JACK_CLIENT_NAME):  # its process ended; JACK drops its ports
                time.sleep(0.1)
        tail = rig.tail().splitlines()[-5:]
        silent_after = silent_floor(server)
    return Report(
        results,
        silent_before,
        silent_after,
        peaks,
        rmss,
        chord,
        options,
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, model {model.name}, "
        f"jackd {'-R' if realtime else '--no-realtime'} --sync",
        tail,
    )


def print_report(report: Report) -> None:
    def med(values: list[float]) -> str:
        return f"{statistics.median(values):g} (max {max(values):g})"

    r = report.rounds
    silent = report.silent_xruns
    print(f"{'figure':<44} {'median (max) of rounds':>24} {'floor, same run':>22}")
    rows = [
        ("clicks, held C4 (3 s window)", [x.held_clicks for x in r], "-"),
        ("clicks, knob sweep 0-127-0 in 3 s", [x.knob_clicks for x in r], "held: see above"),
        ("clicks, program change + 10 notes", [x.switch_clicks for x in r], "-"),
        (f"xruns, held C4 ({PHASE_S:g} s)", [x.held_xruns for x in r], f"silent {silent}"),
        ("xruns, knob sweep", [x.knob_xruns for x in r], f"silent {silent}"),
        ("xruns, program change + 10 notes", [x.switch_xruns for x in r], f"silent {silent}"),
        ("CPU time stolen by the host, switch ms", [x.switch_stolen_ms for x in r], "-"),
    ]
    for label, values, floor in rows:
        print(f"{label:<44} {med(values):>24} {floor:>22}")
    print(
        f"silent client and recorder ({PHASE_S:g} s), jackd xruns: before the player "
        f"{report.silent_before}, after it {report.silent_after}"
    )
    peaks = report.c4_peak_dbfs
    low, high = min(peaks, key=peaks.get), max(peaks, key=peaks.get)
    print(
        f"velocity-127 C4 peak dBFS: median {statistics.median(peaks.values()):.1f}, "
        f"lowest {peaks[low]:.1f} ({low}), highest {peaks[high]:.1f} ({high}); "
        f"target {TARGET_PEAK_DBFS[0]:g}..{TARGET_PEAK_DBFS[1]:g}"
    )
    print(f"velocity-127 C4 RMS dBFS: median {statistics.median(report.c4_rms_dbfs.values()):.1f}")
    print(f"32-voice velocity-127 chord peak dBFS: {report.chord_peak_dbfs:.1f} (target <= 0)")
    for name in sorted(peaks):
        print(f"  {name:<28} peak {peaks[name]:6.1f}  RMS {report.c4_rms_dbfs[name]:6.1f}")
    print(f"switch programs: {[x.switch_program for x in r]}; play options: {report.play_options}")
    print(f"machine: {report.machine}; 48 kHz, {BLOCK} frames, JACK dummy driver")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL, help="(the bundled model)")
    parser.add_argument("--cache-dir", type=Path, help="note cache (default: a fresh temp dir)")
    parser.add_argument("--rounds", type=int, default=3, help="held/knob/switch rounds (3)")
    parser.add_argument("--no-realtime", action="store_true", help="jackd without -R")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("play_options", nargs="*", help="after --: more options for play")
    args = parser.parse_args(argv)
    # The rig (this process: model, recorder; jackd and the silent client, which inherit the
    # flag) stays out of transparent huge pages as play does, so khugepaged's copies of its
    # memory do not hold up JACK's real-time threads: the floor is the machine's, not the rig's.
    no_huge_pages()
    with tempfile.TemporaryDirectory(prefix="gsi-quality-") as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "notes"
        log = Path(tmp) / "play.log"
        realtime = not args.no_realtime
        report = run(args.model, cache_dir, args.rounds, args.play_options, log, realtime)
    print_report(report)
    if args.json:
        data = asdict(report) | {"silent_xruns": report.silent_xruns}
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
