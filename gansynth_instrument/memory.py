"""Process memory policy: keep freed memory in the heap instead of giving it back to the OS.

glibc serves large blocks (32 MiB tensors in training, 384 KB notes in play) with ``mmap`` and
returns them with ``munmap``. Each new block is then page-faulted in again (kernel time), and each
unmap takes the process's memory-map lock and interrupts the other cores running its threads,
the audio thread included. Measured: full-resolution training 2.3× faster (37 of 78 CPU-seconds
per step were page faults). For live play the gain is not clear of this machine's noise: with the
process renderer, 11 and 16 → 5 and 6 xruns in one A/B (``benchmarks/bench_live.py --compare 1``,
two runs each), 14 in a later run. Elsewhere than glibc nothing changes.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def keep_freed_memory() -> None:
    """Serve every block under 1 GiB from the heap and never trim it (for this process)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)
