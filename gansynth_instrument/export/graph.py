"""ONNX builder for GANSynth's progressive generator (non-simple arch), weights by Magenta name.

The graph is NCHW from the first conv to the last (one transpose at the very end gives the
contract's [B, frames, bins, 2] layout) and carries only what the output depends on:

* block 1's conv0 (a VALID conv on a 1×1 input zero-padded to ``start``) is the dense layer it
  is: ``out[i, j] = x · W[h-1-i, w-1-j]``, one MatMul instead of a mostly-zero conv;
* equalized-learning-rate scales are folded into the kernels (``sqrt(2/fan_in)`` for convs,
  ``sqrt(1/fan_in)`` for to_rgb, whose He slope is 1);
* each block's nearest-×2 upscale + 3×3 SAME conv0 is one exact ConvTranspose
  (``upscale_conv_kernel``): 16 instead of 36 multiply-adds per input pixel, no upscaled copy,
  for bigger weights (bench_generate.py times the generator);
* to_rgb branches whose level-of-detail weight is 0 at this ``progress`` are left out, and so are
  blocks nothing reads.

``pitch`` arrives as MIDI numbers; ``Equal`` against the model's pitch table makes the one-hot, so
a course model's pitch list works the same as the released 24..84. Magenta's names and semantics:
lib/networks.py ``generator``, lib/layers.py ``custom_conv2d`` / ``pixel_norm`` / ``upscale``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gansynth_instrument.model.metadata import (
    INPUT_LATENT,
    INPUT_PITCH,
    MAG_NORMALIZER,
    OUTPUT_SPECTROGRAM,
    P_NORMALIZER,
    Representation,
)

IR_VERSION = 9  # onnxruntime >= 1.17 (our floor) loads IR 9 + opset 18; newer IRs it refuses
OPSET = 18
COLORS = 2  # channel 0: log mel magnitude², channel 1: mel instantaneous frequency
PIXEL_NORM_EPS = 1e-8
LEAKY_RELU_SLOPE = 0.2
SCOPE = "progressive_gan_generator"
LAYERS = ("conv0", "conv1", "to_rgb")


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator's shape and output mapping (from experiment.json, checked against weights)."""

    latent_size: int
    pitches: tuple[int, ...]
    start_height: int
    start_width: int
    filters: tuple[int, ...]  # per block 1..num_blocks
    kernel_size: int = 3
    to_rgb_activation: str = "tanh"
    normalizer_a: tuple[float, float] = (MAG_NORMALIZER[0], P_NORMALIZER[0])
    normalizer_b: tuple[float, float] = (MAG_NORMALIZER[1], P_NORMALIZER[1])

    @property
    def num_blocks(self) -> int:
        return len(self.filters)

    @property
    def resolution(self) -> tuple[int, int]:
        """Final (frames, bins): ``start`` doubled in both axes per block after the first."""
        scale = 2 ** (self.num_blocks - 1)
        return self.start_height * scale, self.start_width * scale

    def representation(self) -> Representation:
        """How the generator's output maps to audio (the runtime's and the trainer's view)."""
        frames, bins = self.resolution
        return Representation(
            frames=frames,
            bins=bins,
            mag_normalizer_a=self.normalizer_a[0],
            mag_normalizer_b=self.normalizer_b[0],
            p_normalizer_a=self.normalizer_a[1],
            p_normalizer_b=self.normalizer_b[1],
        )


def released_config() -> GeneratorConfig:
    """The released all_instruments / acoustic_only shapes (mel_prog_hires): 7.3 M parameters."""
    return GeneratorConfig(
        latent_size=256,
        pitches=tuple(range(24, 85)),
        start_height=2,
        start_width=16,
        filters=(256, 256, 256, 256, 128, 64, 32),
    )


def weight_name(block: int, layer: str, kind: str) -> str:
    """Magenta's variable name (without ``Generator/`` and the EMA suffix); kind: kernel|bias."""
    leaf = "conv2d/kernel" if kind == "kernel" else "bias"
    return f"{SCOPE}/progressive_gan_block_{block}/{layer}/{leaf}"


def expected_shapes(config: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    """Every generator variable's shape (HWIO kernels) for ``config``, by Magenta name."""
    k = config.kernel_size
    shapes: dict[str, tuple[int, ...]] = {}
    for b, nf in enumerate(config.filters, start=1):
        if b == 1:
            conv0 = (
                config.start_height,
                config.start_width,
                config.latent_size + len(config.pitches),
                nf,
            )
        else:
            conv0 = (k, k, config.filters[b - 2], nf)
        for layer, kernel in (("conv0", conv0), ("conv1", (k, k, nf, nf))):
            shapes[weight_name(b, layer, "kernel")] = kernel
            shapes[weight_name(b, layer, "bias")] = (nf,)
        shapes[weight_name(b, "to_rgb", "kernel")] = (1, 1, nf, COLORS)
        shapes[weight_name(b, "to_rgb", "bias")] = (COLORS,)
    return shapes


def random_weights(config: GeneratorConfig, seed: int) -> dict[str, np.ndarray]:
    """Weights as Magenta initialises them (kernels N(0,1), equalized LR; biases 0), by name."""
    rng = np.random.default_rng(seed)
    return {
        name: (
            rng.standard_normal(shape, dtype=np.float32)
            if name.endswith("kernel")
            else np.zeros(shape, np.float32)
        )
        for name, shape in expected_shapes(config).items()
    }


def check_weights(
    weights: dict[str, np.ndarray], config: GeneratorConfig, partial: bool = False
) -> None:
    """ValueError naming the first weight whose shape ``config`` does not give (or that is
    missing, unless ``partial``: then only the weights present are checked)."""
    for name, shape in expected_shapes(config).items():
        if name not in weights and partial:
            continue
        if name not in weights or tuple(weights[name].shape) != shape:
            got = None if name not in weights else list(weights[name].shape)
            raise ValueError(f"weight '{name}': expected shape {list(shape)}, got {got}")


def lod_weights(num_blocks: int, progress: float) -> list[float]:
    """Level-of-detail blend weight of each block's to_rgb (Magenta ``_generator_alpha``); sum 1."""
    return [max(0.0, min(progress - (b - 2), b - progress)) for b in range(1, num_blocks + 1)]


def upscale_conv_kernel(kernel_oihw: np.ndarray) -> np.ndarray:
    """The [in, out, k+1, k+1] ConvTranspose kernel (stride 2, pads (k-1)/2) that equals nearest
    ×2 then the SAME k×k conv ``kernel_oihw``, k odd.

    Per axis, the k taps of the conv over the upscaled map fall on the small input in pairs
    (neighbouring upscaled pixels are copies): conv tap d becomes ConvTranspose tap k-1-d for
    one output parity and k-d for the other. For k = 3 the four taps are W2, W1+W2, W0+W1, W0:
    16 instead of 36 multiply-adds per input pixel, and no upscaled copy.
    """
    k = kernel_oihw.shape[-1]
    taps = (np.eye(k + 1, k) + np.eye(k + 1, k, -1))[:, ::-1]  # [k+1, k]: 1 at t = k-1-d, k-d
    return np.einsum("yd,xe,oide->ioyx", taps, taps, kernel_oihw)


def he_scale(kernel_shape: tuple[int, ...], slope: float) -> float:
    """Equalized-LR run-time scale ``sqrt(2 / ((1 + slope²) · fan_in))``, fan_in = prod(HWI)."""
    return math.sqrt(2.0 / ((1.0 + slope * slope) * math.prod(kernel_shape[:-1])))


class _Builder:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.names: set[str] = set()
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        self.names.add(name)
        return name

    def op(self, op_type: str, inputs: list[str], name: str | None = None, **attrs) -> str:
        self.count += 1
        out = name or f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def pixel_norm(self, x: str, channels: int | None = None) -> str:
        """``x / sqrt(mean(x², channels) + 1e-8)`` (Magenta ``pixel_norm``).

        On an NCHW feature map (``channels`` given) the mean is a 1x1 Conv to one channel with
        weights 1/C and bias 1e-8: onnxruntime runs that as a GEMM, faster than ReduceMean over
        axis 1. On the [B, features] input vector it is a ReduceMean.
        """
        square = self.op("Mul", [x, x])
        if channels is None:
            mean = self.op("Add", [self.op("ReduceMean", [square, "axis_1"]), "eps"])
        else:
            name = f"channel_mean_{channels}"
            if name not in self.names:
                self.const(name, np.full((1, channels, 1, 1), 1.0 / channels, np.float32))
            mean = self.op("Conv", [square, name, "eps_1"])
        return self.op("Div", [x, self.op("Sqrt", [mean])])

    def upscale(self, x: str, factor: int) -> str:
        """Nearest-neighbour ×factor in H and W (Magenta ``upscale`` = tile + batch_to_space)."""
        scales = f"scales_x{factor}"
        if scales not in self.names:
            self.const(scales, np.array([1, 1, factor, factor], np.float32))
        return self.op(
            "Resize",
            [x, "", scales],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )


def build_generator(
    weights: dict[str, np.ndarray], config: GeneratorConfig, progress: float
) -> onnx.ModelProto:
    """The generator as an ONNX model: ``z`` [B, latent], ``pitch`` int64 [B] → ``spectrogram``.

    Args:
      weights: unscaled stored values by Magenta name (``weight_name``), HWIO kernels; checked
        against ``expected_shapes(config)`` (a mismatch is a ValueError: callers validate first).
      config: shapes, pitch table, to_rgb activation and the normaliser constants.
      progress: Magenta's level-of-detail progress in [0, num_blocks - 1].
    Returns:
      The model (no metadata yet), output float32 [B, frames, bins, 2], denormalised.
    """
    check_weights(weights, config)
    if config.to_rgb_activation not in ("tanh", "linear"):
        raise ValueError(f"to_rgb_activation '{config.to_rgb_activation}' is not supported")
    alphas = lod_weights(config.num_blocks, progress)
    used_blocks = max(b for b, a in enumerate(alphas, start=1) if a > 0)

    def kernel(block: int, layer: str) -> np.ndarray:
        w = weights[weight_name(block, layer, "kernel")].astype(np.float64)
        return w * he_scale(w.shape, slope=1.0 if layer == "to_rgb" else 0.0)

    def bias(block: int, layer: str) -> np.ndarray:
        return weights[weight_name(block, layer, "bias")].astype(np.float32)

    g = _Builder()
    g.const("eps", np.array(PIXEL_NORM_EPS, np.float32))
    g.const("eps_1", np.array([PIXEL_NORM_EPS], np.float32))
    axes = g.const("axis_1", np.array([1], np.int64))

    # Conditioning: concat(z, one_hot(pitch index)) then pixel norm over the 317-vector.
    table = g.const("pitch_table", np.array(config.pitches, np.int64))
    column = g.op("Unsqueeze", [INPUT_PITCH, axes])
    one_hot = g.op("Cast", [g.op("Equal", [column, table])], to=TensorProto.FLOAT)
    x = g.pixel_norm(g.op("Concat", [INPUT_LATENT, one_hot], axis=1))

    # Block 1 conv0 as dense: output pixel (i, j) sees kernel tap (h-1-i, w-1-j).
    h, w, nf = config.start_height, config.start_width, config.filters[0]
    w0 = kernel(1, "conv0")[::-1, ::-1]  # [h, w, in, nf], tap for output (i, j) at [i, j]
    dense = w0.transpose(2, 3, 0, 1).reshape(w0.shape[2], nf * h * w)  # columns in NCHW order
    x = g.op("MatMul", [x, g.const("block_1/conv0/dense", dense.astype(np.float32))])
    x = g.op("Add", [x, g.const("block_1/conv0/bias", np.repeat(bias(1, "conv0"), h * w))])
    x = g.op("Reshape", [x, g.const("dense_to_nchw", np.array([-1, nf, h, w], np.int64))])
    x = g.pixel_norm(g.op("LeakyRelu", [x], alpha=LEAKY_RELU_SLOPE), nf)

    def conv(x: str, block: int, layer: str, upscale: bool = False) -> str:
        """SAME conv + activation; ``upscale``: nearest ×2 first, as one ConvTranspose."""
        k = kernel(block, layer).transpose(3, 2, 0, 1)  # OIHW
        pad = k.shape[2] // 2
        name = f"block_{block}/{layer}"
        w = upscale_conv_kernel(k) if upscale else k
        inputs = [
            x,
            g.const(f"{name}/kernel", w.astype(np.float32)),
            g.const(f"{name}/bias", bias(block, layer)),
        ]
        if upscale:
            out = g.op("ConvTranspose", inputs, strides=[2, 2], pads=[pad] * 4)
        else:
            out = g.op("Conv", inputs, pads=[pad] * 4)
        if layer == "to_rgb":
            return g.op("Tanh", [out]) if config.to_rgb_activation == "tanh" else out
        return g.pixel_norm(g.op("LeakyRelu", [out], alpha=LEAKY_RELU_SLOPE), k.shape[0])

    x = conv(x, 1, "conv1")
    parts: list[str] = []
    for b in range(1, used_blocks + 1):
        if b > 1:
            x = conv(conv(x, b, "conv0", upscale=True), b, "conv1")
        if alphas[b - 1] > 0:
            rgb = conv(x, b, "to_rgb")
            if alphas[b - 1] != 1.0:
                alpha = g.const(f"lod_alpha_{b}", np.array(alphas[b - 1], np.float32))
                rgb = g.op("Mul", [rgb, alpha])
            if b < config.num_blocks:
                rgb = g.upscale(rgb, 2 ** (config.num_blocks - b))
            parts.append(rgb)
    y = parts[0] if len(parts) == 1 else g.op("Sum", parts)

    # Denormalise per channel (Magenta's specgrams_prespecified_normalizer.denormalize_op).
    shape_c = (1, COLORS, 1, 1)
    y = g.op(
        "Sub", [y, g.const("norm_b", np.array(config.normalizer_b, np.float32).reshape(shape_c))]
    )
    y = g.op(
        "Div", [y, g.const("norm_a", np.array(config.normalizer_a, np.float32).reshape(shape_c))]
    )
    g.op("Transpose", [y], name=OUTPUT_SPECTROGRAM, perm=[0, 2, 3, 1])

    frames, bins = config.resolution
    graph = helper.make_graph(
        g.nodes,
        "gansynth_generator",
        inputs=[
            helper.make_tensor_value_info(
                INPUT_LATENT, TensorProto.FLOAT, ["batch", config.latent_size]
            ),
            helper.make_tensor_value_info(INPUT_PITCH, TensorProto.INT64, ["batch"]),
        ],
        outputs=[
            helper.make_tensor_value_info(
                OUTPUT_SPECTROGRAM, TensorProto.FLOAT, ["batch", frames, bins, COLORS]
            )
        ],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="gansynth-instrument export",
    )
    onnx.checker.check_model(model)
    return model


def graph_digest(model: onnx.ModelProto) -> str:
    """Content digest of the graph (structure + weights): same export → same digest."""
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()[:32]


def _check_shape(name: str, got: tuple[int, ...], want: tuple[int, ...]) -> None:
    if tuple(got) != tuple(want):
        raise ValueError(f"'{name}' has shape {list(got)}, the config needs {list(want)}")


def stored_weights(model: onnx.ModelProto, config: GeneratorConfig) -> dict[str, np.ndarray]:
    """The inverse of ``build_generator``: stored weights by Magenta name from a model's
    initializers (equalized-LR scales divided out, the dense block-1 conv0 and the upscale
    ConvTransposes turned back into HWIO kernels), so training can go on from an exported model.

    The to_rgb layers (and blocks) the export left out, because nothing read them at its
    progress, are absent from the result. Raises ValueError naming the first tensor whose shape
    does not fit ``config``.
    """
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    shapes = expected_shapes(config)
    out: dict[str, np.ndarray] = {}

    def put(block: int, layer: str, kernel_hwio: np.ndarray, bias: np.ndarray) -> None:
        name = weight_name(block, layer, "kernel")
        _check_shape(name, kernel_hwio.shape, shapes[name])
        _check_shape(weight_name(block, layer, "bias"), bias.shape, shapes[name][-1:])
        slope = 1.0 if layer == "to_rgb" else 0.0
        out[name] = (kernel_hwio / he_scale(kernel_hwio.shape, slope)).astype(np.float32)
        out[weight_name(block, layer, "bias")] = bias.astype(np.float32)

    if "block_1/conv0/dense" not in inits:
        raise ValueError("no 'block_1/conv0/dense' tensor: not a generator this exporter wrote")
    h, w, cin, nf = shapes[weight_name(1, "conv0", "kernel")]
    dense = inits["block_1/conv0/dense"].astype(np.float64)
    _check_shape("block_1/conv0/dense", dense.shape, (cin, nf * h * w))
    bias = inits["block_1/conv0/bias"]
    _check_shape("block_1/conv0/bias", bias.shape, (nf * h * w,))
    kernel = dense.reshape(cin, nf, h, w).transpose(2, 3, 0, 1)[::-1, ::-1]
    put(1, "conv0", kernel, bias.reshape(nf, h * w)[:, 0])

    k = config.kernel_size
    taps = (np.eye(k + 1, k) + np.eye(k + 1, k, -1))[:, ::-1]
    untap = np.linalg.pinv(taps)  # [k, k+1]: exact left inverse of upscale_conv_kernel's taps
    for block in range(1, config.num_blocks + 1):
        for layer in LAYERS:
            key = f"block_{block}/{layer}"
            if (block == 1 and layer == "conv0") or f"{key}/kernel" not in inits:
                continue
            stored = inits[f"{key}/kernel"].astype(np.float64)
            if block > 1 and layer == "conv0":
                if stored.shape[2:] != (k + 1, k + 1):
                    raise ValueError(f"'{key}/kernel' is not a {k + 1}x{k + 1} upscale kernel")
                stored = np.einsum("dy,ex,ioyx->oide", untap, untap, stored)
            put(block, layer, stored.transpose(2, 3, 1, 0), inits[f"{key}/bias"])
    return out
