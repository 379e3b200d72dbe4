"""The exported ONNX generator against Magenta's own outputs (fixtures/magenta-tiny)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gansynth_instrument.metadata import (
    INPUT_LATENT,
    INPUT_PITCH,
    OUTPUT_SPECTROGRAM,
    ModelInfo,
)

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
