"""Dataset tools: recordings and soundfonts → 4 s, 16 kHz notes labelled with their pitch.

The course's ``chop``/``pad``/``make_dataset`` (``shared/docs/course-tooling.md``) label every
note pitch 32 and keep silence; here each note is labelled by its detected fundamental (YIN),
silent and unpitched notes are dropped, and each step returns what it kept and dropped, and why.

``chop`` and ``pad`` write WAVs named ``<instrument>_<pitch>.wav`` (16-bit, 16 kHz, mono, 4 s),
the course's naming, so ``make`` (or the course's own make_dataset.py) reads them. ``make`` and
``from-soundfont`` write a dataset folder:

* ``index.json`` + ``audio.npy`` (int16 [notes, 64000]): ours, what ``train`` reads;
* ``data.tfrecord`` + ``meta.json``: Magenta's NSynth format (``tf.train.Example`` per note:
  ``audio`` float[64000], ``pitch``, ``velocity``, ``instrument_source``, ``instrument_family``,
  ``qualities`` int64[10], ``note_str``, ``instrument_str``), for Magenta's and the course's
  trainers (``train_data_path`` / ``train_meta_path``).
"""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft
import soundfile
import soxr
from tqdm import tqdm

from gansynth_instrument.checksum import masked_crc32c
from gansynth_instrument.errors import DatasetError
from gansynth_instrument.fileio import atomic_path, check_writable_dir, write_text_atomic

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

# YIN (de Cheveigné & Kawahara 2002) settings for notes from MIDI 21 (27.5 Hz) up.
_YIN_WINDOW = 1024  # integration window; lags up to this (15.6 Hz)
_YIN_THRESHOLD = 0.15  # first dip of the normalised difference below this is the period
_YIN_MIN_LAG = 3  # 5.3 kHz: far above any note we label
_VOICED_FRACTION = 0.5  # fewer periodic frames than this: the note is unpitched
_LOUD_RANGE_DB = 20.0  # analyse frames within this of the loudest one (skips the silent tail)


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


# ---------------------------------------------------------------------------------------------
# Analysis


def hz_to_midi(frequency_hz: float) -> float:
    return 69.0 + 12.0 * np.log2(frequency_hz / 440.0)


def level_db(audio: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3 dB)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20.0 * np.log10(max(rms, 1e-12))


def detect_pitch(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float | None:
    """Fundamental of a note as a (fractional) MIDI number, or None when it is not periodic.

    YIN on frames of the loud part of the note: the cumulative-mean-normalised difference
    function, its first dip below 0.15 (the shortest clear period, so octave-down errors are
    rare), refined to a fraction of a sample by a parabola. The note's pitch is the median over
    its frames; fewer than half periodic frames means unpitched (noise, clicks, chords).
    """
    x = np.asarray(audio, dtype=np.float64)
    hop = _YIN_WINDOW
    length = 2 * _YIN_WINDOW
    if x.size < length:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(x, length)[::hop]
    energy = np.sum(frames**2, axis=1)
    if energy.max() <= 0:
        return None
    loud = frames[energy >= energy.max() * 10 ** (-_LOUD_RANGE_DB / 10)]
    # d(τ) = Σ_j<W (x_j - x_j+τ)² = E(0) + E(τ) - 2 r(τ), r by FFT cross-correlation.
    n_fft = scipy.fft.next_fast_len(2 * length)
    head = scipy.fft.rfft(loud[:, :_YIN_WINDOW], n_fft)
    full = scipy.fft.rfft(loud, n_fft)
    corr = scipy.fft.irfft(np.conj(head) * full, n_fft)[:, : _YIN_WINDOW + 1]
    squares = np.concatenate([np.zeros((len(loud), 1)), np.cumsum(loud**2, axis=1)], axis=1)
    lags = np.arange(_YIN_WINDOW + 1)
    shifted = squares[:, lags + _YIN_WINDOW] - squares[:, lags]
    diff = squares[:, [_YIN_WINDOW]] + shifted - 2.0 * corr
    diff[:, 0] = 0.0
    running = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, _YIN_WINDOW + 1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(running, 1e-12)
    pitches = []
    for row in cmnd:
        below = np.flatnonzero(row[_YIN_MIN_LAG:-1] < _YIN_THRESHOLD)
        if below.size == 0:
            continue
        lag = below[0] + _YIN_MIN_LAG
        while lag + 1 < len(row) - 1 and row[lag + 1] < row[lag]:
            lag += 1
        left, mid, right = row[lag - 1], row[lag], row[lag + 1]
        curvature = left - 2 * mid + right
        offset = 0.5 * (left - right) / curvature if curvature > 0 else 0.0
        pitches.append(hz_to_midi(sample_rate / (lag + offset)))
    if len(pitches) < _VOICED_FRACTION * len(loud):
        return None
    return float(np.median(pitches))


def label_note(
    audio: np.ndarray, *, silence_db: float, pitch_range: tuple[int, int], fixed_pitch: int | None
) -> tuple[int | None, str | None]:
    """(MIDI pitch, None) for a keepable note, else (None, why it is dropped)."""
    if level_db(audio) < silence_db:
        return None, f"silent (below {silence_db:g} dBFS RMS)"
    if fixed_pitch is not None:
        return fixed_pitch, None
    detected = detect_pitch(audio)
    if detected is None:
        return None, "unpitched"
    pitch = round(detected)
    if not pitch_range[0] <= pitch <= pitch_range[1]:
        return None, f"pitch outside {pitch_range[0]}..{pitch_range[1]}"
    return pitch, None


# ---------------------------------------------------------------------------------------------
# Reading and writing audio


def load_audio(path: Path) -> np.ndarray:
    """Any file libsndfile reads → float32 mono at 16 kHz (channels averaged, soxr resampling)."""
    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as err:
        raise DatasetError(f"{path}: cannot read audio ({err})") from None
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        soundfile.write(tmp, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")


def _audio_files(in_dir: Path, recursive: bool) -> list[Path]:
    if not in_dir.is_dir():
        raise DatasetError(f"{in_dir}: no such folder")
    pattern = "**/*" if recursive else "*"
    files = sorted(
        p for p in in_dir.glob(pattern) if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
    )
    if not files:
        raise DatasetError(f"{in_dir}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return files


def _slug(text: str) -> str:
    """A file-name-safe instrument name (no '_' so ``<instrument>_<pitch>`` parses back)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "sound"


def chop(
    in_dir: Path,
    out_dir: Path,
    *,
    hop_samples: int = NOTE_SAMPLES,
    silence_db: float = -50.0,
    pitch_range: tuple[int, int] = NSYNTH_PITCHES,
    fixed_pitch: int | None = None,
) -> Summary:
    """Cut recordings into 4 s windows every ``hop_samples``; keep the pitched, non-silent ones.

    As the course's chop.py, the last partial window is dropped. Window k of ``song.wav``
    becomes ``song-<k>_<pitch>.wav``.
    """
    if hop_samples < 1:
        raise DatasetError(f"--hop-s must be positive, got {hop_samples / SAMPLE_RATE:g} s")
    files = _audio_files(in_dir, recursive=False)
    check_writable_dir(out_dir, create=True)
    summary = Summary()
    for path in tqdm(files, desc="chop", unit="file", delay=1.0):
        audio = load_audio(path)
        starts = range(0, audio.size - NOTE_SAMPLES + 1, hop_samples)
        if not starts:
            summary.dropped["file shorter than 4 s"] += 1
        for k, start in enumerate(starts):
            window = audio[start : start + NOTE_SAMPLES]
            pitch, why = label_note(
                window, silence_db=silence_db, pitch_range=pitch_range, fixed_pitch=fixed_pitch
            )
            if why is not None:
                summary.dropped[why] += 1
                continue
            _write_wav(out_dir / f"{_slug(path.stem)}-{k}_{pitch}.wav", window)
            summary.kept += 1
    return summary


def pad(
    in_dir: Path,
    out_dir: Path,
    *,
    silence_db: float = -50.0,
    pitch_range: tuple[int, int] = NSYNTH_PITCHES,
    fixed_pitch: int | None = None,
) -> Summary:
    """One-shots (searched recursively) → peak-normalised, zero-padded or cut to 4 s.

    The silence rule is applied before normalising. ``kit/snare.wav`` becomes
    ``kit-snare_<pitch>.wav``.
    """
    files = _audio_files(in_dir, recursive=True)
    check_writable_dir(out_dir, create=True)
    summary = Summary()
    for path in tqdm(files, desc="pad", unit="file", delay=1.0):
        audio = load_audio(path)[:NOTE_SAMPLES]
        note = np.zeros(NOTE_SAMPLES, np.float32)
        note[: audio.size] = audio
        pitch, why = label_note(
            note[: max(audio.size, 1)],
            silence_db=silence_db,
            pitch_range=pitch_range,
            fixed_pitch=fixed_pitch,
        )
        if why is not None:
            summary.dropped[why] += 1
            continue
        note /= np.abs(note).max()
        name = _slug("-".join(path.relative_to(in_dir).with_suffix("").parts))
        _write_wav(out_dir / f"{name}_{pitch}.wav", note)
        summary.kept += 1
    return summary


def read_note_files(in_dir: Path) -> list[Note]:
    """``<instrument>_<pitch>.wav`` files, each checked to be 16 kHz mono and exactly 4 s."""
    if not in_dir.is_dir():
        raise DatasetError(f"{in_dir}: no such folder")
    notes = []
    paths = sorted(p for p in in_dir.iterdir() if p.suffix.lower() == ".wav")
    for path in tqdm(paths, desc="reading notes", unit="file", delay=1.0):
        match = NOTE_NAME.match(path.name)
        if not match:
            raise DatasetError(f"{path}: name is not <instrument>_<pitch>.wav")
        try:
            info = soundfile.info(path)
        except (soundfile.LibsndfileError, RuntimeError) as err:
            raise DatasetError(f"{path}: cannot read audio ({err})") from None
        if (info.samplerate, info.channels, info.frames) != (SAMPLE_RATE, 1, NOTE_SAMPLES):
            raise DatasetError(
                f"{path}: {info.samplerate} Hz, {info.channels} channel(s), {info.frames} frames; "
                f"a note must be {SAMPLE_RATE} Hz mono with exactly {NOTE_SAMPLES} frames (4 s; "
                "'dataset chop' or 'dataset pad' make such files)"
            )
        pitch = int(match.group(2))
        if pitch > 127:
            raise DatasetError(f"{path}: pitch {pitch} in the name is not a MIDI note (0..127)")
        audio, _ = soundfile.read(path, dtype="float32")
        notes.append(Note(instrument=match.group(1), pitch=pitch, audio=audio))
    if not notes:
        raise DatasetError(f"{in_dir}: no <instrument>_<pitch>.wav notes")
    return notes


# ---------------------------------------------------------------------------------------------
# TFRecord + tf.train.Example, written by hand (no TensorFlow needed)


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 → two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value: bytes | list[int] | np.ndarray) -> bytes:
    """``tf.train.Feature``: bytes_list (1), float_list (2) or int64_list (3), packed values."""
    if isinstance(value, bytes):
        return _field(1, _field(1, value))
    if isinstance(value, np.ndarray):
        return _field(2, _field(1, value.astype("<f4").tobytes()))
    return _field(3, _field(1, b"".join(_varint(v) for v in value)))


def example_bytes(features: dict[str, bytes | list[int] | np.ndarray]) -> bytes:
    """A serialised ``tf.train.Example`` (Features = map<string, Feature> as field 1)."""
    entries = b"".join(
        _field(1, _field(1, key.encode()) + _field(2, _feature(value)))
        for key, value in features.items()
    )
    return _field(1, entries)


def tfrecord_frame(record: bytes) -> bytes:
    """TFRecord framing: length u64, masked CRC32C of it, the record, masked CRC32C of it."""
    length = struct.pack("<Q", len(record))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + record
        + struct.pack("<I", masked_crc32c(record))
    )


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


# ---------------------------------------------------------------------------------------------
# The dataset folder


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


# ---------------------------------------------------------------------------------------------
# Soundfonts


def render_soundfont(
    sf2: Path,
    *,
    programs: Mapping[int, tuple[int, ...]],
    pitches: tuple[int, ...],
    hold_s: float = 3.0,
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """Yield (program, velocity, pitch, float32 mono 4 s) per note, NSynth-style, for each
    program at each of its velocities (``programs``: program → velocities).

    Each note is held ``hold_s`` then released, rendered by FluidSynth at 16 kHz with reverb and
    chorus off, from a silent synth (all sounds off between notes).
    """
    try:
        import fluidsynth
    except ImportError:
        raise DatasetError(
            "from-soundfont needs pyfluidsynth and the FluidSynth library: pip install "
            "'gansynth-instrument[soundfont]' and e.g. apt-get install libfluidsynth3"
        ) from None
    if not Path(sf2).is_file():
        raise DatasetError(f"{sf2}: no such file")
    synth = fluidsynth.Synth(
        gain=0.5,
        samplerate=float(SAMPLE_RATE),
        **{"synth.reverb.active": 0, "synth.chorus.active": 0},
    )
    try:
        font = synth.sfload(str(sf2))
        if font < 0:
            raise DatasetError(f"{sf2}: FluidSynth cannot load this soundfont")
        hold = round(hold_s * SAMPLE_RATE)
        for program, velocities in programs.items():
            if synth.program_select(0, font, 0, program) != 0:
                raise DatasetError(f"{sf2}: no preset for program {program} in bank 0")
            for velocity in velocities:
                for pitch in pitches:
                    synth.noteon(0, pitch, velocity)
                    held = synth.get_samples(hold)
                    synth.noteoff(0, pitch)
                    released = synth.get_samples(NOTE_SAMPLES - hold)
                    synth.all_sounds_off(0)
                    synth.get_samples(SAMPLE_RATE // 10)  # let the voices end
                    stereo = np.concatenate([held, released]).reshape(-1, 2)
                    yield program, velocity, pitch, stereo.mean(axis=1, dtype=np.float32) / 32768
    finally:
        synth.delete()


def from_soundfont(
    sf2: Path,
    out_dir: Path,
    *,
    programs: Mapping[int, tuple[int, ...]],
    pitch_range: tuple[int, int] = NSYNTH_PITCHES,
    silence_db: float = -50.0,
    max_detune_cents: float | None = 50.0,
) -> Summary:
    """Render a soundfont's notes (``programs``: program → its velocities) and write the
    dataset; labels are the played pitches.

    The loudest note is scaled to peak 0.9 (one gain for all, so velocity stays audible). Notes a
    preset does not sound, and (unless ``max_detune_cents`` is None) notes whose detected pitch is
    further than that from the played one, are dropped: out-of-tune samples teach the wrong pitch.
    """
    pitches = tuple(range(pitch_range[0], pitch_range[1] + 1))
    total = sum(len(v) for v in programs.values()) * len(pitches)
    rendered = list(
        tqdm(
            render_soundfont(sf2, programs=programs, pitches=pitches),
            total=total,
            desc="rendering",
            unit="note",
            delay=1.0,
        )
    )
    peak = max((float(np.abs(a).max()) for *_, a in rendered), default=0.0)
    gain = 0.9 / peak if peak > 0 else 1.0
    summary = Summary()
    notes = []
    for program, velocity, pitch, audio in rendered:
        audio = audio * np.float32(gain)
        if level_db(audio) < silence_db:
            summary.dropped[f"silent (below {silence_db:g} dBFS RMS)"] += 1
            continue
        if max_detune_cents is not None:
            detected = detect_pitch(audio)
            if detected is None or abs(detected - pitch) * 100 > max_detune_cents:
                summary.dropped[f"detected pitch > {max_detune_cents:g} cents off"] += 1
                continue
        notes.append(Note(f"program{program:03d}-v{velocity:03d}", pitch, audio, velocity))
    summary.kept = len(notes)
    if not notes:
        raise DatasetError(f"{sf2}: no usable notes ({summary.line('notes')})")
    write_dataset(iter(notes), len(notes), out_dir)
    return summary
