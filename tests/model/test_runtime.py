"""Model loading and generation: exported magenta-tiny vs Magenta's audio, on each backend here."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from gansynth_instrument.cli import main
from gansynth_instrument.errors import ModelError
from gansynth_instrument.model.metadata import format_pitches
from gansynth_instrument.model.runtime import (
    _cuda_device_count,
    _start_cuda_session,
    available_backends,
    load_model,
    read_info,
)

# Issue 4: exported model → generate() within 1e-3 × peak of Magenta's generate_samples_from_z.
END_TO_END_TOLERANCE = 1e-3
CPU_BACKENDS = [b for b in available_backends() if b != "cuda"]


@pytest.fixture(scope="module")
def reference(magenta_tiny: Path):
    return np.load(magenta_tiny / "reference.npz")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize(
    ("stage", "reference_file"),
    [("tiny_model", "reference.npz"), ("tiny_model_stage11", "reference_stage_00011.npz")],
)
def test_generate_reproduces_magentas_audio(request, magenta_tiny, stage, reference_file, backend):
    ref = np.load(magenta_tiny / reference_file)
    model = load_model(request.getfixturevalue(stage), backend=backend)
    assert model.backend == backend
    audio = model.generate(ref["z"], ref["pitches"])
    assert audio.shape == ref["audio"].shape and audio.dtype == np.float32
    for note, expected in enumerate(ref["audio"]):
        error = np.abs(audio[note] - expected).max()
        assert error <= END_TO_END_TOLERANCE * np.abs(expected).max(), f"note {note}"


def test_model_exposes_its_metadata(tiny_model):
    model = load_model(tiny_model)
    assert model.pitches == tuple(range(24, 85))
    assert (model.latent_size, model.sample_rate, model.audio_length) == (256, 16000, 64000)
    assert model.digest == read_info(tiny_model).digest and len(model.digest) >= 16
    assert model.backend in CPU_BACKENDS  # no GPU here → never cuda


def test_auto_prefers_openvino_on_cpu_and_says_nothing(tiny_model, capfd):
    capfd.readouterr()
    model = load_model(tiny_model)
    if _cuda_device_count() == 0:
        assert model.backend == ("openvino" if "openvino" in CPU_BACKENDS else "cpu")
    assert capfd.readouterr() == ("", "")  # no CUDA loader noise on a CPU-only machine


def test_cuda_backend_without_a_gpu_is_one_clear_error(tiny_model):
    if _cuda_device_count() > 0:
        assert load_model(tiny_model, backend="cuda").backend == "cuda"
    else:
        with pytest.raises(ModelError, match="no CUDA device"):
            load_model(tiny_model, backend="cuda")


def test_unknown_pitch_lists_the_models_pitches(tiny_model, reference):
    model = load_model(tiny_model)
    with pytest.raises(ModelError, match=r"pitch 90 .*24–84"):
        model.generate(reference["z"][:2], [60, 90])


@pytest.mark.parametrize(
    ("z", "pitches", "message"),
    [
        (np.zeros((2, 128)), [60, 61], r"\[batch, 256\]"),
        (np.zeros((2, 256)), [60], "2 latents but 1 pitches"),
        (np.full((1, 256), np.nan), [60], "NaN"),
        (np.zeros((1, 256)), [60.5], "integers"),
    ],
)
def test_bad_requests_are_refused(tiny_model, z, pitches, message):
    with pytest.raises(ModelError, match=message):
        load_model(tiny_model).generate(z, pitches)


def test_empty_batch_gives_no_notes(tiny_model):
    assert load_model(tiny_model).generate(np.zeros((0, 256)), []).shape == (0, 64000)


def test_batches_and_threads_give_the_same_notes(tiny_model, reference):
    """One batch, notes one by one, and two threads at once (the cache renders in a thread)."""
    model = load_model(tiny_model)
    z, pitches = reference["z"][:4], reference["pitches"][:4]
    batch = model.generate(z, pitches)
    singles = np.concatenate([model.generate(z[i : i + 1], pitches[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(singles, batch, atol=1e-5)
    results: dict[int, np.ndarray] = {}

    def worker(k: int) -> None:
        results[k] = model.generate(z, pitches)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        np.testing.assert_allclose(results[k], batch, atol=1e-5)


def test_one_thread_is_allowed_and_zero_is_not(tiny_model, reference):
    model = load_model(tiny_model, threads=1)
    expected = load_model(tiny_model).generate(reference["z"][:1], reference["pitches"][:1])
    np.testing.assert_allclose(
        model.generate(reference["z"][:1], reference["pitches"][:1]), expected, atol=1e-5
    )
    with pytest.raises(ModelError, match="threads"):
        load_model(tiny_model, threads=0)


def test_bf16_is_openvino_only(tiny_model):
    with pytest.raises(ModelError, match="bf16 needs the openvino backend"):
        load_model(tiny_model, backend="cpu", precision="bf16")


def test_bf16_is_close_to_f32(tiny_model, reference):
    if "openvino" not in CPU_BACKENDS:
        pytest.skip("OpenVINO is not installed: no bf16 backend to compare")
    try:
        fast = load_model(tiny_model, precision="bf16")
    except ModelError as err:
        if "no native bf16" not in str(err):
            raise
        pytest.skip(f"this CPU cannot run bf16 ({err})")
    assert (fast.backend, fast.precision) == ("openvino", "bf16")
    z, pitches = reference["z"][:2], reference["pitches"][:2]
    exact = load_model(tiny_model).generate_spectrogram(z, pitches)
    rough = fast.generate_spectrogram(z, pitches)
    snr_db = 10 * np.log10(np.sum(exact**2) / np.sum((rough - exact) ** 2))
    assert 20 < snr_db < 60  # close, yet not f32


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("backend", "tpu", "unknown backend 'tpu'"), ("precision", "f16", "unknown precision")],
)
def test_unknown_options_are_refused(tiny_model, option, value, message):
    with pytest.raises(ModelError, match=message):
        load_model(tiny_model, **{option: value})


def _onnx_without_metadata(path: Path) -> None:
    node = helper.make_node("Identity", ["z"], ["spectrogram"])
    graph = helper.make_graph(
        [node],
        "plain",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("spectrogram", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such model file"),
        (b"", "empty file"),
        (b"\x00garbage\xff" * 10, "not an ONNX model"),
        ("plain-onnx", "not a gansynth-instrument model"),
    ],
)
def test_bad_model_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    if content == "plain-onnx":
        _onnx_without_metadata(path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_info_command_prints_the_metadata(tiny_model, capsys):
    assert main(["info", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    assert "24–84 (61 MIDI notes)" in out
    assert read_info(tiny_model).digest in out
    assert "progress 6" in out


def test_info_command_on_a_bad_file_exits_non_zero(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such model file" in err


def test_format_pitches_compacts_runs():
    assert format_pitches(range(24, 85)) == "24–84"
    assert format_pitches([36, 43, 48, 49, 50, 60, 61]) == "36, 43, 48–50, 60, 61"


def test_cuda_backend_without_the_cuda_provider_is_one_error(tiny_model):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(ModelError, match="backend cuda"):
        load_model(tiny_model, backend="cuda")


def test_a_cuda_session_that_cannot_start_is_one_quiet_error(tiny_model, capfd):
    """Asks onnxruntime-gpu for CUDA regardless of devices: on a machine without usable CUDA
    its loader errors must not reach the terminal, only our one-line ModelError."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():  # plain onnxruntime (macOS)
        pytest.skip("this onnxruntime has no CUDA provider to start")
    capfd.readouterr()
    try:
        session = _start_cuda_session(tiny_model, tiny_model.read_bytes())
    except ModelError as err:
        assert "could not start its CUDA provider" in str(err)
        assert capfd.readouterr() == ("", "")
    else:
        assert session.get_providers()[0] == "CUDAExecutionProvider"
