"""The dataset folder ``train`` reads: 4 s, 16 kHz notes labelled with their pitch.

Notes come from recordings and one-shots (``recordings``: ``dataset chop``/``pad``, then
``make``) or from a soundfont (``soundfont``: ``dataset from-soundfont``), labelled by
``pitch_labels``. ``write_dataset`` writes the folder:

* ``index.json`` + ``audio.npy`` (int16 [notes, 64000]): ours, what ``train`` reads
  (``read_dataset``);
* ``data.tfrecord`` + ``meta.json``: Magenta's NSynth format (``tf.train.Example`` per note,
  ``tfrecord``: ``audio`` float[64000], ``pitch``, ``velocity``, ``instrument_source``,
  ``instrument_family``, ``qualities`` int64[10], ``note_str``, ``instrument_str``), for
  Magenta's and the course's trainers (``train_data_path`` / ``train_meta_path``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gansynth_instrument.errors import DatasetError
from gansynth_instrument.fileio import atomic_path, check_writable_dir, write_text_atomic
from gansynth_instrument.training.tfrecord import example_bytes, tfrecord_frame

SAMPLE_RATE = 16000
NOTE_SAMPLES = 64000  # 4 s: GANSynth's audio_length
AUDIO_SUFFIXES = (".wav", ".aif", ".aiff", ".flac", ".ogg", ".mp3")
NOTE_NAME = re.compile(r"^(.+)_(\d+)\.wav$")  # make_dataset.py's <instrument>_<pitch>.wav
INDEX_JSON = "index.json"
AUDIO_NPY = "audio.npy"
TFRECORD = "data.tfrecord"
META_JSON = "meta.json"
FORMAT = "gansynth-instrument dataset"
FORMAT_VERSION = 1
NSYNTH_PITCHES = (24, 84)  # the released models' range and the soundfont default
INT16_SCALE = 32767.0  # make_dataset.py writes audio as int16 / 32767


@dataclass
class Summary:
    """What a command kept and dropped, and why; printed as one paragraph."""

    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def line(self, what: str) -> str:
        total = self.kept + sum(self.dropped.values())
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.dropped.most_common())
        return f"kept {self.kept} of {total} {what}" + (f"; dropped: {reasons}" if reasons else "")


@dataclass(frozen=True)
class Note:
    """One 4 s note of a dataset."""

    instrument: str
    pitch: int
    audio: np.ndarray  # float32 [NOTE_SAMPLES] at SAMPLE_RATE
    velocity: int = 100

    @property
    def name(self) -> str:
        return f"{self.instrument}_{self.pitch}"


def _nsynth_features(note: Note) -> dict[str, bytes | list[int] | np.ndarray]:
    audio = np.round(np.clip(note.audio, -1.0, 1.0) * INT16_SCALE) / INT16_SCALE
    return {
        "note_str": f"{note.instrument}-{note.pitch:03d}-{note.velocity:03d}".encode(),
        "instrument_str": note.instrument.encode(),
        "pitch": [note.pitch],
        "velocity": [note.velocity],
        "sample_rate": [SAMPLE_RATE],
        "audio": audio.astype(np.float32),
        "qualities": [0] * 10,
        "instrument_source": [0],
        "instrument_family": [0],
    }


def write_dataset(notes: Iterable[Note], count: int, out_dir: Path) -> Path:
    """Write ours (index.json + audio.npy) and Magenta's (data.tfrecord + meta.json) formats.

    Each file is written under a temporary name and renamed into place when complete.
    """
    check_writable_dir(out_dir, create=True)
    index: list[dict[str, object]] = []
    meta: dict[str, dict[str, object]] = {}
    audio = np.zeros((count, NOTE_SAMPLES), np.int16)
    with atomic_path(out_dir / TFRECORD) as tmp, tmp.open("wb") as records:
        for row, note in enumerate(tqdm(notes, total=count, desc="writing", unit="note", delay=1)):
            if note.name in meta:
                raise DatasetError(f"{out_dir}: two notes named '{note.name}'")
            audio[row] = np.round(np.clip(note.audio, -1.0, 1.0) * INT16_SCALE)
            records.write(tfrecord_frame(example_bytes(_nsynth_features(note))))
            index.append(
                {"name": note.name, "instrument": note.instrument, "pitch": note.pitch,
                 "velocity": note.velocity}
            )  # fmt: skip
            meta[note.name] = {
                "instrument_str": note.instrument,
                "pitch": note.pitch,
                "velocity": note.velocity,
                "instrument_source": 0,
                "instrument_family": 0,
                "qualities": [0] * 10,
            }
    with atomic_path(out_dir / AUDIO_NPY) as tmp:
        np.save(tmp, audio)
    write_text_atomic(out_dir / META_JSON, json.dumps(meta, indent=1) + "\n")
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "sample_rate": SAMPLE_RATE,
        "audio_length": NOTE_SAMPLES,
        "notes": index,
    }
    write_text_atomic(out_dir / INDEX_JSON, json.dumps(header, indent=1) + "\n")
    return out_dir


@dataclass(frozen=True)
class Dataset:
    """A dataset folder as ``train`` sees it: labels and int16 audio (memory-mapped)."""

    path: Path
    pitches: np.ndarray  # int64 [notes]
    instruments: tuple[str, ...]
    audio: np.ndarray  # int16 [notes, NOTE_SAMPLES]

    def note(self, row: int) -> np.ndarray:
        return self.audio[row].astype(np.float32) / INT16_SCALE


def read_dataset(path: Path) -> Dataset:
    """Open a folder written by ``make``/``from-soundfont``; one clear error if it is not one."""
    index_path = Path(path) / INDEX_JSON
    try:
        header = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(
            f"{path}: no {INDEX_JSON} (make one with 'gansynth-instrument dataset make' or "
            "'dataset from-soundfont')"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"{index_path}: cannot read ({err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DatasetError(f"{index_path}: not a {FORMAT} index")
    notes = header.get("notes")
    if not isinstance(notes, list) or not notes:
        raise DatasetError(f"{index_path}: 'notes' is missing or empty")
    try:
        pitches = np.array([int(n["pitch"]) for n in notes], np.int64)
        instruments = tuple(str(n["instrument"]) for n in notes)
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{index_path}: every note needs 'pitch' and 'instrument'") from None
    try:
        audio = np.load(Path(path) / AUDIO_NPY, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise DatasetError(f"{Path(path) / AUDIO_NPY}: cannot read ({err})") from None
    if audio.dtype != np.int16 or audio.shape != (len(notes), NOTE_SAMPLES):
        raise DatasetError(
            f"{Path(path) / AUDIO_NPY}: {audio.dtype} {list(audio.shape)}, expected int16 "
            f"[{len(notes)}, {NOTE_SAMPLES}] (one row per note of {INDEX_JSON})"
        )
    return Dataset(path=Path(path), pitches=pitches, instruments=instruments, audio=audio)
