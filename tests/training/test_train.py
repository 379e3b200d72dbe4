"""The PyTorch trainer at tiny size on the CPU: stages, the exported graph's equality with the
torch generator, run → save → resume (identical to an uninterrupted run) → export → generate."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile
import torch

from gansynth_instrument.cli import main
from gansynth_instrument.errors import TrainingError
from gansynth_instrument.export.checkpoint import Checkpoint
from gansynth_instrument.export.graph import (
    GeneratorConfig,
    expected_shapes,
    released_config,
    stored_weights,
    weight_name,
)
from gansynth_instrument.export.hparams import magenta_progress, stage_lengths
from gansynth_instrument.export.onnx_model import export_model
from gansynth_instrument.model import spectral
from gansynth_instrument.model.metadata import Representation
from gansynth_instrument.model.runtime import load_model
from gansynth_instrument.training import (
    config as train_config,
)
from gansynth_instrument.training import (
    dataset,
    pitch_labels,
    regression,
    run_log,
    run_state,
    steps,
    synthesis,
    timbre_presets,
)
from gansynth_instrument.training.networks import Discriminator, Generator
from training.test_dataset import tone

TINY = train_config.CONFIGS["tiny"]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six notes: pitches 40, 52, 64 from two synthetic instruments."""
    notes = [
        dataset.Note(f"inst{i}", pitch, tone(pitch, 4, 16000, seed=10 * i + pitch))
        for i in range(2)
        for pitch in (40, 52, 64)
    ]
    out = tmp_path_factory.mktemp("tiny_dataset")
    return dataset.write_dataset(iter(notes), len(notes), out)


def test_schedule_follows_magentas_stages() -> None:
    at = {images: train_config.schedule_at(TINY, images) for images in (0, 1, 2, 3, 4, 23, 24, 99)}
    assert [(s.stage, s.num_blocks, s.progress) for s in at.values()] == [
        (0, 1, 0.0), (0, 1, 0.0), (1, 2, 0.0), (1, 2, 0.5), (2, 2, 1.0),
        (11, 7, 5.5), (12, 7, 6.0), (12, 7, 6.0),
    ]  # fmt: skip
    cpu = train_config.CONFIGS["cpu"]
    assert train_config.schedule_at(cpu, 0).batch_size == 32
    assert train_config.schedule_at(cpu, 10**6).batch_size == 8


def test_full_config_generator_has_the_released_names_and_shapes() -> None:
    """mel_prog_hires through our trainer: exactly the all_instruments generator variables."""
    config = train_config.generator_config(train_config.CONFIGS["full"], tuple(range(24, 85)))
    assert config == released_config()
    weights = Generator(config).magenta_weights()
    assert {k: v.shape for k, v in weights.items()} == expected_shapes(released_config())
    assert sum(v.size for v in weights.values()) == 7_311_246  # magenta-gansynth.md §6


def test_forward_transform_round_trip_keeps_pitch() -> None:
    """Real notes → normalised IF-mel (what D sees) → audio: the pitch survives."""
    for pitch in (30, 55, 80):
        spec = spectral.audio_to_spectrogram(tone(pitch, 4, 16000, seed=pitch)[None])
        normalised = spectral.normalize(spec)
        assert normalised.min() >= -1 and normalised.max() <= 1
        audio = spectral.spectrogram_to_audio(spectral.denormalize(normalised))[0]
        assert abs(pitch_labels.detect_pitch(audio) - pitch) < 0.2


@pytest.mark.parametrize("progress", [5.5, 6.0])
def test_exported_graph_equals_the_torch_generator(tmp_path: Path, progress: float) -> None:
    """Magenta-named weights through export/graph.py give the torch generator's output."""
    config = GeneratorConfig(
        latent_size=8, pitches=(40, 52, 64), start_height=2, start_width=16,
        filters=(6, 6, 5, 5, 4, 4, 3),
    )  # fmt: skip
    torch.manual_seed(3)
    g = Generator(config)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.1 * torch.randn_like(p))  # non-zero biases too
    path = tmp_path / "g.onnx"
    export_model(Checkpoint(config, g.magenta_weights(), progress, 0, "test"), path)
    z = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    pitches = [64, 40, 52]
    got = load_model(path, backend="cpu").generate_spectrogram(z, pitches)
    one_hot = torch.nn.functional.one_hot(torch.tensor([2, 0, 1]), 3).float()
    with torch.no_grad():
        out = g(torch.from_numpy(z), one_hot, progress, 7).numpy().transpose(0, 2, 3, 1)
    expected = spectral.denormalize(out)
    scale = np.abs(expected).max()
    close = np.isclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
    # Pixel norm of a near-zero feature vector (3-6 channels here) amplifies float32 rounding:
    # a few pixels in 10^4 differ by up to ~1 %; a wrong weight name, layout or scale would
    # move nearly all of them.
    assert close.mean() > 0.9995
    assert np.abs(got - expected).max() < 0.01 * scale


def test_low_resolution_stage_is_the_pooled_full_resolution_output() -> None:
    """Training at a stage's own size is Magenta's full-size output average-pooled to it."""
    config = train_config.generator_config(TINY, (40, 52, 64))
    torch.manual_seed(0)
    g = Generator(config)
    z, one_hot = torch.randn(2, config.latent_size), torch.eye(3)[:2]
    with torch.no_grad():
        small = g(z, one_hot, 2.25, 4)  # transition into block 4: blocks 3 and 4 blended
        full_blend = g(z, one_hot, 2.25, 7)
    pooled = torch.nn.functional.avg_pool2d(full_blend, 8)
    torch.testing.assert_close(small, pooled, rtol=1e-5, atol=1e-6)
    d = Discriminator(config, 4)
    score, classes = d(small, 2.25, 4)
    assert score.shape == (2,) and classes.shape == (2, 3)


def _run(args: list[str]) -> int:
    return main(["train", *args, "--threads", "2"])


def test_train_save_resume_export(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _run([str(tiny_dataset), str(run), "--config", "tiny", "--stop-after-images", "12"]) == 0
    state = torch.load(run / run_state.STATE_PT, weights_only=False)
    assert state["images"] == 12
    stages = sorted(p.name for p in (run / "samples").iterdir())
    assert stages == [f"stage_{i:02d}" for i in range(6)]
    note, rate = soundfile.read(run / "samples" / "stage_05" / "pitch_052.wav")
    assert rate == 16000 and note.shape == (64000,) and np.isfinite(note).all()
    assert json.loads((run / "experiment.json").read_text())["fmap_max"] == 4

    assert _run([str(tiny_dataset), str(run)]) == 0  # resume to the end (26 images)
    with (run / run_log.LOSSES_CSV).open() as f:
        rows = list(csv.DictReader(f))
    images = [int(r["images"]) for r in rows]
    assert images == sorted(set(images)) and images[-1] == 26
    assert all(np.isfinite(float(r["d_loss"])) and np.isfinite(float(r["g_loss"])) for r in rows)
    assert (run / "samples" / "stage_12" / "pitch_064.wav").is_file()

    straight = tmp_path / "straight"  # the same run without the interruption
    assert _run([str(tiny_dataset), str(straight), "--config", "tiny"]) == 0
    with np.load(run / run_state.EMA_NPZ) as a, np.load(straight / run_state.EMA_NPZ) as b:
        assert sorted(a.files) == sorted(b.files) and int(a["global_step"]) == 26
        for name in a.files:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
        trained = [n for n in a.files if n.endswith("ExponentialMovingAverage")]
    assert len(trained) == 7 * 6  # conv0, conv1, to_rgb × kernel, bias × 7 blocks

    model_path = tmp_path / "model.onnx"
    assert main(["export", str(run), "-o", str(model_path)]) == 0
    model = load_model(model_path, backend="cpu")
    assert model.pitches == (40, 52, 64) and model.latent_size == TINY["latent_vector_size"]
    assert model.info.source_step == 26 and model.info.progress == 6.0
    audio = model.generate(np.random.default_rng(1).standard_normal((2, 8)), [40, 64])
    assert audio.shape == (2, 64000) and np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_time_limit_stops_and_saves(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    args = [str(tiny_dataset), str(run), "--config", "tiny", "--time-limit-min", "0"]
    assert _run(args) == 0
    assert "time limit" in capsys.readouterr().out
    assert torch.load(run / run_state.STATE_PT, weights_only=False)["images"] == 2  # one step


def test_train_refusals_are_one_line(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    assert _run([str(tmp_path), str(tmp_path / "run")]) == 1  # not a dataset
    assert "index.json" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("mine")
    assert _run([str(tiny_dataset), str(tmp_path / "busy")]) == 1
    assert "not empty" in capsys.readouterr().err
    run = tmp_path / "run"
    assert _run([str(tiny_dataset), str(run), "--config", "tiny", "--stop-after-images", "2"]) == 0
    capsys.readouterr()
    assert _run([str(tiny_dataset), str(run), "--config", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--config cpu" in err


def test_torchrun_two_processes_gloo(tiny_dataset: Path, tmp_path: Path) -> None:
    """The multi-GPU code path (torch.distributed, gradients all-reduced) on 2 CPU processes."""
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "gansynth_instrument", "train", str(tiny_dataset), str(run), "--config", "tiny",
        "--threads", "1", "--stop-after-images", "12",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.load(run / run_state.STATE_PT, weights_only=False)["images"] == 12  # 2 × batch 2
    assert main(["export", str(run), "-o", str(tmp_path / "m.onnx")]) == 0


def test_hparams_override_and_extend_a_run(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    first = '{"total_num_images": 4, "fmap_max": 3}'
    assert _run([str(tiny_dataset), str(run), "--config", "tiny", "--hparams", first]) == 0
    hp = json.loads((run / "experiment.json").read_text())
    assert (hp["total_num_images"], hp["fmap_max"], hp["trainer_config"]) == (4, 3, "tiny")
    assert torch.load(run / run_state.STATE_PT, weights_only=False)["images"] == 4
    assert _run([str(tiny_dataset), str(run), "--hparams", '{"total_num_images": 6}']) == 0
    assert torch.load(run / run_state.STATE_PT, weights_only=False)["images"] == 6
    capsys.readouterr()
    assert _run([str(tiny_dataset), str(run), "--hparams", '{"fmap_max": 8}']) == 1
    assert "fmap_max cannot change" in capsys.readouterr().err
    for bad, message in (
        ('{"fmap_mux": 8}', "unknown key 'fmap_mux'"),
        ('{"fmap_max": "8"}', "'fmap_max' should be like 4"),
        ('{"num_resolutions": 6}', "128×1024"),
        ("[1]", "expected a JSON object"),
    ):
        args = [str(tiny_dataset), str(tmp_path / "new"), "--config", "tiny", "--hparams", bad]
        assert _run(args) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_export_refuses_a_broken_train_dir(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert _run([str(tiny_dataset), str(run), "--config", "tiny", "--stop-after-images", "2"]) == 0
    npz = run / run_state.EMA_NPZ
    with np.load(npz) as arrays:
        kept = {k: arrays[k] for k in arrays.files if "block_3/conv1/bias" not in k}
    np.savez(npz, **kept)
    assert main(["export", str(run), "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "generator_ema.npz: missing variable" in err and "block_3/conv1/bias" in err
    npz.write_bytes(b"not a zip")
    assert main(["export", str(run), "-o", str(tmp_path / "m.onnx")]) == 1
    assert "not a readable .npz" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_sigterm_saves_and_the_run_goes_on(tiny_dataset: Path, tmp_path: Path) -> None:
    """A run killed by `timeout` or a scheduler (SIGTERM) saves where it was and resumes."""
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "gansynth_instrument", "train", str(tiny_dataset), str(run),
        "--config", "tiny", "--threads", "1", "--hparams", '{"total_num_images": 1000000}',
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until stage 1's samples exist: it is training
            if (run / "samples" / "stage_01").is_dir():
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err[-2000:]
    assert "interrupted" in out
    images = torch.load(run / run_state.STATE_PT, weights_only=False)["images"]
    assert images >= 4
    limit = str(images + 2)
    assert _run([str(tiny_dataset), str(run), "--stop-after-images", limit]) == 0
    assert torch.load(run / run_state.STATE_PT, weights_only=False)["images"] == images + 2


def test_regression_save_resume_export_presets(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    """--objective regression: no discriminator, per-instrument latents saved as timbres.json
    and turned into presets; resuming equals an uninterrupted run; the export plays."""
    run, straight = tmp_path / "run", tmp_path / "straight"
    new = ["--config", "tiny", "--objective", "regression"]
    assert _run([str(tiny_dataset), str(run), *new, "--stop-after-images", "12"]) == 0
    state = torch.load(run / run_state.STATE_PT, weights_only=False)
    assert state["images"] == 12 and state["discriminator"] is None
    assert _run([str(tiny_dataset), str(run)]) == 0  # resume to the end (26 images)
    assert _run([str(tiny_dataset), str(straight), *new]) == 0
    with np.load(run / run_state.EMA_NPZ) as a, np.load(straight / run_state.EMA_NPZ) as b:
        assert int(a["global_step"]) == 26
        for name in a.files:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
    with (run / run_log.LOSSES_CSV).open() as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["images"] == "26" and all(np.isfinite(float(r["loss"])) for r in rows)
    assert (run / "samples" / "stage_12" / "pitch_064.wav").is_file()

    timbres = json.loads((run / regression.TIMBRES_JSON).read_text())
    assert sorted(timbres) == ["inst0", "inst1"]
    assert all(len(v) == TINY["latent_vector_size"] for v in timbres.values())
    presets = timbre_presets.timbre_presets(run, "fluid-", "test")
    assert [p.name for p in presets] == ["fluid-inst0", "fluid-inst1"]

    model_path = tmp_path / "model.onnx"
    assert main(["export", str(run), "-o", str(model_path), "--timbre-prefix", "t-"]) == 0
    model = load_model(model_path, backend="cpu")
    stored = model.info.timbres  # the run's instruments travel in the model
    assert [(t.name, t.instrument) for t in stored] == [("t-inst0", "inst0"), ("t-inst1", "inst1")]
    assert [list(t.latent) for t in stored] == [timbres["inst0"], timbres["inst1"]]
    main(["info", str(model_path)])
    assert "timbres         2: t-inst0, t-inst1" in capsys.readouterr().out
    z = np.stack([p.latent_vector(model.latent_size) for p in presets])
    audio = model.generate(z, [40, 64])
    assert audio.shape == (2, 64000) and np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_regression_sampler_maps_random_latents_to_the_nearest_instrument() -> None:
    latents = regression.timbre_latents(0, 3, 16)
    instruments = ("a", "a", "b", "b", "c", "c")
    sampler = regression.Sampler(instruments, latents)
    rows, z = sampler.batch(np.random.default_rng(0), 64)
    timbre = sampler.timbre[rows]
    np.testing.assert_array_equal(z[:32].numpy(), latents[timbre[:32]].numpy())
    nearest = np.argmax(torch.nn.functional.normalize(z[32:], dim=1).numpy() @ sampler.unit.T, 1)
    np.testing.assert_array_equal(timbre[32:], nearest)


def test_resuming_with_another_objective_is_refused(
    tiny_dataset: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    assert _run([str(tiny_dataset), str(run), "--config", "tiny", "--stop-after-images", "2"]) == 0
    capsys.readouterr()
    assert _run([str(tiny_dataset), str(run), "--objective", "regression"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--objective regression" in err


def test_soundfont_timbres_get_gm_names_programs_and_banks(tmp_path: Path) -> None:
    """The loudest velocity on its General MIDI program in bank 0, the softer in bank 1; an
    instrument of another name on no program."""
    timbres = {f"program{p:03d}-v{v:03d}": [1.0, 0.0] for p in (0, 24) for v in (100, 75)}
    timbres |= {"cello": [1.0, 1.0]}
    (tmp_path / regression.TIMBRES_JSON).write_text(json.dumps(timbres))
    presets = timbre_presets.timbre_presets(tmp_path, "fluid-", "test")
    assert {p.name: (p.bank, p.program) for p in presets} == {
        "fluid-piano": (0, 0),
        "fluid-piano-soft": (1, 0),
        "fluid-nylon-guitar": (0, 24),
        "fluid-nylon-guitar-soft": (1, 24),
        "fluid-cello": (0, None),
    }


def test_pitch_gain_scales_the_pitch_rows_and_their_steps() -> None:
    """trainer_pitch_gain: the one-hot pitch's rows of block 1 start and move gain× (Adam's
    first step is lr per weight, so the pitch rows' is gain · lr, the latent rows' lr)."""
    hp = {**TINY, "trainer_objective": "regression", "generator_learning_rate": 1e-3}
    pitches = (40, 52, 64)
    plain, boosted = (
        run_state.new_run({**hp, "trainer_pitch_gain": g}, pitches, 0) for g in (1, 4)
    )
    latent = TINY["latent_vector_size"]
    kernels = [
        r.generator.blocks["progressive_gan_block_1"]["conv0"].kernel for r in (plain, boosted)
    ]
    torch.testing.assert_close(kernels[1][:, :, :latent], kernels[0][:, :, :latent])
    torch.testing.assert_close(kernels[1][:, :, latent:], 4 * kernels[0][:, :, latent:])
    before = kernels[1].detach().clone()
    where = train_config.schedule_at(boosted.hp, 0)
    real = torch.rand(2, 2, *boosted.config.resolution) * 2 - 1
    real = torch.nn.functional.avg_pool2d(real, 2 ** (7 - where.num_blocks))
    steps.regression_step(boosted, real, torch.tensor([0, 2]), torch.randn(2, latent), where, 1)
    step = (kernels[1].detach() - before).abs()
    torch.testing.assert_close(step[:, :, :latent].max(), torch.tensor(1e-3), rtol=1e-3, atol=0)
    torch.testing.assert_close(step[:, :, latent:].max(), torch.tensor(4e-3), rtol=1e-3, atol=0)


def test_bundled_config_takes_small_batches_at_every_size() -> None:
    """Regression learns pitch per Adam step (each note's pitch detail is in one note only): at
    16x128, batches of 32 left the generator ignoring pitch after 30 k images where batches of 4
    placed 88 % of notes nearest their own pitch, for the same CPU time per image."""
    hp = train_config.CONFIGS["bundled"]
    starts = np.cumsum([0, *stage_lengths(hp)])
    assert [train_config.schedule_at(hp, int(s)).stage for s in starts] == list(range(len(starts)))
    assert max(train_config.schedule_at(hp, int(s)).batch_size for s in starts) <= 4


def test_stage_images_set_each_stage_and_export_progress_agrees() -> None:
    """trainer_stage_images: long cheap low stages, short dear top ones; Magenta's numbering."""
    hp = {**TINY, "trainer_stage_images": [1, 1, 1, 1, 1, 1, 40, 4, 1, 1, 1, 10]}
    at = {i: train_config.schedule_at(hp, i) for i in (0, 5, 6, 45, 46, 48, 50, 53, 58, 63, 99)}
    assert [(s.stage, s.num_blocks, s.progress) for s in at.values()] == [
        (0, 1, 0.0), (5, 4, 2.0), (6, 4, 3.0), (6, 4, 3.0), (7, 5, 3.0), (7, 5, 3.5),
        (8, 5, 4.0), (11, 7, 5.0), (11, 7, 5.5), (12, 7, 6.0), (12, 7, 6.0),
    ]  # fmt: skip
    assert magenta_progress(hp, 7, 48, 0.0) == 3.5  # what export computes from global_step
    assert magenta_progress(hp, 5, 99, 0.0) == 4.0  # capped at num_blocks - 1


def _tiny_generator(seed: int) -> Generator:
    config = GeneratorConfig(
        latent_size=8, pitches=(40, 52, 64), start_height=2, start_width=16,
        filters=(6, 6, 5, 5, 4, 4, 3),
    )  # fmt: skip
    torch.manual_seed(seed)
    g = Generator(config)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.1 * torch.randn_like(p))  # non-zero biases too
    return g


@pytest.mark.parametrize("progress", [2.5, 6.0])
def test_stored_weights_invert_the_export(tmp_path: Path, progress: float) -> None:
    """graph.stored_weights undoes every fold of the export: the weights come back as trained,
    all but the to_rgb layers nothing reads at the export's progress."""
    g = _tiny_generator(5)
    path = tmp_path / "g.onnx"
    export_model(Checkpoint(g.config, g.magenta_weights(), progress, 0, "test"), path)
    back = stored_weights(onnx.load(str(path)), g.config)
    weights = g.magenta_weights()
    used = int(np.ceil(progress)) + 1
    reads = [weight_name(b, layer, kind) for b in range(1, used + 1) for layer in ("conv0", "conv1")
             for kind in ("kernel", "bias")]  # fmt: skip
    assert set(reads) <= set(back) <= set(weights)
    assert weight_name(used, "to_rgb", "kernel") in back
    assert weight_name(1, "to_rgb", "kernel") not in back
    for name, value in back.items():
        np.testing.assert_allclose(value, weights[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_init_from_a_model_reproduces_its_output(tiny_dataset: Path, tmp_path: Path) -> None:
    """A run started --init-from an exported tiny model holds the model's generator: the torch
    generator's output equals the ONNX model's, and a step later the run trains on."""
    run = tmp_path / "run"
    new = ["--config", "tiny", "--objective", "regression"]
    assert _run([str(tiny_dataset), str(run), *new, "--stop-after-images", "12"]) == 0
    model_path = tmp_path / "model.onnx"
    assert main(["export", str(run), "-o", str(model_path)]) == 0
    again = tmp_path / "again"
    args = [str(tiny_dataset), str(again), *new, "--init-from", str(model_path)]
    assert _run([*args, "--stop-after-images", "12"]) == 0  # starts at the model's 12 images
    state = torch.load(again / run_state.STATE_PT, weights_only=False)
    assert state["images"] == 12
    hp = json.loads((again / "experiment.json").read_text())
    ema = Generator(train_config.generator_config(hp, (40, 52, 64)))
    ema.load_state_dict(state["ema"])

    model = load_model(model_path, backend="cpu")
    z = np.random.default_rng(0).standard_normal((3, model.latent_size)).astype(np.float32)
    got = model.generate_spectrogram(z, [64, 40, 52])
    one_hot = torch.nn.functional.one_hot(torch.tensor([2, 0, 1]), 3).float()
    with torch.no_grad():
        out = ema(torch.from_numpy(z), one_hot, model.info.progress, 7)
    expected = spectral.denormalize(out.numpy().transpose(0, 2, 3, 1))
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() < 1e-4 * scale
    timbres = json.loads((again / regression.TIMBRES_JSON).read_text())
    assert timbres == json.loads((run / regression.TIMBRES_JSON).read_text())
    assert _run([str(tiny_dataset), str(again), "--stop-after-images", "14"]) == 0
    assert torch.load(again / run_state.STATE_PT, weights_only=False)["images"] == 14


def test_init_from_a_run_takes_both_generators(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _run([str(tiny_dataset), str(run), "--config", "tiny", "--stop-after-images", "8"]) == 0
    again = tmp_path / "again"
    args = [str(tiny_dataset), str(again), "--config", "tiny", "--init-from", str(run)]
    assert _run([*args, "--stop-after-images", "8"]) == 0
    source = torch.load(run / run_state.STATE_PT, weights_only=False)
    state = torch.load(again / run_state.STATE_PT, weights_only=False)
    assert state["images"] == 8
    for key in ("generator", "ema"):
        for name, value in source[key].items():
            torch.testing.assert_close(state[key][name], value, msg=f"{key} {name}")


def test_init_from_with_new_instruments_adds_their_timbres(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    """A dataset with an instrument the model lacks: the model's instruments keep their latents,
    the new one gets its own, far from theirs (not refused, not a copy), and the run trains."""
    run = tmp_path / "run"
    new = ["--config", "tiny", "--objective", "regression"]
    assert _run([str(tiny_dataset), str(run), *new, "--stop-after-images", "8"]) == 0
    model_path = tmp_path / "model.onnx"
    assert main(["export", str(run), "-o", str(model_path)]) == 0
    notes = [
        dataset.Note(f"inst{i}", pitch, tone(pitch, 4, 16000, seed=10 * i + pitch))
        for i in range(3)
        for pitch in (40, 52, 64)
    ]
    wider = dataset.write_dataset(iter(notes), len(notes), tmp_path / "wider")
    again = tmp_path / "again"
    args = [str(wider), str(again), *new, "--init-from", str(model_path)]
    assert _run([*args, "--stop-after-images", "12"]) == 0
    old = json.loads((run / regression.TIMBRES_JSON).read_text())
    timbres = json.loads((again / regression.TIMBRES_JSON).read_text())
    assert sorted(timbres) == ["inst0", "inst1", "inst2"]
    assert {k: timbres[k] for k in old} == old
    added = np.array(timbres["inst2"])
    assert added.shape == (TINY["latent_vector_size"],)
    for latent in old.values():
        cosine = added @ latent / np.linalg.norm(added) / np.linalg.norm(latent)
        assert cosine < 0.9
    hp = json.loads((again / "experiment.json").read_text())
    assert hp["trainer_new_timbres"] == "inst2"
    assert torch.load(again / run_state.STATE_PT, weights_only=False)["images"] == 12


def test_init_from_a_model_that_does_not_fit_is_one_line(
    tiny_dataset: Path, tmp_path: Path, capsys
) -> None:
    g = _tiny_generator(1)
    path = tmp_path / "g.onnx"
    export_model(Checkpoint(g.config, g.magenta_weights(), 6.0, 20, "test"), path)
    cases = (
        (["--config", "cpu"], "latent size 8, the config's is 256"),
        (["--config", "tiny"], "block_1/conv0/dense"),  # tiny: 4 filters, the model has 6
        (
            ["--config", "tiny", "--hparams", '{"fmap_max": 6}'],
            "progressive_gan_block_3/conv0/conv2d/kernel' has shape [3, 3, 6, 5]",
        ),
    )
    for i, (config, message) in enumerate(cases):
        run = tmp_path / f"run{i}"
        assert _run([str(tiny_dataset), str(run), *config, "--init-from", str(path)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and message in err, err
        assert not run.exists()
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    assert (
        _run([str(tiny_dataset), str(tmp_path / "r"), "--init-from", str(tmp_path / "junk.onnx")])
        == 1
    )
    assert "not an ONNX model" in capsys.readouterr().err
    started = tmp_path / "run0"
    assert (
        _run([str(tiny_dataset), str(started), "--config", "tiny", "--stop-after-images", "2"]) == 0
    )
    capsys.readouterr()
    assert _run([str(tiny_dataset), str(started), "--init-from", str(path)]) == 1
    assert "leave --init-from out" in capsys.readouterr().err


def test_pitch_boost_draws_low_notes_more_often() -> None:
    latents = regression.timbre_latents(0, 2, 16)
    instruments = ("a",) * 4 + ("b",) * 4
    pitches = np.array([30, 50, 60, 70] * 2)
    weights = regression.pitch_weights(pitches, [30, 40, 3])
    assert regression.pitch_weights(pitches, [30, 40, 1]) is None
    sampler = regression.Sampler(instruments, latents, weights)
    rng = np.random.default_rng(0)
    rows = np.concatenate([sampler.batch(rng, 4)[0] for _ in range(3000)])
    share = np.mean(pitches[rows] == 30)
    assert abs(share - 3 / 6) < 0.03  # 3 of 3 + 1 + 1 + 1 parts; uniform would be 1/4


def test_low_bin_boost_weighs_the_lowest_partials() -> None:
    """Both channels' errors cost (reference / f)² more below the reference frequency, up to the
    cap, with f a bin's centre in Magenta's mel matrix; cap 1 is off."""
    assert regression.low_bin_weights(1024, 200, 1) is None
    weights = regression.low_bin_weights(1024, 200, 16).numpy()
    centers = spectral.mel_bin_centres_hz()
    assert centers[5] == pytest.approx(31.3, abs=0.1)  # not the nominal mel spacing's 10 Hz
    assert np.all(np.diff(centers[1:]) > 0) and 7900 < centers[-1] < 8000
    assert np.all(weights[centers >= 200] == 1.0) and np.all(weights[centers <= 50] == 16.0)
    near_100 = int(np.argmin(np.abs(centers - 100)))
    assert weights[near_100] == pytest.approx((200 / centers[near_100]) ** 2)
    pooled = regression.low_bin_weights(16, 200, 16).numpy()
    assert pooled == pytest.approx(weights.reshape(16, 64).mean(axis=1))
    bin_weights = torch.from_numpy(weights)
    real = torch.zeros(1, 2, 4, 1024)
    for channel, name in ((0, "mag_mse"), (1, "if_mse")):
        costs = []
        for where in (near_100, 900):  # the same error in a bin at 100 Hz and far above 200 Hz
            fake = real.clone()
            fake[:, channel, :, where] = 0.5
            costs.append(regression.regression_loss(fake, real, bin_weights=bin_weights)[name])
        assert float(costs[0] / costs[1]) == pytest.approx(weights[near_100])
    bundled = train_config.CONFIGS["bundled"]
    assert train_config.parse_hparams('{"trainer_low_bin_boost": [150, 8]}', bundled) == {
        "trainer_low_bin_boost": [150, 8]
    }
    with pytest.raises(TrainingError, match=r"\[reference Hz, cap\], got \[200\]"):
        train_config.parse_hparams('{"trainer_low_bin_boost": [200]}', bundled)


def test_circular_if_error_is_the_synthesis_phase_step_modulo_2pi() -> None:
    """A partial whose phase step is near π per hop: its real mel IF flips from +0.98 w to
    -0.98 w (w: the mel bin's gain), one partial to synthesis. The circular error, taken on the
    linear bins' phase steps modulo 2π, is near 0 for either; the plain MSE is not."""
    taps = spectral.sparse_mel_to_linear(1024, 16000)
    linear = 10  # 78 Hz: the bundled model's pitch 27 has its 2nd partial here
    period = 1.6  # 2π of the IF channel, normalised (p_normalizer_a 0.8)
    real = torch.zeros(1, 2, 4, 1024)
    fake = real.clone()
    for tap in range(2):
        mel, weight = int(taps.sources[tap, linear]), float(taps.weights[tap, linear])
        assert weight > 0
        # Both taps carry the same step, so the linear bin's step is ±0.98 · 0.8 · (w0 + w1).
        real[:, 1, :, mel] = 0.98 * 0.8
        fake[:, 1, :, mel] = -0.98 * 0.8
    gain = float(taps.weights[:, linear].sum())
    plain = regression.regression_loss(fake, real)["if_mse"]
    circular = regression.regression_loss(fake, real, if_period=period)["if_mse"]
    step = 2 * 0.98 * 0.8 * gain  # fake minus real at the linear bin(s) the two mel bins feed
    assert abs(step - period) < abs(step)  # nearer a whole turn than 0
    assert float(circular) < 0.1 * float(plain)
    fake = real.clone()
    fake[:, 1] += 0.05  # a small error everywhere: the circular error is its image through mel2l
    small = regression.regression_loss(fake, real, if_period=period)["if_mse"]
    images = 0.05 * taps.weights.sum(axis=0)
    assert float(small) == pytest.approx(0.8 * float(np.mean(images**2)), rel=1e-4)


def _real_spectrogram(audio: np.ndarray) -> torch.Tensor:
    """Normalised IF-mel spectrograms [B, 2, frames, bins] of notes, as the trainer reads them."""
    rep = Representation()
    spec = spectral.normalize(spectral.audio_to_spectrogram(audio, rep), rep)
    return torch.from_numpy(spec.transpose(0, 3, 1, 2).copy())


def test_the_trainers_synthesis_is_the_runtimes() -> None:
    """The differentiable synthesis the audio loss hears makes the runtime's audio."""
    rep = Representation()
    audio = np.stack([tone(40, 4, 16000, seed=1), tone(76, 4, 16000, seed=2)])
    spec = _real_spectrogram(audio)
    exact = spectral.spectrogram_to_audio(spectral.denormalize(spec.numpy().transpose(0, 2, 3, 1)))
    made = synthesis.spectrogram_to_audio(spec, rep, 16000).numpy()
    assert made.shape == exact.shape == (2, 64000)
    assert np.abs(made - exact).max() < 1e-4 * np.abs(exact).max()


def test_loudness_and_brightness_of_two_sines() -> None:
    """Level: ln of the mean square (pitch_labels.level_db in nepers); brightness: ln of the 4-8 kHz
    band's share of the energy, here a 5 kHz sine's power against a 1 kHz one's."""
    t = np.arange(64000) / 16000
    audio = 0.5 * np.sin(2 * np.pi * 1000 * t) + 0.05 * np.sin(2 * np.pi * 5000 * t)
    level, share = synthesis.loudness_and_brightness(torch.from_numpy(audio[None]), 16000)[0]
    assert float(level) * 10 / np.log(10) == pytest.approx(pitch_labels.level_db(audio), abs=1e-3)
    assert float(share) == pytest.approx(np.log(0.05**2 / (0.5**2 + 0.05**2)), abs=1e-3)


def test_audio_loss_pulls_level_and_brightness_to_the_real_notes() -> None:
    """A note made 6 dB quiet, and one with a loud 4-8 kHz band, move towards their real notes'
    level and brightness under the audio loss alone, each by its own weight, through their
    magnitudes only."""
    rep = Representation()
    audio = np.stack([tone(52, 4, 16000, seed=3), tone(64, 4, 16000, seed=4)])
    real = _real_spectrogram(audio)
    figures = synthesis.loudness_and_brightness(torch.from_numpy(audio), 16000)
    fake = real.clone()
    fake[0, 0] -= rep.mag_normalizer_a * np.log(4.0)  # power / 4: 6 dB quieter
    top = torch.from_numpy(spectral.mel_bin_centres_hz() >= 4000.0)
    fake[1, 0, :, top] += rep.mag_normalizer_a * 4.0  # e^4 × the 4-8 kHz power: 17 dB brighter

    def errors(x: torch.Tensor, weights: list[float]) -> dict[str, torch.Tensor]:
        return regression.audio_loss(x, figures, rep, weights)

    for weights, key in (([1.0, 0.0], "level_mse"), ([0.0, 1.0], "bright_mse")):
        x = fake.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([x], lr=0.01)
        before = errors(x, weights)[key].item()
        for _ in range(20):
            optimiser.zero_grad()
            errors(x, weights)["loss"].backward()
            optimiser.step()
        after = errors(x, weights)[key].item()
        assert before > 0.5 and after < 0.1 * before, (key, before, after)
        assert x.grad is not None and not x.grad[:, 1].any()  # the IF (the pitch) stays
    bundled = train_config.CONFIGS["bundled"]
    assert train_config.parse_hparams('{"trainer_audio_loss": [0.05, 0]}', bundled) == {
        "trainer_audio_loss": [0.05, 0]
    }
    for bad in ("[0.1]", "[0.1, -1]", '[0.1, "1"]'):
        with pytest.raises(TrainingError, match=r"'trainer_audio_loss' is \[level weight"):
            train_config.parse_hparams(f'{{"trainer_audio_loss": {bad}}}', bundled)


def test_regression_step_adds_the_audio_loss_at_full_size() -> None:
    """trainer_audio_loss [level, brightness]: at full size the step's loss is the spectrogram
    loss plus each weight times its squared error; [0, 0] leaves the step as it was."""
    hp = {**TINY, "trainer_objective": "regression"}
    audio = np.stack([tone(40, 4, 16000, seed=5), tone(64, 4, 16000, seed=6)])
    real = _real_spectrogram(audio)
    figures = synthesis.loudness_and_brightness(torch.from_numpy(audio), 16000)
    z = torch.randn(2, TINY["latent_vector_size"])
    full = train_config.schedule_at(hp, hp["total_num_images"])
    assert full.num_blocks == hp["num_resolutions"]
    on = run_state.new_run({**hp, "trainer_audio_loss": [0.5, 0.25]}, (40, 52, 64), 0)
    first = train_config.schedule_at(hp, 0)
    assert steps.hears_audio(on, full) and not steps.hears_audio(on, first)
    plain, heard = (
        steps.regression_step(
            run_state.new_run({**hp, "trainer_audio_loss": w}, (40, 52, 64), 0),
            real,
            torch.tensor([0, 2]),
            z,
            full,
            1,
            figures,
        )
        for w in ([0.0, 0.0], [0.5, 0.25])
    )
    assert "level_mse" not in plain and heard["level_mse"] > 0 and heard["bright_mse"] > 0
    expected = plain["loss"] + 0.5 * heard["level_mse"] + 0.25 * heard["bright_mse"]
    assert heard["loss"] == pytest.approx(expected, rel=1e-5)


def test_audio_loss_hears_only_notes_from_its_lowest_pitch() -> None:
    """trainer_audio_loss_lowest_pitch: notes below it are left out of the audio loss, so a batch
    of a low and a high note has the high note's level error alone; none heard, none added. The
    low note is 20 dB quieter, so its level error, if heard, would change the batch's."""
    hp = {**TINY, "trainer_objective": "regression", "trainer_audio_loss": [0.5, 0.25]}
    audio = np.stack([0.1 * tone(40, 4, 16000, seed=5), tone(64, 4, 16000, seed=6)])
    real = _real_spectrogram(audio)
    figures = synthesis.loudness_and_brightness(torch.from_numpy(audio), 16000)
    z = torch.randn(2, TINY["latent_vector_size"], generator=torch.Generator().manual_seed(7))
    full = train_config.schedule_at(hp, hp["total_num_images"])

    def step(lowest: int, notes: slice) -> dict[str, float]:
        run = run_state.new_run({**hp, "trainer_audio_loss_lowest_pitch": lowest}, (40, 52, 64), 0)
        labels = torch.tensor([0, 2])[notes]
        return steps.regression_step(run, real[notes], labels, z[notes], full, 1, figures[notes])

    both, high_only = step(41, slice(0, 2)), step(0, slice(1, 2))
    assert both["level_mse"] == pytest.approx(high_only["level_mse"], rel=1e-3)
    assert both["bright_mse"] == pytest.approx(high_only["bright_mse"], rel=1e-3)
    assert step(0, slice(0, 2))["level_mse"] > 2 * both["level_mse"]
    assert "level_mse" not in step(65, slice(0, 2))
    bundled = train_config.CONFIGS["bundled"]
    key = "trainer_audio_loss_lowest_pitch"
    assert train_config.parse_hparams(f'{{"{key}": 41}}', bundled) == {key: 41}
    for bad in ("128", "-1", "41.5"):
        with pytest.raises(TrainingError, match=rf"'{key}'"):
            train_config.parse_hparams(f'{{"{key}": {bad}}}', bundled)


def test_bf16_only_where_the_cpu_has_it(tmp_path: Path) -> None:
    """bf16 autocast emulated on a CPU without bf16 arithmetic trains slower than float32."""
    zen3 = tmp_path / "zen3"
    zen3.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\n")
    sapphire = tmp_path / "sapphire"
    sapphire.write_text("flags\t\t: avx2 avx512f avx512_bf16 amx_bf16\n")
    neoverse = tmp_path / "neoverse"
    neoverse.write_text("Features\t: fp asimd sve bf16 i8mm\n")
    assert not steps.native_bf16(zen3)
    assert steps.native_bf16(sapphire) and steps.native_bf16(neoverse)
    assert not steps.native_bf16(tmp_path / "missing")
