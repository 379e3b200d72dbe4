"""The child processes this package starts, and the memory it shares with them.

Children are spawned (a fresh interpreter: no copy of the parent's threads or locks) as daemons,
and ended in steps: a wait, then SIGTERM where the child may be asked, then SIGKILL, and always a
final wait, so none is left a zombie. Bulk data crosses as a nameless memory file (memfd on Linux)
whose descriptor goes over the pipe, not through it: a large socket read is one system call that
this kernel does not preempt, while copying out of shared memory is user-space work.

Standard library only: the audio process imports this module.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import recv_handle

SPAWN = multiprocessing.get_context("spawn")


def spawn(target: Callable[..., None], args: tuple, name: str) -> BaseProcess:
    """Start ``target(*args)`` in a spawned daemon process (it dies with this one)."""
    process = SPAWN.Process(target=target, args=args, name=name, daemon=True)
    process.start()
    return process


def end_process(process: BaseProcess, wait_s: float, *, terminate: bool = True) -> int | None:
    """Wait up to ``wait_s`` for ``process`` to exit, then SIGTERM it (if ``terminate``) and wait
    again, then SIGKILL it; returns its exit code once it is reaped."""
    process.join(wait_s)
    if terminate and process.exitcode is None:
        process.terminate()
        process.join(wait_s)
    if process.exitcode is None:
        process.kill()
        process.join()
    return process.exitcode


@contextlib.contextmanager
def shared_file(size: int, name: str) -> Iterator[int]:
    """A descriptor of ``size`` bytes of memory with no path to leak (memfd on Linux, an unlinked
    temporary file elsewhere), closed on exit: passed to another process (``send_handle``), the
    memory is freed when both have closed it."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create(name)
    else:
        fd, path = tempfile.mkstemp(prefix=f"{name}-")
        os.unlink(path)
    try:
        os.ftruncate(fd, size)
        yield fd
    finally:
        os.close(fd)


def map_file(fd: int, size: int, *, populate: bool = False, readonly: bool = False) -> mmap.mmap:
    """Map a shared file. ``populate``: with every page present now (MAP_POPULATE where there is
    one), so that later reads and writes take no page fault (the audio callback's)."""
    if readonly:
        return mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if populate else 0)
    return mmap.mmap(fd, size, flags=flags)


def receive_mapping(
    conn: Connection, size: int, *, populate: bool = False, readonly: bool = False
) -> mmap.mmap:
    """Map the shared file whose descriptor the other process sent over ``conn``."""
    fd = recv_handle(conn)
    try:
        return map_file(fd, size, populate=populate, readonly=readonly)
    finally:
        os.close(fd)
