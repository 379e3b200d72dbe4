"""Exporter figures: export time of a full-size model, and generator ms/note in onnxruntime CPU.

    python benchmarks/bench_export.py [--threads 2] [--repeats 10]

Full size = the released all_instruments shapes (7.3 M generator parameters) with random weights,
built through the same graph builder as real checkpoints. Two export timings:
  * ``--random``: build + write only;
  * a synthetic full-size checkpoint dir (experiment.json + a ~200 MB bundle holding the
    generator, its EMA copy, Adam slots and a discriminator-sized block, like a real
    ``stage_00012``): find + read + check + build + write, i.e. what a user's export costs.
Then ms/note of the exported generator (spectrogram only, no post-processing) at batch 1 and 8,
onnxruntime CPUExecutionProvider with ``--threads`` intra-op threads. Each row: median and max.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from gansynth_instrument.export.checkpoint import (
    EMA_SUFFIX,
    GENERATOR_SCOPE,
    Checkpoint,
    read_checkpoint,
)
from gansynth_instrument.export.graph import he_scale, weight_name
from gansynth_instrument.export.hparams import MEL_PROG_HIRES
from gansynth_instrument.export.onnx_model import export_model, random_checkpoint
from gansynth_instrument.model.metadata import INPUT_LATENT, INPUT_PITCH

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bundle_writer import write_bundle  # tests/ helper that writes TF V2 bundles

DISCRIMINATOR_PARAMS = 6_831_230  # Magenta's D at the released shapes (its weights + 2 Adam slots)


def write_full_size_checkpoint(root: Path, seed: int) -> Path:
    """A release-like dir whose bundle has the size and variable names of a real one."""
    weights = random_checkpoint(seed).weights
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {"global_step": np.array(11_000_000, np.int64)}
    for name, value in weights.items():
        full = GENERATOR_SCOPE + name
        tensors[full] = value
        tensors[full + EMA_SUFFIX] = value + np.float32(0.01)
        for slot in ("Adam", "Adam_1"):
            tensors[f"progressive_gan_train_ops/{full}/{slot}"] = np.zeros_like(value)
    for part in ("weights", "Adam", "Adam_1"):
        tensors[f"Discriminator/stand_in/{part}"] = rng.standard_normal(
            DISCRIMINATOR_PARAMS, dtype=np.float32
        )
    stage = root / "all_instruments" / "stage_00012"
    stage.mkdir(parents=True)
    (stage.parent / "experiment.json").write_text(json.dumps(MEL_PROG_HIRES))
    write_bundle(stage / "model.ckpt-11000000", tensors)
    (stage / "checkpoint").write_text('model_checkpoint_path: "./model.ckpt-11000000"\n')
    return stage.parent


def tensorflow_generator(checkpoint: Checkpoint, threads: int) -> Callable[..., np.ndarray]:
    """The same generator written the way Magenta's graph computes it (NHWC, block 1 as a VALID
    conv on the zero-padded 1x1 input, tile-style upscaling) in TensorFlow, for a same-machine
    reference point: the issue quotes Magenta's TF generator at ~80 ms/note on a quiet machine."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    config, w = checkpoint.config, checkpoint.weights

    def kernel(b: int, layer: str) -> tf.Tensor:
        k = w[weight_name(b, layer, "kernel")]
        return tf.constant(k * he_scale(k.shape, 1.0 if layer == "to_rgb" else 0.0))

    def act(x: tf.Tensor) -> tf.Tensor:
        x = tf.nn.leaky_relu(x, 0.2)
        return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=3, keepdims=True) + 1e-8)

    def conv(x: tf.Tensor, b: int, layer: str, padding: str = "SAME") -> tf.Tensor:
        y = tf.nn.conv2d(x, kernel(b, layer), 1, padding) + w[weight_name(b, layer, "bias")]
        return tf.tanh(y) if layer == "to_rgb" else act(y)

    table = tf.constant(config.pitches, tf.int64)
    h, wd = config.start_height, config.start_width

    @tf.function
    def generate(z: tf.Tensor, pitch: tf.Tensor) -> tf.Tensor:
        one_hot = tf.cast(tf.equal(pitch[:, None], table[None, :]), tf.float32)
        x = tf.concat([z, one_hot], axis=1)[:, None, None, :]
        x = x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=3, keepdims=True) + 1e-8)
        x = tf.pad(x, [[0, 0], [h - 1, h - 1], [wd - 1, wd - 1], [0, 0]])
        x = conv(conv(x, 1, "conv0", "VALID"), 1, "conv1")
        for b in range(2, config.num_blocks + 1):
            x = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)
            x = conv(conv(x, b, "conv0"), b, "conv1")
        y = conv(x, config.num_blocks, "to_rgb")
        return (y - config.normalizer_b) / config.normalizer_a

    return lambda z, pitch: generate(tf.constant(z), tf.constant(pitch)).numpy()


def timed(fn: Callable[[], object], repeats: int, desc: str | None = None) -> list[float]:
    """Seconds per call of ``fn`` over ``repeats`` calls."""
    times = []
    for _ in tqdm(range(repeats), desc=desc, leave=False, disable=desc is None):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row")
    parser.add_argument(
        "--tensorflow",
        action="store_true",
        help="also time the same generator in TensorFlow (needs the 'test' extra)",
    )
    args = parser.parse_args()
    rows: list[tuple[str, str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_path = tmp / "random.onnx"
        rows.append(
            (
                "export --random (build + write)",
                "s",
                timed(lambda: export_model(random_checkpoint(0), model_path), 3, "export random"),
            )
        )
        ckpt_dir = write_full_size_checkpoint(tmp / "ckpt", seed=0)
        size_mb = sum(f.stat().st_size for f in ckpt_dir.rglob("*")) / 1e6
        rows.append(
            (
                f"export full-size checkpoint ({size_mb:.0f} MB)",
                "s",
                timed(
                    lambda: export_model(read_checkpoint(ckpt_dir), tmp / "ckpt.onnx"),
                    3,
                    "export checkpoint",
                ),
            )
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        reference = (
            tensorflow_generator(random_checkpoint(0), args.threads) if args.tensorflow else None
        )
        rng = np.random.default_rng(0)
        for batch in (1, 8):
            z = rng.standard_normal((batch, 256), dtype=np.float32)
            pitch = rng.integers(24, 85, batch).astype(np.int64)
            feeds = {INPUT_LATENT: z, INPUT_PITCH: pitch}
            ours = session.run(None, feeds)[0]  # warm-up: first run allocates arenas
            candidates = [("onnxruntime", lambda f=feeds: session.run(None, f))]
            if reference is not None:
                diff = float(np.abs(reference(z, pitch) - ours).max())
                print(f"TensorFlow vs ONNX, batch {batch}: max |diff| {diff:.2e}")
                candidates.append(("TensorFlow", lambda z=z, p=pitch: reference(z, p)))
            times: dict[str, list[float]] = {name: [] for name, _ in candidates}
            for _ in tqdm(range(args.repeats), desc=f"batch {batch}", leave=False):
                for name, run in candidates:  # interleaved: load changes hit both alike
                    times[name] += timed(run, 1)
            for name, values in times.items():
                rows.append(
                    (
                        f"{name} generator, batch {batch}, {args.threads} threads",
                        "ms/note",
                        [t * 1000.0 / batch for t in values],
                    )
                )
    load_1min = os.getloadavg()[0]
    print(
        f"onnxruntime {ort.__version__}, CPUExecutionProvider; {os.cpu_count()} CPUs, "
        f"load average {load_1min:.1f} at the end (a shared machine inflates every figure)"
    )
    print(f"{'what':<48} {'unit':>8} {'median':>9} {'max':>9} {'runs':>5}")
    for what, unit, values in rows:
        print(
            f"{what:<48} {unit:>8} {statistics.median(values):>9.2f} {max(values):>9.2f} "
            f"{len(values):>5}"
        )


if __name__ == "__main__":
    main()
