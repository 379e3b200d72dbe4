"""Finding and reading Magenta checkpoints: layouts, hparams, pitch lists, unsupported variants."""

from __future__ import annotations

import itertools
import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from bundle_writer import write_bundle

from gansynth_instrument.errors import CheckpointError
from gansynth_instrument.export.bundle import TensorBundle
from gansynth_instrument.export.checkpoint import (
    EMA_SUFFIX,
    GENERATOR_SCOPE,
    read_checkpoint,
)
from gansynth_instrument.export.graph import random_weights
from gansynth_instrument.export.hparams import NSYNTH_PITCHES, SET_FLAGS_DEFAULTS, magenta_progress
from gansynth_instrument.export.onnx_model import export_model
from gansynth_instrument.model.metadata import INPUT_LATENT, INPUT_PITCH

STAGE12, STAGE11 = "stage_00012", "stage_00011"


@pytest.fixture
def model_dir(tmp_path: Path, magenta_tiny: Path) -> Path:
    """A writable copy of magenta-tiny (experiment.json + both stages), named like a release."""
    dest = tmp_path / "tiny_model"
    shutil.copytree(
        magenta_tiny,
        dest,
        copy_function=shutil.copyfile,
        ignore=shutil.ignore_patterns("*.npz", "*.wav", "*.mid", "*.md"),
    )
    return dest


def _edit_json(path: Path, **changes: object) -> None:
    flags = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            del flags[key]
        else:
            flags[key] = value
    path.write_text(json.dumps(flags))


def _fixture_bundle(magenta_tiny: Path, stage: str = STAGE12) -> TensorBundle:
    step = 54 if stage == STAGE12 else 46
    return TensorBundle(magenta_tiny / stage / f"model.ckpt-{step}")


def _generate(model: Path, z: np.ndarray, pitches: list[int]) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_LATENT: z, INPUT_PITCH: np.array(pitches, np.int64)})[0]


# --- layouts -------------------------------------------------------------------------------------


def test_model_dir_uses_last_stage_and_its_global_step(model_dir: Path, magenta_tiny: Path) -> None:
    ckpt = read_checkpoint(model_dir)
    bundle = _fixture_bundle(magenta_tiny)
    assert ckpt.step == int(bundle.read("global_step"))
    assert ckpt.progress == 6.0
    assert ckpt.source == f"tiny_model/{STAGE12}/model.ckpt-54"
    for name, value in ckpt.weights.items():  # the EMA copies, not the raw weights
        np.testing.assert_array_equal(value, bundle.read(GENERATOR_SCOPE + name + EMA_SUFFIX))


def test_stage_dir_reads_experiment_json_from_parent(model_dir: Path) -> None:
    ckpt = read_checkpoint(model_dir / STAGE11)
    assert (ckpt.step, ckpt.progress) == (46, 5.5)


def test_training_dir_with_meta_events_and_early_stages(model_dir: Path) -> None:
    for i in range(3):
        (model_dir / f"stage_{i:05d}").mkdir()
    stage = model_dir / STAGE12
    (stage / "model.ckpt-54.meta").write_bytes(b"\x0a\x05junk" * 100)
    (stage / "events.out.tfevents.1700000000.host").write_bytes(b"\x00" * 64)
    (stage / "graph.pbtxt").write_text("node {}\n")
    assert read_checkpoint(model_dir).step == 54


def test_stale_absolute_checkpoint_path_falls_back_to_the_named_file(model_dir: Path) -> None:
    stage = model_dir / STAGE12
    for f in (model_dir / STAGE11).glob("model.ckpt-46.*"):
        shutil.copyfile(f, stage / f.name)
    stale = "/home/trainer/gansynth/tiny_run/stage_00012/model.ckpt-46"
    (stage / "checkpoint").write_text(f'model_checkpoint_path: "{stale}"\n')
    ckpt = read_checkpoint(model_dir)
    assert ckpt.source.endswith("/model.ckpt-46")  # the file the checkpoint names, not the newest
    (stage / "checkpoint").write_text('model_checkpoint_path: "/gone/model.ckpt-7"\n')
    assert read_checkpoint(model_dir).source.endswith("/model.ckpt-54")  # named file absent


def test_missing_checkpoint_file_takes_numerically_highest_step(model_dir: Path) -> None:
    stage = model_dir / STAGE12
    for f in (model_dir / STAGE11).glob("model.ckpt-46.*"):
        shutil.copyfile(f, stage / f.name.replace("-46.", "-100."))  # "100" < "54" as text
    (stage / "checkpoint").unlink()
    ckpt = read_checkpoint(model_dir)
    assert ckpt.source.endswith("/model.ckpt-100")
    assert ckpt.step == 46  # global_step stored inside that bundle


def test_zip_of_a_release_dir(model_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "tiny_model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(model_dir.rglob("*")):
            zf.write(f, Path("tiny_model") / f.relative_to(model_dir))
    ckpt = read_checkpoint(archive)
    direct = read_checkpoint(model_dir)
    assert (ckpt.step, ckpt.progress) == (direct.step, direct.progress)
    assert ckpt.source == f"tiny_model.zip:tiny_model/{STAGE12}/model.ckpt-54"
    for name, value in direct.weights.items():
        np.testing.assert_array_equal(ckpt.weights[name], value)


def test_zip_with_two_models_is_ambiguous(model_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for root in ("a", "b"):
            zf.write(model_dir / "experiment.json", f"{root}/experiment.json")
    with pytest.raises(CheckpointError, match=r"two\.zip: expected one model folder .*'a/', 'b/'"):
        read_checkpoint(archive)


def test_error_inside_a_zip_names_the_zip(model_dir: Path, tmp_path: Path) -> None:
    _edit_json(model_dir / "experiment.json", data_type="linear")
    archive = tmp_path / "rel.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(model_dir.rglob("*")):
            zf.write(f, Path("rel") / f.relative_to(model_dir))
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(archive)
    assert str(err.value).startswith(f"{archive}:rel/experiment.json: data_type")


# --- pitch lists (course models) -----------------------------------------------------------------


def test_meta_json_pitches_drive_the_one_hot(
    model_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    shifted = [p + 6 for p in NSYNTH_PITCHES]  # 61 pitches 30..90: same one-hot depth
    meta = {f"inst_{p}": {"pitch": p, "instrument_source": 0} for p in shifted}
    (model_dir / "meta.json").write_text(json.dumps(meta))
    ckpt = read_checkpoint(model_dir)
    assert ckpt.config.pitches == tuple(shifted)
    out = tmp_path / "shifted.onnx"
    export_model(ckpt, out)
    z = np.random.default_rng(0).standard_normal((2, 256), dtype=np.float32)
    np.testing.assert_array_equal(_generate(out, z, [30, 90]), _generate(tiny_model, z, [24, 84]))


def test_meta_json_pitch_count_must_match_the_weights(model_dir: Path) -> None:
    meta = {f"tone_{p}": {"pitch": p} for p in (36, 43, 48, 55, 60, 67, 72, 79, 84)}
    (model_dir / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(
        CheckpointError, match=r"block_1/conv0/conv2d/kernel' has shape .*9 pitches"
    ):
        read_checkpoint(model_dir)


def test_single_pitch_course_model(model_dir: Path, magenta_tiny: Path, tmp_path: Path) -> None:
    """A chop/pad course model knows one pitch (32): its conv0 takes latent + 1 inputs."""
    config = replace(read_checkpoint(model_dir).config, pitches=(32,))
    meta = {f"chunk{i}_32": {"pitch": 32, "instrument_source": 0} for i in range(5)}
    (model_dir / "meta.json").write_text(json.dumps(meta))
    source = _fixture_bundle(magenta_tiny)
    tensors = {n: source.read(n) for n in source.entries}
    for name, value in random_weights(config, seed=3).items():
        tensors[GENERATOR_SCOPE + name + EMA_SUFFIX] = value
    stage = model_dir / STAGE12
    for f in stage.iterdir():
        f.unlink()
    write_bundle(stage / "model.ckpt-54", tensors)
    ckpt = read_checkpoint(model_dir)
    assert ckpt.config.pitches == (32,)
    out = tmp_path / "course.onnx"
    info = export_model(ckpt, out)
    assert info.pitches == (32,)
    spec = _generate(out, np.ones((1, 256), np.float32), [32])
    assert spec.shape == (1, 128, 1024, 2) and np.isfinite(spec).all()


# --- hyperparameters -----------------------------------------------------------------------------


def test_missing_keys_take_magenta_set_flags_defaults(model_dir: Path) -> None:
    _edit_json(model_dir / "experiment.json", kernel_size=..., train_time_limit=...)
    assert read_checkpoint(model_dir).config.kernel_size == SET_FLAGS_DEFAULTS["kernel_size"]
    _edit_json(model_dir / "experiment.json", fmap_max=...)  # set_flags: 128, not the 8 trained
    with pytest.raises(CheckpointError, match=r"conv0/conv2d/kernel' has shape \[2, 16, 317, 8\]"):
        read_checkpoint(model_dir)


def test_latent_size_mismatch_is_an_error_not_a_guess(model_dir: Path) -> None:
    _edit_json(model_dir / "experiment.json", latent_vector_size=128)
    with pytest.raises(
        CheckpointError, match=r"implies \[2, 16, 189, 8\] \(latent_vector_size=128"
    ):
        read_checkpoint(model_dir)


def test_fewer_resolutions_than_blocks_is_an_error(model_dir: Path) -> None:
    _edit_json(model_dir / "experiment.json", num_resolutions=6, start_height=4, start_width=32)
    with pytest.raises(
        CheckpointError, match=r"has 7 blocks, experiment\.json's num_resolutions is 6"
    ):
        read_checkpoint(model_dir)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("simple_arch", True),
        ("data_type", "linear"),
        ("data_type", "phase"),
        ("data_normalizer", "specgrams_freq_normalizer"),
        ("to_rgb_activation", "sigmoid"),
        ("scale_mode", "H"),
        ("audio_length", 32000),
    ],
)
def test_unsupported_variants_fail_clearly(model_dir: Path, key: str, value: object) -> None:
    _edit_json(model_dir / "experiment.json", **{key: value})
    expected = f"experiment.json: {key} = {json.dumps(value)} is not supported"
    with pytest.raises(CheckpointError, match=expected.replace(".", r"\.")):
        read_checkpoint(model_dir)


def test_linear_to_rgb_activation_has_no_tanh(model_dir: Path, tmp_path: Path) -> None:
    _edit_json(model_dir / "experiment.json", to_rgb_activation="linear")
    out = tmp_path / "linear.onnx"
    export_model(read_checkpoint(model_dir), out)
    assert "Tanh" not in {n.op_type for n in onnx.load(str(out)).graph.node}


def test_even_kernel_size_fails_clearly(model_dir: Path) -> None:
    _edit_json(model_dir / "experiment.json", kernel_size=4)
    with pytest.raises(CheckpointError, match=r"experiment\.json: an even kernel_size \(4\)"):
        read_checkpoint(model_dir)


def test_other_resolutions_fail_clearly(model_dir: Path) -> None:
    _edit_json(model_dir / "experiment.json", start_height=4, start_width=8)  # 256x512, lo-freq-res
    with pytest.raises(CheckpointError, match=r"final resolution 256x512 .* not supported"):
        read_checkpoint(model_dir)


def test_early_training_stage_is_refused(model_dir: Path) -> None:
    shutil.rmtree(model_dir / STAGE11)
    (model_dir / STAGE12).rename(model_dir / "stage_00004")
    with pytest.raises(CheckpointError, match=r"stage 4 trains 3 of 7 blocks"):
        read_checkpoint(model_dir)


def test_non_progressive_training_uses_all_blocks(model_dir: Path) -> None:
    _edit_json(model_dir / "experiment.json", train_progressive=False)
    assert read_checkpoint(model_dir / STAGE11).progress == 6.0


def test_progress_follows_magenta_schedule() -> None:
    released = dict(SET_FLAGS_DEFAULTS, stable_stage_num_images=800_000)
    released["transition_stage_num_images"] = 800_000
    stage = 1_600_000  # images per stable + transition pair
    assert magenta_progress(released, 7, 11_000_000, 0.0) == 6.0
    assert magenta_progress(released, 7, 5 * stage + 800_000 + 400_000, 0.0) == 5.5
    assert magenta_progress(released, 7, 5 * stage + 800_000, 0.0) == 5.0
    assert magenta_progress(released, 6, 11_000_000, 0.0) == 5.0  # capped at num_blocks - 1


def test_progress_from_train_time_is_monotonic_and_ends_at_last_block() -> None:
    timed = dict(SET_FLAGS_DEFAULTS, train_time_limit=1300.0, train_time_stage_multiplier=1.0)
    times = np.linspace(0.0, 1400.0, 57)
    progress = [magenta_progress(timed, 7, 0, float(t)) for t in times]
    assert progress[0] == 0.0 and progress[-1] == 6.0
    assert all(b >= a for a, b in itertools.pairwise(progress))
    assert magenta_progress(timed, 7, 0, 150.0) == pytest.approx(0.5)  # mid first transition
