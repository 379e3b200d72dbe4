"""Files written atomically, and checks that a folder can take them.

Atomic writes: a reader (or a crash) never sees a half-written preset, WAV or cache file. Write
to a temporary name in the destination's own directory (same filesystem, so the rename is
atomic), then ``os.replace`` it onto the final name. Any failure removes the temporary file and
surfaces as one ``OutputError`` naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gansynth_instrument.errors import OutputError

_FULL_BELOW_BYTES = 64 * 1024  # less than one of libsndfile's buffered writes


def check_writable_dir(directory: Path, *, create: bool = False) -> Path:
    """Fail early (before minutes of rendering) if ``directory`` cannot take new files."""
    if create:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"{directory}: cannot create directory ({err.strerror})") from None
    if not directory.is_dir():
        raise OutputError(f"{directory}: output directory does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{directory}: output directory is not writable")
    return directory


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix); on success it replaces ``path``.

    The caller writes the whole file to the yielded path. If the body raises, the temporary file
    is deleted and ``path`` is untouched; an ``OSError`` becomes ``OutputError``.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
        )
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({err.strerror})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a saved preset or WAV is an ordinary file
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        tmp.unlink(missing_ok=True)


def no_space_left(directory: Path) -> bool:
    """Whether the filesystem holding ``directory`` is full (for this user). libsndfile reports
    every failed write as "System error.", without the errno: a full disk is told by its free
    space, measured while the failed file still holds what it took."""
    try:
        stat = os.statvfs(directory)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < _FULL_BELOW_BYTES


def disk_full_error() -> OSError:
    """The OSError a write gets on a full disk ("No space left on device")."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
