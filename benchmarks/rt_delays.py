"""Who keeps JACK's real-time threads waiting: a command run under ftrace and perf, its delays.

    sudo python benchmarks/rt_delays.py [--threshold-ms 1] [--top 12] -- COMMAND ...
    e.g. ... -- python benchmarks/stress.py --short --model tiny.onnx

Why: on this VM the kernel does not preempt kernel code (PREEMPT_NONE), so a thread that stays in
one system call or page fault for milliseconds keeps a real-time thread woken on its CPU waiting
for as long, and JACK's cycle misses its deadline. xrun counters say that it happened, not who did
it. This records every scheduler switch and wake-up (ftrace, monotonic clock) and perf's kernel
stack samples on the same clock while COMMAND runs, then, for every wake-up of a real-time thread
(SCHED_FIFO/RR) that waited longer than ``--threshold-ms`` to run, prints what ran on that CPU
meanwhile and the kernel stack perf caught it in. Only COMMAND's own threads count as waiting
(it and every process and thread it starts, JACK servers included, followed through the trace's
fork events): other jobs on the machine may run JACK servers of their own, whose waits are
theirs. Each wait says whether what ran meanwhile was COMMAND's ("ours") or another job's.
Traced this way (with the one-off scripts this
grew from), the player's socket read of rendered notes and khugepaged's huge-page copies came up
(see note_workers._send_notes and memory.no_huge_pages).

Needs root, tracefs and ``perf`` (Debian: linux-perf); without perf the stacks are left out.
Nothing is asserted: a diagnostic, not a test.
"""

from __future__ import annotations

import argparse
import bisect
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRACEFS = Path("/sys/kernel/tracing")
EVENTS = "sched:sched_switch sched:sched_waking sched:sched_process_fork"
BUFFER_KB = 131072  # per CPU: a 2-minute benchmark's switches fit
PERF_HZ = 4000
RT_PRIO_MAX = 99  # kernel priorities below 100 are real-time
STACK_FRAMES = 8

LINE = re.compile(
    r"^\s*(?:.+?)-(\d+)\s+\(\s*([\d-]+)\)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+(\w+):\s(.*)$"
)
WAKING = re.compile(r"comm=(.+?) pid=(\d+) prio=(\d+)")
SWITCH = re.compile(
    r"prev_comm=(.+?) prev_pid=(\d+) .* ==> next_comm=(.+?) next_pid=(\d+) next_prio=(\d+)"
)
FORK = re.compile(r"pid=(\d+) child_comm=(.+?) child_pid=(\d+)")
SAMPLE = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):")


@dataclass(frozen=True)
class Delay:
    """A real-time thread woken at ``woken_s`` that ran only at ``ran_s``, after ``displaced``."""

    woken_s: float
    ran_s: float
    cpu: int
    waiting: str
    displaced: str
    ours: bool  # what ran meanwhile was COMMAND's

    @property
    def ms(self) -> float:
        return 1e3 * (self.ran_s - self.woken_s)


@dataclass(frozen=True)
class Sample:
    time_s: float
    cpu: int
    thread: str
    stack: tuple[str, ...]


def write(name: str, value: str) -> None:
    (TRACEFS / name).write_text(value)


SETTINGS = ("trace_clock", "buffer_size_kb", "options/record-tgid")  # changed, then put back


def start_tracing() -> dict[str, str]:
    """Record EVENTS from now on; returns the settings it changed, for ``stop_tracing``."""
    if not (TRACEFS / "trace").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], check=True)
    saved = {name: (TRACEFS / name).read_text().strip() for name in SETTINGS}
    saved["trace_clock"] = re.search(r"\[(\w+)\]", saved["trace_clock"]).group(1)  # type: ignore[union-attr]
    # A buffer never resized reads "7 (expanded: 1408)": the size to write back is the latter.
    saved["buffer_size_kb"] = re.findall(r"\d+", saved["buffer_size_kb"])[-1]
    write("tracing_on", "0")
    write("trace", "")
    write("trace_clock", "mono")
    write("buffer_size_kb", str(BUFFER_KB))
    write("options/record-tgid", "1")
    write("set_event", EVENTS)
    write("tracing_on", "1")
    return saved


def stop_tracing(out: Path, saved: dict[str, str]) -> None:
    """Copy the trace to ``out``, then leave tracefs as it was (the buffers freed)."""
    write("tracing_on", "0")
    with (TRACEFS / "trace").open() as trace, out.open("w") as copy:
        shutil.copyfileobj(trace, copy)
    write("set_event", "")
    write("trace", "")
    for name, value in saved.items():
        write(name, value)


def delays(trace: Path, threshold_ms: float, root: int) -> tuple[list[Delay], np.ndarray]:
    """Every real-time wake-up → switch-in of a thread of ``root``'s tree (``root`` and what it
    forked): those over ``threshold_ms``, and all waits in ms."""
    woken: dict[int, tuple[float, str]] = {}
    process: dict[int, str] = {}
    tree = {root}
    waits, late = [], []
    with trace.open() as lines:
        for line in lines:
            m = LINE.match(line)
            if m is None:
                continue
            tid, tgid, cpu, time_s, event, rest = m.groups()
            process[int(tid)] = tgid
            if event == "sched_process_fork":
                f = FORK.search(rest)
                if f and int(f.group(1)) in tree:
                    tree.add(int(f.group(3)))
            elif event == "sched_waking":
                w = WAKING.match(rest)
                wakee = int(w.group(2)) if w else 0
                if w and int(w.group(3)) <= RT_PRIO_MAX and wakee in tree and wakee not in woken:
                    woken[wakee] = (float(time_s), w.group(1))
            elif event == "sched_switch":
                s = SWITCH.search(rest)
                if s is None:
                    continue
                prev, nxt = int(s.group(2)), int(s.group(4))
                woken.pop(prev, None)  # it was running: a wake-up meanwhile was no wait
                if nxt in woken:
                    since_s, name = woken.pop(nxt)
                    waits.append(1e3 * (float(time_s) - since_s))
                    if waits[-1] > threshold_ms:
                        late.append(
                            Delay(
                                since_s,
                                float(time_s),
                                int(cpu),
                                f"{name}/{nxt} (process {process.get(nxt, '?')})",
                                f"{s.group(1)}/{prev} (process {process.get(prev, '?')})",
                                prev in tree,
                            )
                        )
    return late, np.array(waits)


def samples(perf_data: Path) -> list[Sample]:
    """perf's samples with their kernel stacks (innermost first), sorted by time."""
    text = subprocess.run(
        ["perf", "script", "-i", str(perf_data), "-F", "comm,pid,tid,cpu,time,ip,sym"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out = []
    for block in text.split("\n\n"):
        rows = block.strip("\n").splitlines()
        head = SAMPLE.match(rows[0]) if rows else None
        if head is None:
            continue
        frames = tuple(row.split()[-1] for row in rows[1:] if row.split())
        thread = f"{head.group(1)}/{head.group(3)}"
        out.append(Sample(float(head.group(5)), int(head.group(4)), thread, frames))
    out.sort(key=lambda s: s.time_s)
    return out


def culprit(delay: Delay, stacks: list[Sample], times: list[float]) -> str:
    """The most frequent sampled stack on the delay's CPU while the thread waited."""
    lo, hi = bisect.bisect_left(times, delay.woken_s), bisect.bisect_right(times, delay.ran_s)
    seen = Counter(
        f"{s.thread}: " + " < ".join(s.stack[:STACK_FRAMES])
        for s in stacks[lo:hi]
        if s.cpu == delay.cpu
    )
    if not seen:
        return "(no sample)"
    (stack, count), total = seen.most_common(1)[0], sum(seen.values())
    return f"{count}/{total} samples: {stack}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold-ms", type=float, default=1.0, help="report waits above this")
    parser.add_argument("--top", type=int, default=12, help="longest waits to list")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    if not TRACEFS.parent.exists() or not Path("/proc/self").exists():
        sys.exit("rt_delays: needs Linux with tracefs")
    perf = shutil.which("perf")
    with tempfile.TemporaryDirectory() as tmp:
        trace, perf_data = Path(tmp) / "trace.txt", Path(tmp) / "perf.data"
        recorder = None
        if perf is not None:
            perf_command = [perf, "record", "-e", "cpu-clock", "-F", str(PERF_HZ), "-a", "-g"]
            recorder = subprocess.Popen(
                [*perf_command, "-k", "CLOCK_MONOTONIC", "-o", str(perf_data)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # perf is sampling before the command starts
        try:
            saved = start_tracing()
        except PermissionError:
            sys.exit("rt_delays: writing to /sys/kernel/tracing needs root")
        try:
            child = subprocess.Popen(command)
            code = child.wait()
        finally:
            stop_tracing(trace, saved)
            if recorder is not None:
                recorder.send_signal(signal.SIGINT)
                recorder.wait()
        late, waits = delays(trace, args.threshold_ms, child.pid)
        stacks = samples(perf_data) if recorder is not None else []
    times = [s.time_s for s in stacks]
    late.sort(key=lambda d: -d.ms)
    print(f"\nrt_delays: command exited {code}")
    if not len(waits):
        print("no real-time thread of the command was woken (is JACK running with -R?)")
        return
    ours = sum(d.ours for d in late)
    print(
        f"real-time wake-ups of the command's threads {len(waits)}: median "
        f"{np.median(waits):.3f} ms, p99 {np.percentile(waits, 99):.3f} ms, max "
        f"{waits.max():.2f} ms; over 0.5 ms {(waits > 0.5).sum()}, over 1 ms {(waits > 1).sum()}; "
        f"over {args.threshold_ms:g} ms behind the command's own threads {ours}, behind "
        f"other jobs' {len(late) - ours}"
    )
    print(f"\n{'wait ms':>8}  {'cpu':>3}  waiting thread -> what ran on that CPU meanwhile")
    for d in late[: args.top]:
        whose = "ours" if d.ours else "other"
        print(f"{d.ms:8.2f}  {d.cpu:3d}  {d.waiting} -> {d.displaced} [{whose}]")
        if recorder is not None:
            print(f"{'':15}{culprit(d, stacks, times)}")
    if recorder is None:
        print("(perf not found: no kernel stacks; Debian: apt-get install linux-perf)")


if __name__ == "__main__":
    main()
