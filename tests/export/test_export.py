"""The exported ONNX generator against Magenta's own outputs (fixtures/magenta-tiny)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from gansynth_instrument import __version__
from gansynth_instrument.export.graph import graph_digest, lod_weights, upscale_conv_kernel
from gansynth_instrument.export.onnx_model import export_model, random_checkpoint
from gansynth_instrument.model.metadata import (
    INPUT_LATENT,
    INPUT_PITCH,
    OUTPUT_SPECTROGRAM,
    ModelInfo,
)
from gansynth_instrument.model.spectral import spectrogram_to_audio

# Magenta computes in float32; an independent float64 re-implementation agreed to 2.5e-4.
SPEC_ATOL = 1e-3


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _renormalise(spec: np.ndarray, info: ModelInfo) -> np.ndarray:
    """Our denormalised output back on the generator's tanh scale (where reference 'spec' is)."""
    rep = info.representation
    a = np.array([rep.mag_normalizer_a, rep.p_normalizer_a])
    b = np.array([rep.mag_normalizer_b, rep.p_normalizer_b])
    return spec.astype(np.float64) * a + b


@pytest.mark.parametrize(
    ("model_fixture", "reference", "progress"),
    [
        ("tiny_model", "reference.npz", 6.0),
        ("tiny_model_stage11", "reference_stage_00011.npz", 5.5),
    ],
)
def test_spectrogram_matches_magenta(
    request: pytest.FixtureRequest,
    magenta_tiny: Path,
    model_fixture: str,
    reference: str,
    progress: float,
) -> None:
    path: Path = request.getfixturevalue(model_fixture)
    ref = np.load(magenta_tiny / reference)
    info = ModelInfo.from_props({p.key: p.value for p in onnx.load(str(path)).metadata_props})
    assert info.progress == progress
    n = ref["spec"].shape[0]
    spec = _session(path).run(
        [OUTPUT_SPECTROGRAM],
        {INPUT_LATENT: ref["z"][:n], INPUT_PITCH: ref["pitches"][:n].astype(np.int64)},
    )[0]
    assert spec.shape == ref["spec"].shape
    assert spec.dtype == np.float32
    np.testing.assert_allclose(_renormalise(spec, info), ref["spec"], rtol=0, atol=SPEC_ATOL)


@pytest.mark.parametrize(
    ("model_fixture", "reference"),
    [("tiny_model", "reference.npz"), ("tiny_model_stage11", "reference_stage_00011.npz")],
)
def test_audio_matches_magenta(
    request: pytest.FixtureRequest, magenta_tiny: Path, model_fixture: str, reference: str
) -> None:
    """Exported graph + the runtime's numpy post-processing = Magenta's generate_samples_from_z."""
    path: Path = request.getfixturevalue(model_fixture)
    ref = np.load(magenta_tiny / reference)
    info = ModelInfo.from_props({p.key: p.value for p in onnx.load(str(path)).metadata_props})
    spec = _session(path).run(
        [OUTPUT_SPECTROGRAM], {INPUT_LATENT: ref["z"], INPUT_PITCH: ref["pitches"].astype(np.int64)}
    )[0]
    audio = spectrogram_to_audio(spec, info.representation, sample_rate=info.sample_rate)
    peak = float(np.abs(ref["audio"]).max())
    assert audio.shape == ref["audio"].shape
    assert float(np.abs(audio - ref["audio"]).max()) <= 1e-3 * peak


def test_onnx_file_loads_in_old_runtimes_and_has_dynamic_batch(tiny_model: Path) -> None:
    model = onnx.load(str(tiny_model))
    assert model.ir_version <= 9
    assert all(o.version <= 18 for o in model.opset_import if o.domain in ("", "ai.onnx"))
    inputs = {i.name: i for i in model.graph.input}
    assert next(d.dim_param for d in inputs[INPUT_LATENT].type.tensor_type.shape.dim) == "batch"
    assert inputs[INPUT_PITCH].type.tensor_type.elem_type == onnx.TensorProto.INT64
    info = ModelInfo.from_props({p.key: p.value for p in model.metadata_props})
    session = _session(tiny_model)
    rng = np.random.default_rng(5)
    z = rng.standard_normal((3, 256), dtype=np.float32)
    pitches = np.array([24, 60, 84], np.int64)
    batch = session.run(None, {INPUT_LATENT: z, INPUT_PITCH: pitches})[0]
    for i in range(3):
        one = session.run(None, {INPUT_LATENT: z[i : i + 1], INPUT_PITCH: pitches[i : i + 1]})[0]
        # Batch size changes only the float32 summation order: same tolerance as against Magenta.
        np.testing.assert_allclose(
            _renormalise(batch[i], info), _renormalise(one[0], info), rtol=0, atol=SPEC_ATOL
        )


def test_metadata_describes_the_model(tiny_model: Path, magenta_tiny: Path) -> None:
    model = onnx.load(str(tiny_model))
    info = ModelInfo.from_props({p.key: p.value for p in model.metadata_props})
    flags = json.loads((magenta_tiny / "experiment.json").read_text())
    assert info.latent_size == flags["latent_vector_size"]
    assert info.pitches == tuple(range(24, 85))
    assert info.sample_rate == flags["sample_rate"] and info.audio_length == flags["audio_length"]
    assert info.representation.mag_normalizer_a == flags["mag_normalizer_a"]
    assert info.source_step == 54 and info.source.endswith("stage_00012/model.ckpt-54")
    assert info.exporter_version == __version__
    assert info.digest == graph_digest(model)  # digest of graph + weights, metadata excluded


def _initializer_names(model: onnx.ModelProto) -> list[str]:
    return [t.name for t in model.graph.initializer]


def test_no_dead_weight_at_progress_6(tiny_model: Path) -> None:
    model = onnx.load(str(tiny_model))
    ops = [n.op_type for n in model.graph.node]
    names = _initializer_names(model)
    assert [n for n in names if "to_rgb" in n] == ["block_7/to_rgb/kernel", "block_7/to_rgb/bias"]
    assert ops.count("Transpose") == 1 and model.graph.node[-1].op_type == "Transpose"
    assert ops.count("MatMul") == 1 and "block_1/conv0/dense" in names
    # Upscale + conv0 of blocks 2..7 are one ConvTranspose each; at progress 6 nothing else
    # upscales (no to_rgb branch is blended in).
    assert ops.count("ConvTranspose") == 6 and "Resize" not in ops
    kernels = {t.name: tuple(t.dims[2:]) for t in model.graph.initializer if "/kernel" in t.name}
    assert all(kernels[f"block_{b}/conv0/kernel"] == (4, 4) for b in range(2, 8))
    assert all(kernels[f"block_{b}/conv1/kernel"] == (3, 3) for b in range(1, 8))
    assert len(kernels) == 6 + 7 + 1  # conv0 2..7, conv1 1..7, block 7's to_rgb


def _run_one_node(op_type: str, x: np.ndarray, kernel: np.ndarray, **attrs) -> np.ndarray:
    """``op_type(x, kernel)`` alone in onnxruntime."""
    graph = helper.make_graph(
        [helper.make_node(op_type, ["x", "w"], ["y"], **attrs)],
        op_type,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[onnx.numpy_helper.from_array(kernel.astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("size", [3, 5])
def test_upscale_conv_kernel_is_upscale_then_conv(size: int) -> None:
    rng = np.random.default_rng(size)
    x = rng.standard_normal((2, 4, 5, 7), dtype=np.float32)
    kernel = rng.standard_normal((3, 4, size, size), dtype=np.float32)  # OIHW
    pads = [size // 2] * 4
    upscaled = x.repeat(2, axis=2).repeat(2, axis=3)  # Magenta's nearest ×2
    expected = _run_one_node("Conv", upscaled, kernel, pads=pads)
    got = _run_one_node("ConvTranspose", x, upscale_conv_kernel(kernel), strides=[2, 2], pads=pads)
    assert got.shape == expected.shape == (2, 3, 10, 14)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_mid_transition_keeps_exactly_the_two_blended_branches(tiny_model_stage11: Path) -> None:
    names = _initializer_names(onnx.load(str(tiny_model_stage11)))
    assert sorted(n for n in names if "to_rgb/kernel" in n) == [
        "block_6/to_rgb/kernel",
        "block_7/to_rgb/kernel",
    ]


def test_lod_weights_sum_to_one() -> None:
    for progress in np.linspace(0.0, 6.0, 25):
        weights = lod_weights(7, float(progress))
        assert sum(weights) == pytest.approx(1.0)
        assert sum(w > 0 for w in weights) <= 2


def test_random_full_size_model_has_released_shapes(tmp_path: Path) -> None:
    checkpoint = random_checkpoint(seed=1)
    assert sum(w.size for w in checkpoint.weights.values()) == 7_311_246  # Magenta's count
    output = tmp_path / "full.onnx"
    info = export_model(checkpoint, output)
    model = onnx.load(str(output))
    kept = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.name.startswith("block_"))
    # to_rgb 1..6 dropped (2,444 values); the dense layer's bias is repeated over 2x16 pixels;
    # conv0 of blocks 2..7 hold 4x4 instead of 3x3 taps (in x out: 3 x 256², 256x128, 128x64,
    # 64x32).
    conv0_taps = 3 * 256 * 256 + 256 * 128 + 128 * 64 + 64 * 32
    assert kept == 7_308_802 + 256 * (2 * 16 - 1) + (16 - 9) * conv0_taps
    spec = _session(output).run(
        None,
        {
            INPUT_LATENT: np.random.default_rng(0).standard_normal((1, 256), dtype=np.float32),
            INPUT_PITCH: np.array([60], np.int64),
        },
    )[0]
    assert spec.shape == (1, 128, 1024, 2) and np.isfinite(spec).all()
    assert info.digest != export_model(random_checkpoint(seed=2), tmp_path / "other.onnx").digest
    assert info.digest == export_model(random_checkpoint(seed=1), tmp_path / "same.onnx").digest
