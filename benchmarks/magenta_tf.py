"""Magenta's ``generate_samples_from_z`` as a same-run speed baseline, in TensorFlow.

Issue 4 sets ``generate()``'s target as a fraction of Magenta's own time (90 ms/note when it was
written). Magenta itself is not installed here, so this rebuilds the computation that
``../shared/docs/magenta-gansynth.md`` describes, on the runtime Magenta uses (TensorFlow, NHWC):

- the generator: pixel-normed [z, one-hot pitch], block 1's VALID conv on the padded input, then
  per block nearest ×2 upscale and SAME 3×3 convs, each scaled at run time (equalized learning
  rate), leaky ReLU 0.2 and pixel norm; every block's tanh ``to_rgb``, upscaled and blended by
  level of detail (Magenta computes them all, with weight 0 at progress 6);
- post-processing: denormalise, ``exp(mag) @ mel2l``, phase by ``cumsum(IF · π) @ mel2l``, then
  Magenta's round trip through instantaneous frequency (wrapped first difference, cumsum), the
  inverse STFT (periodic Hann / 1.5, hop 512) and the 3072-sample front crop;
- its batching: one call runs whole graph batches (8 for released models), padding with z = 0.

``check()`` runs it on magenta-tiny's checkpoint and compares with Magenta's reference audio, so the
baseline is known to compute what Magenta computes. Needs the ``tensorflow`` extra.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no oneDNN / CPU-feature banners in the table
import tensorflow as tf

from gansynth_instrument.export.checkpoint import Checkpoint, read_checkpoint
from gansynth_instrument.export.graph import he_scale, lod_weights, weight_name
from gansynth_instrument.model.spectral import mel_to_linear_matrix

GRAPH_BATCH = 8  # batch_size_schedule of the released models: generate_samples_from_z pads to it
N_FFT, HOP, CROP = 2048, 512, 3072


class MagentaTF:
    """``generate(z, pitches) -> [n, 64000]`` as Magenta computes it (see the module docstring)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        config = checkpoint.config
        self.config = config
        self._alphas = lod_weights(config.num_blocks, checkpoint.progress)
        self._w = {name: tf.constant(value) for name, value in checkpoint.weights.items()}
        self._scale = {
            name: he_scale(value.shape, 1.0 if "to_rgb" in name else 0.0)
            for name, value in checkpoint.weights.items()
            if name.endswith("kernel")
        }
        self._mel2l = tf.constant(mel_to_linear_matrix().astype(np.float32))
        self._a = tf.constant(np.array(config.normalizer_a, np.float32))
        self._b = tf.constant(np.array(config.normalizer_b, np.float32))
        self._run = tf.function(self._graph, jit_compile=False)

    def _conv(self, x: tf.Tensor, block: int, layer: str, padding: str = "SAME") -> tf.Tensor:
        kernel = weight_name(block, layer, "kernel")
        y = tf.nn.conv2d(x, self._w[kernel], strides=1, padding=padding)
        return self._scale[kernel] * y + self._w[weight_name(block, layer, "bias")]

    @staticmethod
    def _act(x: tf.Tensor) -> tf.Tensor:
        x = tf.nn.leaky_relu(x, alpha=0.2)
        return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + 1e-8)

    @staticmethod
    def _upscale(x: tf.Tensor, factor: int) -> tf.Tensor:
        return tf.repeat(tf.repeat(x, factor, axis=1), factor, axis=2)

    def _graph(self, z: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        c = self.config
        x = tf.concat([z, tf.one_hot(labels, len(c.pitches))], axis=1)[:, None, None, :]
        x = x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + 1e-8)
        x = tf.pad(x, [[0, 0], [c.start_height - 1] * 2, [c.start_width - 1] * 2, [0, 0]])
        x = self._act(self._conv(x, 1, "conv0", "VALID"))
        x = self._act(self._conv(x, 1, "conv1"))
        lods = [x]
        for block in range(2, c.num_blocks + 1):
            x = self._upscale(x, 2)
            x = self._act(self._conv(x, block, "conv0"))
            x = self._act(self._conv(x, block, "conv1"))
            lods.append(x)
        out = 0.0
        for block, (lod, alpha) in enumerate(zip(lods, self._alphas, strict=True), start=1):
            rgb = tf.tanh(self._conv(lod, block, "to_rgb"))
            out += alpha * self._upscale(rgb, 2 ** (c.num_blocks - block))
        spec = (out - self._b) / self._a
        mag = tf.sqrt(tf.tensordot(tf.exp(spec[..., 0]), self._mel2l, 1) + 1e-6)
        phase = tf.tensordot(tf.cumsum(spec[..., 1] * math.pi, axis=1), self._mel2l, 1)
        step = phase[:, 1:] - phase[:, :-1]
        step = tf.math.floormod(step + math.pi, 2 * math.pi) - math.pi
        phase = tf.cumsum(tf.concat([phase[:, :1], step], axis=1), axis=1)
        stft = tf.complex(mag * tf.cos(phase), mag * tf.sin(phase))
        stft = tf.pad(stft, [[0, 0], [0, 0], [1, 0]])  # the DC bin the model leaves out
        window = tf.signal.hann_window(N_FFT, periodic=True) / 1.5
        frames = tf.signal.irfft(stft, fft_length=[N_FFT]) * window
        return tf.signal.overlap_and_add(frames, HOP)[:, CROP:]

    def generate(self, z: np.ndarray, pitches: np.ndarray) -> np.ndarray:
        """Whole graph batches, padded with z = 0 and label 0, as ``generate_samples_from_z``."""
        labels = np.searchsorted(np.array(self.config.pitches), pitches)
        n = len(z)
        padded = -n % GRAPH_BATCH
        z = np.concatenate([z, np.zeros((padded, z.shape[1]), np.float32)])
        labels = np.concatenate([labels, np.zeros(padded, np.int64)])
        out = [
            self._run(z[i : i + GRAPH_BATCH], labels[i : i + GRAPH_BATCH]).numpy()
            for i in range(0, len(z), GRAPH_BATCH)
        ]
        return np.concatenate(out)[:n]


def check(magenta_tiny: Path) -> float:
    """Largest difference from Magenta's reference audio on magenta-tiny, ÷ the reference's peak."""
    reference = np.load(magenta_tiny / "reference.npz")
    model = MagentaTF(read_checkpoint(magenta_tiny))
    audio = model.generate(reference["z"], reference["pitches"])
    return float(np.abs(audio - reference["audio"]).max() / np.abs(reference["audio"]).max())
