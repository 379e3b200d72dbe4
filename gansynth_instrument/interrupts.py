"""Ctrl-C held back while C extensions initialise.

A KeyboardInterrupt raised while onnx, ml_dtypes, NumPy or onnxruntime initialises its extension
can leave it half made: an ImportError ("initialization failed"), an abort or a segfault instead
of the clean exit 130 the CLI gives. Held back, the interrupt lands on the first Python line after
the import, where the usual handling takes it.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold SIGINT back from this thread until the block ends, then let it in."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def import_whole(name: str) -> ModuleType:
    """``importlib.import_module`` with Ctrl-C held back: a lazily imported runtime is either
    imported whole or not at all."""
    with ctrl_c_held():
        return importlib.import_module(name)
