"""The offline equivalents through the real entry point: ``presets new --from --knob`` and
``interpolate --grid``, on the exported tiny model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gansynth_instrument.model.knob_qualities import describe_knob
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.model.runtime import load_model
from gansynth_instrument.notes.levels import LIMIT, TARGET_PEAK, db_to_gain
from gansynth_instrument.presets.ganspace import knob_directions
from gansynth_instrument.presets.pad import point_latent
from gansynth_instrument.presets.preset_files import find_preset


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "gansynth_instrument", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def test_presets_new_from_a_preset_with_knobs(tiny_model: Path, tmp_path: Path) -> None:
    run = _run(
        tmp_path, "presets", "new", "mine", "--from", "keys-to-bell",
        "--knob", "1=+2.5", "--knob", "3=-1", "--model", str(tiny_model),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    user = tmp_path / "data" / "gansynth-instrument" / "presets"
    wrote, *turned = run.stdout.splitlines()
    assert wrote == f"wrote {user / 'mine.yaml'} (latent[256])"
    saved = find_preset("mine", user_dir=user)
    assert saved.description == "from keys-to-bell, knobs 1=+2.5 3=-1"
    source = find_preset("keys-to-bell")
    assert (saved.gain_db, saved.attack_s, saved.release_s) == (
        source.gain_db,
        source.attack_s,
        source.release_s,
    )
    # The directions were computed once and cached under the model's digest: read them back.
    model = load_model(tiny_model, backend="cpu")
    cache = tmp_path / "cache" / "gansynth-instrument" / "notes" / "knobs"
    assert [p.name.split("-k")[0] for p in cache.iterdir()] == [model.digest]
    assert saved.model == model.digest  # made on the tiny model (no family): its digest
    knobs = knob_directions(model, cache_dir=cache, progress=False)
    expected = knobs.move(source.latent_vector(), (2.5, 0.0, -1.0))
    assert np.array_equal(saved.latent_vector(), expected)
    # What each turned knob did, as measured on the model when its directions were found.
    assert turned == [
        f"knob 1 +2.5: {describe_knob(knobs.qualities[0], 2.5) or 'no single quality (measured)'}",
        f"knob 3 -1: {describe_knob(knobs.qualities[2], -1.0) or 'no single quality (measured)'}",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "fluid-piano", "--knob", "9=1"], "knob 9 is beyond this model's knobs (1..8)"),
        (["--from", "fluid-piano", "--knob", "2=inf"], "offset 'inf' is not a finite number"),
        (["--seed", "3", "--knob", "1=1"], "--knob needs --from PRESET"),
        (["--from", "fluid-piano", "--knob", "1=1", "--knob", "1=2"], "knob 1 is given more"),
    ],
)
def test_presets_new_knob_errors_are_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    run = _run(tmp_path, "presets", "new", "mine", *args, "--model", "/nonexistent.onnx")
    lines = run.stderr.strip().splitlines()
    assert run.returncode != 0 and len(lines) == 1 and message in lines[0], run.stderr
    assert not (tmp_path / "data").exists()  # nothing written


def test_interpolate_grid_writes_the_bilinear_slerp_grid(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid"
    bell = tmp_path / "bell.yaml"  # glass-bell trimmed 3 dB: its gain is blended too
    bell.write_text(find_preset("glass-bell").copy(name="bell", gain_db=-3.0).to_yaml())
    run = _run(
        tmp_path, "interpolate", "--grid", "felt-keys", "3", str(bell), "4",
        "--size", "3", "--pitch", "55", "--model", str(tiny_model), "--backend", "cpu",
        "-o", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"grid_{r}_{c}.wav" for r in range(3) for c in range(3)]
    assert len(run.stdout.strip().splitlines()) == 9
    corners = [
        find_preset("felt-keys").latent_vector(),
        random_latent(3),
        find_preset(bell).latent_vector(),
        random_latent(4),
    ]
    model = load_model(tiny_model, backend="cpu")
    points = [(0, 0), (1, 1), (2, 1)]
    latents = np.stack([point_latent(corners, p, 3) for p in points])
    expected = model.generate(latents, [55] * 3)
    references = np.abs(model.generate(latents, [60] * 3)).max(axis=1)
    # the bell's -3 dB at (0, 1), the other corners' 0 dB: bilinear in between
    preset_db = [0.0, -0.75, 0.0]
    for (column, row), want, reference, db in zip(
        points, expected, references, preset_db, strict=True
    ):
        staged = want * TARGET_PEAK / reference * db_to_gain(db)  # levelled, the preset's gain
        assert np.abs(staged).max() < LIMIT  # the limiter leaves it as it is
        got = sf.read(out / f"grid_{row}_{column}.wav", dtype="float32")[0]
        np.testing.assert_allclose(got, staged, rtol=1e-3, atol=1e-4 * TARGET_PEAK)


def test_interpolate_grid_errors_are_one_line(tmp_path: Path) -> None:
    run = _run(tmp_path, "interpolate", "--grid", "felt-keys", "3", "4", "5", "--size", "1")
    lines = run.stderr.strip().splitlines()
    assert run.returncode != 0 and len(lines) == 1, run.stderr
    assert "--size must be 2..33 points per side, got 1" in lines[0]
    run = _run(tmp_path, "interpolate", "felt-keys", "--grid", "felt-keys", "3", "4", "5")
    assert "give either A B, or --grid A B C D, not both" in run.stderr
