"""Writing rendered audio to a file as it is made, in the format its name asks for.

The format comes from the extension, through soundfile (libsndfile): ``.wav`` (32-bit float by
default, or ``PCM_16``/``PCM_24``), ``.flac`` (24-bit, or ``PCM_16``), ``.ogg`` (Vorbis). Blocks
are appended as they come, so memory does not grow with the length of the audio; the file is
written under a temporary name and renamed when complete (``fileio.atomic_path``), so a failed or
interrupted render leaves nothing behind. Integer and lossy formats cannot hold samples beyond
full scale: those are clipped to ±1 and counted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from gansynth_instrument.errors import OutputError
from gansynth_instrument.fileio import atomic_path, disk_full_error, no_space_left

# extension → (libsndfile format, default subtype, subtypes allowed)
FORMATS = {
    ".wav": ("WAV", "FLOAT", ("PCM_16", "PCM_24", "FLOAT")),
    ".flac": ("FLAC", "PCM_24", ("PCM_16", "PCM_24")),
    ".ogg": ("OGG", "VORBIS", ("VORBIS",)),
}


def output_format(path: Path, subtype: str | None = None) -> tuple[str, str]:
    """(format, subtype) for ``path``; an OutputError names what is possible otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(FORMATS)
        raise OutputError(f"{path}: unknown audio file extension {suffix!r} (use {known})")
    file_format, default, allowed = FORMATS[suffix]
    if subtype is None:
        return file_format, default
    if subtype.upper() not in allowed:
        raise OutputError(
            f"{path}: {suffix} files take subtype {', '.join(allowed)}, not {subtype!r}"
        )
    return file_format, subtype.upper()


class BlockWriter:
    """Appends [frames, channels] float32 blocks to an open sound file; tracks peak and clips."""

    def __init__(self, file: sf.SoundFile, clip: bool) -> None:
        self._file = file
        self._clip = clip
        self.frames = 0
        self.peak = 0.0
        self.clipped = 0  # samples beyond ±1 clipped for a format that cannot hold them

    def write(self, block: np.ndarray) -> None:
        if not len(block):
            return
        self.peak = max(self.peak, float(np.abs(block).max()))
        if self._clip and self.peak > 1.0:
            over = np.abs(block) > 1.0
            if over.any():
                self.clipped += int(over.sum())
                block = np.clip(block, -1.0, 1.0)
        self._file.write(block)
        self.frames += len(block)


@contextlib.contextmanager
def stream_to_file(
    path: Path, sample_rate: int, channels: int, subtype: str | None = None
) -> Iterator[BlockWriter]:
    """A ``BlockWriter`` for ``path``; the file appears (complete) when the block exits. A write
    that fails (a full disk: "No space left on device") is one OutputError naming ``path``."""
    file_format, chosen = output_format(path, subtype)
    with atomic_path(Path(path)) as tmp:
        try:
            with sf.SoundFile(
                tmp,
                "w",
                samplerate=sample_rate,
                channels=channels,
                format=file_format,
                subtype=chosen,
            ) as file:
                yield BlockWriter(file, clip=chosen != "FLOAT")
        except sf.SoundFileError as err:
            raise (disk_full_error() if no_space_left(tmp.parent) else OSError(str(err))) from None


def copy_scaled(source: Path, writer: BlockWriter, gain: float, block_frames: int = 65536) -> None:
    """``source`` (a sound file) into ``writer`` block by block, each sample times ``gain``: the
    second pass of a loudness-normalised render, in memory that does not grow with the file."""
    factor = np.float32(gain)
    for block in sf.blocks(source, blocksize=block_frames, dtype="float32", always_2d=True):
        writer.write(block * factor)
