"""An exported instrument model: pick an inference backend, run the generator, post-process.

``load_model(path)`` reads the ModelInfo the exporter stored in the ONNX file, then runs the graph
on the fastest backend that really works here:

* ``cuda``: onnxruntime-gpu's CUDA provider, tried only when the CUDA driver reports a device (so a
  CPU-only machine never sees CUDA loader errors) and kept only when the session really runs on it;
* ``openvino``: OpenVINO's CPU runtime on the same ONNX file: the faster CPU backend on the 2-core
  AVX-512 machine this project is benchmarked on (benchmarks/bench_generate.py), and the only one
  offering bf16 (``precision="bf16"``: ~2× faster there, audibly different);
* ``cpu``: onnxruntime's CPU provider, the fallback that exists everywhere.

Post-processing (``spectral.spectrogram_to_audio``) is NumPy, the same on every backend.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import io
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np
import onnx

from gansynth_instrument.errors import ModelError
from gansynth_instrument.interrupts import import_whole
from gansynth_instrument.model.metadata import (
    INPUT_LATENT,
    INPUT_PITCH,
    OUTPUT_SPECTROGRAM,
    ModelInfo,
    check_pitches,
)
from gansynth_instrument.model.spectral import spectrogram_to_audio

BACKENDS = ("auto", "cuda", "openvino", "cpu")
# onnxruntime's documented full opt-out on Linux and macOS, read once when it loads: no device id
# or event store under ~/.cache/Microsoft/DeveloperTools, no upload.
ORT_TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"
MODEL_ENV = "GANSYNTH_MODEL"  # the model commands use when --model is left out
# Shipped in the package (issue 6) so every command works out of the box: a small model trained
# on FluidR3 GM soundfont notes on a 2-core CPU; used when neither --model nor $GANSYNTH_MODEL is.
BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "models" / "default.onnx"
PRECISIONS = ("f32", "bf16")
# onnxruntime log levels: 3 = errors only; 4 = fatal only (while probing CUDA, whose failure is
# an expected outcome on most machines and is reported by us as one line, not by ORT as ten).
_ORT_ERRORS_ONLY = 3
_ORT_FATAL_ONLY = 4


class _Runner(Protocol):
    """One backend's way to run the graph: z [B, latent] f32, pitch [B] i64 → spectrogram."""

    def __call__(self, z: np.ndarray, pitch: np.ndarray) -> np.ndarray: ...


class Model:
    """A loaded instrument model. ``generate`` is thread-safe (the cache renders in a thread)."""

    def __init__(
        self,
        path: Path,
        info: ModelInfo,
        runner: _Runner,
        backend: str,
        precision: str,
        threads: int | None = None,
    ) -> None:
        self.path = path
        self.info = info
        self.backend = backend
        self.precision = precision
        self.threads = threads  # as asked of load_model: a renderer process loads it the same way
        self._run = runner
        self._pitch_set = frozenset(info.pitches)

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, backend={self.backend!r}, precision={self.precision!r})"

    @property
    def pitches(self) -> tuple[int, ...]:
        """MIDI note numbers the model was trained on (released models: 24..84)."""
        return self.info.pitches

    @property
    def latent_size(self) -> int:
        return self.info.latent_size

    @property
    def sample_rate(self) -> int:
        """The model's own rate in Hz (16000); the cache resamples to the output rate."""
        return self.info.sample_rate

    @property
    def audio_length(self) -> int:
        """Samples per generated note at ``sample_rate`` (64000 = 4 s)."""
        return self.info.audio_length

    @property
    def digest(self) -> str:
        """Content digest of the graph (weights included): cache entries are keyed on it."""
        return self.info.digest

    def generate_spectrogram(
        self, z: np.ndarray, pitches: Sequence[int] | np.ndarray
    ) -> np.ndarray:
        """The generator alone: float32 [B, frames, bins, 2], denormalised (Magenta's G output).

        Raises ModelError for a latent of the wrong shape or with NaN/inf, a pitch count that
        does not match, or a pitch the model does not know (the message lists its pitches).
        """
        z32, pitch = self._check(z, pitches)
        if len(pitch) == 0:
            rep = self.info.representation
            return np.zeros((0, rep.frames, rep.bins, 2), np.float32)
        return self._run(z32, pitch)

    def generate(self, z: np.ndarray, pitches: Sequence[int] | np.ndarray) -> np.ndarray:
        """Notes: float32 [B, audio_length] at ``sample_rate``, as Magenta's
        ``generate_samples_from_z`` (no normalisation; peaks can exceed 1)."""
        spec = self.generate_spectrogram(z, pitches)
        return spectrogram_to_audio(spec, self.info.representation, sample_rate=self.sample_rate)

    def _check(
        self, z: np.ndarray, pitches: Sequence[int] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        z32 = np.ascontiguousarray(z, dtype=np.float32)
        pitch = np.asarray(pitches).reshape(-1)
        if z32.ndim != 2 or z32.shape[1] != self.latent_size:
            raise ModelError(
                f"latents have shape {list(z32.shape)}; "
                f"this model takes [batch, {self.latent_size}]"
            )
        if len(pitch) != len(z32):
            raise ModelError(f"{len(z32)} latents but {len(pitch)} pitches")
        if not np.isfinite(z32).all():
            raise ModelError("a latent holds NaN or infinity")
        if pitch.size and not np.issubdtype(pitch.dtype, np.integer):
            raise ModelError(f"pitches must be MIDI note numbers (integers), got {pitch.dtype}")
        check_pitches(self._pitch_set, pitch)
        return z32, pitch.astype(np.int64)


def read_info(path: str | Path) -> ModelInfo:
    """The ModelInfo stored in an exported model, checked against its graph; no session is made.

    Raises ModelError (one line naming the file) for a missing or unreadable file, a file that is
    not ONNX, one without gansynth metadata, or a graph whose inputs/outputs break the contract.
    """
    info, _ = _read(Path(path))
    return info


def _read(path: Path) -> tuple[ModelInfo, bytes]:
    """The checked ModelInfo and the file's bytes (what the backends load)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file") from None
    except OSError as err:
        raise ModelError(f"{path}: cannot read: {err.strerror}") from None
    if not data:
        raise ModelError(f"{path}: empty file, not an ONNX model")
    try:
        proto = onnx.load_from_string(data)
    except Exception as err:  # protobuf raises DecodeError, RuntimeWarning, ValueError...
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(f"{path}: not an ONNX model ({first})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    info = ModelInfo.from_props(props, where=str(path))
    inputs = {i.name for i in proto.graph.input}
    outputs = {o.name for o in proto.graph.output}
    if {INPUT_LATENT, INPUT_PITCH} - inputs or OUTPUT_SPECTROGRAM not in outputs:
        raise ModelError(
            f"{path}: graph inputs {sorted(inputs)} / outputs {sorted(outputs)} are not "
            f"'{INPUT_LATENT}', '{INPUT_PITCH}' → '{OUTPUT_SPECTROGRAM}'"
        )
    rep = info.representation
    length = rep.hop_length * (rep.frames - 1) + rep.n_fft - rep.pad_front
    if length != info.audio_length:
        raise ModelError(
            f"{path}: representation gives {length} samples but audio_length is {info.audio_length}"
        )
    if not info.digest:  # older exports: key the cache on the file's content instead
        info = dataclasses.replace(info, digest=hashlib.sha256(data).hexdigest()[:32])
    return info, data


def load_model(
    path: str | Path,
    *,
    backend: str = "auto",
    threads: int | None = None,
    precision: str = "f32",
) -> Model:
    """Load an exported model on a backend (see the module docstring for the ``auto`` order).

    Args:
        path: an .onnx file written by ``gansynth-instrument export``.
        backend: "auto", "cuda", "openvino" or "cpu" (onnxruntime's CPU provider).
        threads: CPU threads for inference; None = the backend's default (all cores).
        precision: "f32", or "bf16" (OpenVINO on CPUs with native bf16 only). bf16 changes the
            sound audibly (``benchmarks/bench_generate.py`` prints its SNR against f32).

    Raises:
        ModelError: bad file or metadata, an unknown or unavailable backend, or a precision the
            backend or CPU cannot run — one line each.
    """
    path = Path(path)
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    if threads is not None and threads < 1:
        raise ModelError(f"threads must be at least 1, got {threads}")
    info, data = _read(path)
    if backend == "auto":
        if precision == "f32" and "cuda" in available_backends():
            try:
                return Model(path, info, _cuda_runner(path, data), "cuda", precision, threads)
            except ModelError:
                pass  # a GPU without working CUDA libraries: the CPU backends still work
        backend = "openvino" if _openvino_present() else "cpu"
    if precision == "bf16" and backend != "openvino":
        raise ModelError(f"precision bf16 needs the openvino backend, not '{backend}'")
    if backend == "cuda":
        runner = _cuda_runner(path, data)
    elif backend == "openvino":
        runner = _openvino_runner(path, data, threads, precision)
    else:
        runner = _ort_cpu_runner(path, data, threads)
    return Model(path, info, runner, backend, precision, threads)


def model_path(given: str | Path | None = None) -> Path:
    """The model a command uses: ``given`` (``--model``), else ``$GANSYNTH_MODEL``, else the
    bundled model. Raises ModelError when there is none at all (an install without the bundled
    file: one line saying how to get one)."""
    path = given or os.environ.get(MODEL_ENV)
    if not path and BUNDLED_MODEL.is_file():
        path = BUNDLED_MODEL
    if not path:
        raise ModelError(
            f"no model: pass --model FILE.onnx or set {MODEL_ENV}; make one from Magenta's "
            "release with 'gansynth-instrument export all_instruments.zip -o all_instruments.onnx'"
        )
    return Path(path)


def available_backends() -> list[str]:
    """The backends that can be tried on this machine, in ``auto``'s order of preference."""
    found = []
    if _cuda_device_count() > 0 and _cuda_provider_built():
        found.append("cuda")
    if _openvino_present():
        found.append("openvino")
    found.append("cpu")
    return found


# --- backends ----------------------------------------------------------------------------------


def _cuda_device_count() -> int:
    """CUDA devices the driver reports (0 without a driver): asked before ORT tries CUDA."""
    names = {"win32": ["nvcuda.dll"], "linux": ["libcuda.so.1", "libcuda.so"]}
    for name in names.get(sys.platform, []):
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0:
            return count.value
    return 0


def import_runtime(name: str) -> ModuleType:
    """onnxruntime or OpenVINO, imported whole (``import_whole``) with their telemetry off: an
    instrument sends, and writes into the user's home, nothing of the kind.

    onnxruntime reads ``ORT_DISABLE_TELEMETRY`` as it loads (also in the note workers' processes,
    which inherit it) and is told again through its API. OpenVINO starts its telemetry on import
    (a client id in ~/intel) through the optional ``openvino_telemetry`` package, and without it
    uses its own no-op stub: the package is kept out of this process.
    """
    os.environ.setdefault(ORT_TELEMETRY_ENV, "1")
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    module = import_whole(name)
    if name == "onnxruntime":
        module.disable_telemetry_events()
    return module


def _cuda_provider_built() -> bool:
    ort = import_runtime("onnxruntime")

    return "CUDAExecutionProvider" in ort.get_available_providers()


def _openvino_present() -> bool:
    try:
        import_runtime("openvino")
    except ImportError:
        return False
    return True


def _ort_session(data: bytes, providers: list, threads: int | None, severity: int):
    ort = import_runtime("onnxruntime")

    options = ort.SessionOptions()
    options.log_severity_level = severity
    # Idle worker threads sleep instead of spinning: the renderer shares the CPU with the audio
    # callback (and, on the course's laptops, with everything else).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(data, options, providers=providers)


def _ort_runner(session) -> _Runner:
    def run(z: np.ndarray, pitch: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT_SPECTROGRAM], {INPUT_LATENT: z, INPUT_PITCH: pitch})[0]

    return run


def _ort_cpu_runner(path: Path, data: bytes, threads: int | None) -> _Runner:
    try:
        session = _ort_session(data, ["CPUExecutionProvider"], threads, _ORT_ERRORS_ONLY)
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ModelError(f"{path}: onnxruntime cannot load it: {_first_line(err)}") from None
    return _ort_runner(session)


def _cuda_runner(path: Path, data: bytes) -> _Runner:

    if _cuda_device_count() == 0:
        raise ModelError("backend cuda: no CUDA device (no NVIDIA driver, or it sees no GPU)")
    if not _cuda_provider_built():
        raise ModelError(
            "backend cuda: this onnxruntime has no CUDA provider (install onnxruntime-gpu)"
        )
    return _ort_runner(_start_cuda_session(path, data))


def _start_cuda_session(path: Path, data: bytes):
    """An onnxruntime session running on CUDA, or one ModelError line and no log noise."""
    ort = import_runtime("onnxruntime")

    if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from nvidia-* wheels, when those are installed
        with contextlib.redirect_stdout(io.StringIO()):  # it prints what it misses
            ort.preload_dlls()
    # A provider that fails to load logs through the default logger, not the session's: keep
    # it quiet, the failure is reported below as one line (and auto falls back to the CPU).
    ort.set_default_logger_severity(_ORT_FATAL_ONLY)
    try:
        session = _ort_session(
            data, ["CUDAExecutionProvider", "CPUExecutionProvider"], None, _ORT_FATAL_ONLY
        )
    except Exception as err:
        raise ModelError(f"{path}: onnxruntime cannot load it: {_first_line(err)}") from None
    finally:
        ort.set_default_logger_severity(_ORT_ERRORS_ONLY)
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise ModelError(
            "backend cuda: onnxruntime could not start its CUDA provider (CUDA 12 / cuDNN 9 "
            "libraries missing?); use --backend cpu or openvino"
        )
    return session


def _openvino_runner(path: Path, data: bytes, threads: int | None, precision: str) -> _Runner:
    if not _openvino_present():
        raise ModelError("backend openvino: the openvino package is not installed")
    ov = import_runtime("openvino")
    core = ov.Core()
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise ModelError("precision bf16: this CPU has no native bf16 support")
    config = {
        # Explicit even for f32: OpenVINO silently picks bf16 by default on CPUs that have it.
        "INFERENCE_PRECISION_HINT": precision,
        "PERFORMANCE_HINT": "LATENCY",
    }
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    try:
        compiled = core.compile_model(core.read_model(data), "CPU", config)
    except RuntimeError as err:
        raise ModelError(f"{path}: OpenVINO cannot load it: {_first_line(err)}") from None
    local = threading.local()  # one infer request per thread: requests are not thread-safe

    def run(z: np.ndarray, pitch: np.ndarray) -> np.ndarray:
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = compiled.create_infer_request()
        request.infer({INPUT_LATENT: z, INPUT_PITCH: pitch})
        return request.get_tensor(OUTPUT_SPECTROGRAM).data.copy()  # the buffer is reused

    return run


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
