"""Process memory policy: keep freed memory in the heap, and (live play) no huge pages.

glibc serves large blocks (32 MiB tensors in training, 384 KB notes in play) with ``mmap`` and
returns them with ``munmap``. Each new block is then page-faulted in again (kernel time), and each
unmap takes the process's memory-map lock and interrupts the other cores running its threads,
the audio thread included. Kept in the heap, training spends far less time in page faults, and
play puts less kernel work beside the audio. Elsewhere than glibc nothing changes.

Transparent huge pages: NumPy asks for them on arrays of 4 MiB and more, and the kernel's
``khugepaged`` then copies scattered pages into 2 MiB ones in the background, 2 MiB at a time
in one non-preemptible stretch, which JACK's real-time threads then wait behind (the README's
``rt_delays.py`` section). So live play opts its processes out.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_PR_SET_THP_DISABLE = 41  # Linux prctl option


def keep_freed_memory() -> None:
    """Serve every block under 1 GiB from the heap and never trim it (for this process)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)


def no_huge_pages() -> None:
    """Keep this process, and every process it starts from now on (the flag is inherited, also
    across exec), out of transparent huge pages, so khugepaged leaves its memory alone. On a
    kernel without the option (before 3.15) the call fails and nothing changes."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None).prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0)
