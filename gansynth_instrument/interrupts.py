"""Ctrl-C held back while C extensions initialise.

A KeyboardInterrupt raised while onnx, ml_dtypes, NumPy or onnxruntime initialises its extension
can leave it half made: an ImportError ("initialization failed"), an abort or a segfault instead
of the clean exit 130 the CLI gives. Held back, the interrupt lands on the first Python line after
the import, where the usual handling takes it.
"""

from __future__ import annotations

import importlib
import signal
from types import ModuleType


def import_whole(name: str) -> ModuleType:
    """``importlib.import_module`` with SIGINT held back from this thread until it returns: a
    lazily imported runtime is either imported whole or not at all."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        return importlib.import_module(name)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return importlib.import_module(name)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
