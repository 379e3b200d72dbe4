"""Process memory policy: keep freed memory in the heap, (live play) no huge pages, and a
real-time process settled once its set-up is done.

glibc serves large blocks (32 MiB tensors in training, 384 KB notes in play) with ``mmap`` and
returns them with ``munmap``. Each new block is then page-faulted in again (kernel time), and each
unmap takes the process's memory-map lock and interrupts the other cores running its threads,
the audio thread included. Kept in the heap, training spends far less time in page faults, and
play puts less kernel work beside the audio. Elsewhere than glibc nothing changes.

Transparent huge pages: NumPy asks for them on arrays of 4 MiB and more, and the kernel's
``khugepaged`` then copies scattered pages into 2 MiB ones in the background, 2 MiB at a time
in one non-preemptible stretch, which JACK's real-time threads then wait behind (the README's
``rt_delays.py`` section). So live play opts its processes out.

The audio process, whose one busy thread is the real-time callback, is settled once it is set
up (``settle_for_realtime``): the garbage collector is switched off after one last collection,
what exists frozen (a collection would otherwise run in whichever thread allocates next, the
callback included, and walk every object), and its memory is locked where the system allows
(``mlockall``), so that no page the callback touches is ever reclaimed and faulted back in.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from dataclasses import dataclass

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_PR_SET_THP_DISABLE = 41  # Linux prctl option
_MCL_CURRENT, _MCL_ONFAULT = 1, 4  # Linux mlockall flags


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


@dataclass(frozen=True)
class Settled:
    """What ``settle_for_realtime`` did: objects frozen, whether the collector still runs, and
    whether the memory is locked (else why not)."""

    frozen_objects: int
    collector_on: bool
    memory_locked: bool
    why_not_locked: str = ""


def settle_for_realtime() -> Settled:
    """Collect once, freeze every object (the collector never walks them again), switch the
    collector off (what the callback allocates is freed by reference counting: it makes no
    cycles), and lock the pages mapped now, each as it is faulted in (``MCL_ONFAULT``: nothing
    extra is read in; the shared note arena is mapped with every page present already). Locking
    fails soft: without the right (root, or ``ulimit -l`` as large as the process) it is skipped
    and ``why_not_locked`` says why. Only pages mapped now are locked: a limit then never fails a
    later allocation."""
    gc.collect()
    gc.freeze()
    gc.disable()
    locked, why = False, "not Linux"
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        locked = libc.mlockall(_MCL_CURRENT | _MCL_ONFAULT) == 0
        why = "" if locked else f"mlockall: {os.strerror(ctypes.get_errno())}"
    return Settled(gc.get_freeze_count(), gc.isenabled(), locked, why)
