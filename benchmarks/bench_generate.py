"""Generator and post-processing speed per backend and precision, and bf16's quality cost.

Prints one table: generator ms/note at batch 1 and 8 for every backend/precision that runs here,
NumPy post-processing ms/note, and ``generate()`` (generator + post-processing) at batch 1 on the
backend ``auto`` picks: wall median, min and max, and process CPU time ÷ cores (robust to other
people's load; for generate() it slightly undercounts the single-threaded post-processing), with
ratios against Magenta's own ``generate_samples_from_z`` (target: ≤ 0.75): against the 90 ms/note
issue 4 gives, and against Magenta's computation measured in this run (``magenta_tf.py``: the same
generator and post-processing in TensorFlow, checked against magenta-tiny's reference audio,
full-size shapes, 8 notes per call as Magenta's graph batch; needs the ``tensorflow`` extra).
Then the generator's arithmetic per note (multiply-accumulates of its convolutions, counted from
the ONNX graph) against the rate the fastest f32 row reached, and the rate the 67.5 ms target
would need; then bf16's quality cost against f32 on magenta-tiny and on the full-size model.

    python benchmarks/bench_generate.py                   # builds a full-size random model
    python benchmarks/bench_generate.py --model all_instruments.onnx --repeats 20

Timings depend on the machine and on what else runs on it: say so when quoting them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import scipy.signal

from gansynth_instrument.errors import ModelError
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.model.runtime import available_backends, load_model
from gansynth_instrument.model.spectral import spectrogram_to_audio

MAGENTA_MS_PER_NOTE = 90.0  # issue 4: Magenta's generate_samples_from_z, full-size, batch 1
TARGET_RATIO = 0.75
REPO = Path(__file__).resolve().parent.parent


Stats = tuple[float, float, float, float]


def time_ms(fn: Callable[[], object], repeats: int, notes: int, cores: int) -> Stats:
    """Wall ms per note (median, min, max) over ``repeats`` calls after a warm-up call, and the
    median process CPU ms per note divided by ``cores``.

    On a shared machine the wall figures grow with other people's load; CPU time ÷ cores does
    not (much): it is what the wall time would be on an idle machine if the work spread evenly
    over the cores, so it is the figure to compare across runs."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1e3 / notes / cores)
        wall.append((time.perf_counter() - start) * 1e3 / notes)
    return statistics.median(wall), min(wall), max(wall), statistics.median(cpu)


def inputs(batch: int) -> tuple[np.ndarray, np.ndarray]:
    z = np.stack([random_latent(seed) for seed in range(batch)])
    pitches = np.array([36 + 6 * i for i in range(batch)], dtype=np.int64)
    return z, pitches


def spectral_snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """SNR of STFT magnitudes (2048-point Hann, hop 512): the audible difference, blind to the
    phase drift that makes waveform SNR meaningless for a phase-integrating vocoder."""
    _, _, ref = scipy.signal.stft(reference, nperseg=2048, noverlap=1536)
    _, _, got = scipy.signal.stft(test, nperseg=2048, noverlap=1536)
    ref, got = np.abs(ref), np.abs(got)
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - got) ** 2)))


def bf16_quality(path: Path, notes: int) -> str:
    """bf16 vs f32 over ``notes`` random timbres/pitches: the audio's spectral SNR (mean, worst)
    and the SNR of the generator's own output (log-mel magnitude + IF, before the vocoder)."""
    try:
        fast = load_model(path, backend="openvino", precision="bf16")
    except ModelError as err:
        return f"n/a ({err})"
    exact = load_model(path, backend="openvino")
    z, pitches = inputs(notes)
    spec_exact = exact.generate_spectrogram(z, pitches)
    spec_fast = fast.generate_spectrogram(z, pitches)
    spec_snr = 10 * np.log10(np.sum(spec_exact**2) / np.sum((spec_fast - spec_exact) ** 2))
    snrs = [
        spectral_snr_db(a, b)
        for a, b in zip(
            spectrogram_to_audio(spec_exact), spectrogram_to_audio(spec_fast), strict=True
        )
    ]
    return (
        f"audio mean {np.mean(snrs):.1f} dB, worst {min(snrs):.1f} dB; "
        f"generator output {spec_snr:.1f} dB ({notes} notes)"
    )


def export_full_size(directory: Path) -> Path:
    """A model of the released shapes with random weights (``export --random``)."""
    from gansynth_instrument.cli import main

    path = directory / "random-full-size.onnx"
    if main(["export", "--random", "-o", str(path)]) != 0:
        raise SystemExit("export --random failed")
    return path


def export_tiny(directory: Path, fixtures: Path) -> Path:
    from gansynth_instrument.export.checkpoint import read_checkpoint
    from gansynth_instrument.export.onnx_model import export_model

    path = directory / "magenta-tiny.onnx"
    export_model(read_checkpoint(fixtures / "magenta-tiny" / "stage_00012"), path)
    return path


def generator_macs(path: Path) -> int:
    """Multiply-accumulates per note (batch 1) of the graph's Conv, ConvTranspose and MatMul."""
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    shapes = {
        value.name: [dim.dim_value or 1 for dim in value.type.tensor_type.shape.dim]
        for value in [*graph.value_info, *graph.output]
    }
    weights = {init.name: list(init.dims) for init in graph.initializer}
    total = 0
    for node in graph.node:
        w = weights.get(node.input[1]) if len(node.input) > 1 else None
        if w is None or node.op_type not in ("Conv", "ConvTranspose", "MatMul"):
            continue
        if node.op_type == "Conv":  # every output value: in-channels × kernel taps
            total += int(np.prod(shapes[node.output[0]])) * int(np.prod(w[1:]))
        elif node.op_type == "ConvTranspose":  # every input value meets out-channels × taps
            total += int(np.prod(shapes[node.input[0]])) * int(np.prod(w[1:]))
        else:  # MatMul [batch, in] × [in, out]
            total += int(np.prod(w))
    return total


def row(name: str, stats: Stats, baseline: Stats | None = None) -> str:
    """A table row; with ``baseline`` (Magenta in TF, this run), the ratio columns too."""
    figures = "".join(f"{value:10.1f}" for value in stats)
    if baseline is not None:
        figures += f"{stats[3] / MAGENTA_MS_PER_NOTE:9.2f}{stats[3] / baseline[3]:9.2f}"
    return f"{name:<42}{figures}"


def magenta_tf_rows(repeats: int, cores: int, fixtures: Path) -> tuple[list[str], Stats | None]:
    """Magenta's computation in TensorFlow (full-size shapes): rows, and its per-note figures of
    an 8-note call (Magenta's graph batch) as the same-run baseline."""
    try:
        import magenta_tf
    except ImportError:
        return ["(TensorFlow not installed: no same-run Magenta baseline; see --help)"], None
    from gansynth_instrument.export.onnx_model import random_checkpoint

    rows = []
    if (fixtures / "magenta-tiny").is_dir():
        error = magenta_tf.check(fixtures / "magenta-tiny")
        rows.append(f"(Magenta in TF vs Magenta's magenta-tiny audio: {error:.1e} × peak)")
    model = magenta_tf.MagentaTF(random_checkpoint(0))
    batch8 = None
    for notes, label in ((8, "8 notes per call"), (1, "1 note (a batch of 8)")):
        z, pitches = inputs(notes)
        stats = time_ms(partial(model.generate, z, pitches), max(2, repeats // 4), notes, cores)
        batch8 = batch8 or stats
        rows.append(row(f"Magenta in TF, {label}", stats))
    return rows, batch8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="full-size .onnx (default: export --random)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per figure")
    parser.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=Path(os.environ.get("GANSYNTH_FIXTURES", REPO.parent / "shared" / "fixtures")),
        help="folder holding magenta-tiny (for the bf16 quality figure)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model or export_full_size(Path(tmp))
        print(
            f"model: {model_path}; {os.cpu_count()} CPUs, load average at start "
            f"{os.getloadavg()[0]:.2f} (on a shared machine compare the cpu÷cores column)"
        )
        header = (
            f"{'ms per note':<42}{'median':>10}{'min':>10}{'max':>10}{'cpu÷cores':>10}"
            f"{'cpu/90':>9}{'cpu/TF':>9}"
        )
        lines = [header, "-" * len(header)]
        cores = args.threads or os.cpu_count() or 1
        tf_rows, baseline = magenta_tf_rows(args.repeats, cores, args.fixtures)
        f32_cpu_ms = []  # cpu÷cores of every f32 generator at batch 1
        for backend in available_backends():
            for precision in ("f32", "bf16"):
                try:
                    model = load_model(
                        model_path, backend=backend, threads=args.threads, precision=precision
                    )
                except ModelError:
                    continue  # bf16 only exists on OpenVINO with a bf16-capable CPU
                for batch, repeats in ((1, args.repeats), (8, max(2, args.repeats // 4))):
                    z, pitches = inputs(batch)
                    stats = time_ms(
                        lambda m=model, z=z, p=pitches: m.generate_spectrogram(z, p),
                        repeats,
                        batch,
                        cores,
                    )
                    lines.append(row(f"generator {backend} {precision} batch {batch}", stats))
                    if precision == "f32" and batch == 1:
                        f32_cpu_ms.append(stats[3])
        auto = load_model(model_path, threads=args.threads)
        z, pitches = inputs(1)
        spec = auto.generate_spectrogram(z, pitches)
        post = time_ms(lambda: spectrogram_to_audio(spec), args.repeats * 5, 1, 1)  # 1 thread
        lines.append(row("post-processing (NumPy)", post))
        lines.append(
            row(
                f"generate() batch 1, auto = {auto.backend} f32",
                time_ms(lambda: auto.generate(z, pitches), args.repeats, 1, cores),
                baseline,
            )
        )
        if any(line.startswith("generator openvino bf16 batch 1") for line in lines):
            bf16 = load_model(model_path, threads=args.threads, precision="bf16")
            lines.append(
                row(
                    "generate() batch 1, openvino bf16",
                    time_ms(lambda: bf16.generate(z, pitches), args.repeats, 1, cores),
                    baseline,
                )
            )
        print("\n".join(lines + tf_rows))
        print(
            f"target: generate() ≤ {TARGET_RATIO} × Magenta's time per note (cpu/90: the issue's "
            f"{MAGENTA_MS_PER_NOTE:g} ms; cpu/TF: Magenta's computation measured in this run)"
        )
        print(f"load average at end {os.getloadavg()[0]:.2f}")
        gmac = generator_macs(model_path) / 1e9
        needed_ms = TARGET_RATIO * MAGENTA_MS_PER_NOTE - post[0]
        print(
            f"generator work: {gmac:.2f} GMAC/note; the fastest f32 generator ran "
            f"{gmac / min(f32_cpu_ms) * 1e3:.0f} GMAC/s (by cpu÷cores); the issue's 67.5 ms, less "
            f"post-processing, needs {gmac / needed_ms * 1e3:.0f} GMAC/s"
        )
        print("bf16 vs f32 spectral SNR (STFT magnitudes):")
        print(f"  full-size model: {bf16_quality(model_path, 8)}")
        tiny_dir = args.fixtures / "magenta-tiny"
        if tiny_dir.is_dir():
            print(f"  magenta-tiny:    {bf16_quality(export_tiny(Path(tmp), args.fixtures), 8)}")


if __name__ == "__main__":
    main()
