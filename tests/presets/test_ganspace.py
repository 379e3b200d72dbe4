"""Timbre-knob directions on the exported tiny model: the streamed PCA against numpy's exact
eigendecomposition, the regression back to z, the disk cache and its failures."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from gansynth_instrument.errors import PresetError
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.model.runtime import Model, load_model
from gansynth_instrument.presets import ganspace
from gansynth_instrument.presets.ganspace import (
    KNOB_COUNT,
    REGRESSION_FACTOR,
    KnobDirections,
    early_layer,
    knob_directions,
    principal_directions,
)

SAMPLES = 2048
PITCH = 60


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> Model:
    return load_model(tiny_model, backend="cpu")


@pytest.fixture(scope="module")
def found(model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return principal_directions(
        early_layer(model.path),
        model.latent_size,
        count=KNOB_COUNT,
        samples=SAMPLES,
        pitch=PITCH,
        progress=False,
    )


def _same_latents(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """The latents principal_directions draws (seed 0), and their activations: the first
    SAMPLES for the components, all of them for the regression."""
    layer = early_layer(model.path)
    zs, acts = [], []
    for b in range(REGRESSION_FACTOR * SAMPLES // 256):
        z = np.random.default_rng([0, 0, b]).standard_normal((256, model.latent_size))
        zs.append(z.astype(np.float32))
        acts.append(layer(zs[-1], np.full(256, PITCH)).astype(np.float64))
    return np.concatenate(zs), np.concatenate(acts)


def test_pca_finds_the_exact_leading_subspace(model: Model, found: tuple) -> None:
    variance, ratio, directions = found
    z, acts = _same_latents(model)
    mean = acts[:SAMPLES].mean(axis=0)
    centred = acts[:SAMPLES] - mean
    values, vectors = np.linalg.eigh(centred.T @ centred / SAMPLES)
    exact = values[::-1][:KNOB_COUNT]
    assert np.all(np.diff(variance) <= 0)  # leading component first
    assert variance.sum() >= 0.99 * exact.sum()  # the subspace holds what the exact one holds
    assert variance[0] == pytest.approx(exact[0], rel=0.01)
    assert ratio == pytest.approx(variance / values.sum(), rel=1e-6)
    # The regression onto z, done directly from the exact components, spans the same directions.
    coords = (acts - mean) @ vectors[:, ::-1][:, :KNOB_COUNT]
    regression = np.linalg.lstsq(coords, z, rcond=None)[0]
    basis = np.linalg.qr(regression.T)[0]
    assert np.linalg.norm(directions, axis=1) == pytest.approx(np.ones(KNOB_COUNT), abs=1e-6)
    captured = np.linalg.norm(directions @ basis, axis=1)  # 1 when inside the exact span
    assert captured.min() > 0.95, captured


def test_a_knob_moves_the_layer_more_than_a_random_direction(model: Model, found: tuple) -> None:
    directions = found[2]
    layer = early_layer(model.path)
    rng = np.random.default_rng(5)
    knob, random = [], []
    for seed in range(16):
        z = random_latent(seed, model.latent_size)
        other = rng.standard_normal(model.latent_size)
        moved = np.stack([z, z + 2 * directions[0], z + 2 * other / np.linalg.norm(other)])
        a = layer(moved.astype(np.float32), np.full(3, PITCH))
        knob.append(np.linalg.norm(a[1] - a[0]))
        random.append(np.linalg.norm(a[2] - a[0]))
    assert np.mean(knob) > 1.5 * np.mean(random)


def test_move(model: Model, found: tuple) -> None:
    knobs = KnobDirections(model.digest, found[2], found[0], found[1], PITCH, SAMPLES)
    z = random_latent(3, model.latent_size)
    assert np.array_equal(knobs.move(z, [0.0] * KNOB_COUNT), z)
    moved = knobs.move(z, [2.5, 0.0, -1.0])
    assert moved.dtype == np.float32
    assert np.array_equal(moved, knobs.move(z, (2.5, 0, -1, 0, 0, 0, 0, 0)))
    expected = z.astype(np.float64) + 2.5 * found[2][0] - found[2][2]
    assert moved == pytest.approx(expected, abs=1e-5)
    with pytest.raises(PresetError, match="9 knob offsets, but this model has 8 knobs"):
        knobs.move(z, [0.0] * 9)
    with pytest.raises(PresetError, match="knob offset nan is not a finite number"):
        knobs.move(z, [0.0, float("nan")])


def test_directions_are_cached_by_model_digest(model: Model, tmp_path: Path) -> None:
    first = knob_directions(model, samples=SAMPLES, cache_dir=tmp_path, progress=False)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"{model.digest}-k{KNOB_COUNT}-n{SAMPLES}.npz"]
    # Mark the stored file; a second call must return what is on disk, not compute again.
    with np.load(files[0]) as data:
        fields = dict(data)
    fields["variance"] = fields["variance"] * 2
    np.savez(files[0], **fields)
    second = knob_directions(model, samples=SAMPLES, cache_dir=tmp_path, progress=False)
    assert np.array_equal(second.directions, first.directions)
    assert np.array_equal(second.variance, 2 * first.variance)
    assert second.qualities == first.qualities and len(first.qualities) == KNOB_COUNT


def test_a_cache_file_of_the_format_before_qualities_is_computed_again(
    model: Model, tmp_path: Path
) -> None:
    """Directions cached before knobs were oriented and named (format 2) have the PCA's signs:
    they are found again, not played with their arbitrary signs."""
    first = knob_directions(model, samples=SAMPLES, cache_dir=tmp_path, progress=False)
    (path,) = tmp_path.iterdir()
    with np.load(path) as data:
        fields = {k: data[k] for k in data.files if k != "qualities"}
    fields["format"] = np.asarray(2)
    fields["directions"] = -fields["directions"]  # as the PCA's signs may have it
    np.savez(path, **fields)
    again = knob_directions(model, samples=SAMPLES, cache_dir=tmp_path, progress=False)
    assert np.array_equal(again.directions, first.directions)
    assert again.qualities == first.qualities
    with np.load(path) as data:
        assert int(data["format"]) == 3 and tuple(data["qualities"]) == first.qualities


def test_a_damaged_cache_file_is_computed_again(
    model: Model, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / f"{model.digest}-k{KNOB_COUNT}-n{SAMPLES}.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip file")
    with caplog.at_level(logging.WARNING, logger=ganspace.__name__):
        knobs = knob_directions(model, samples=SAMPLES, cache_dir=tmp_path, progress=False)
    assert "unreadable" in caplog.text and str(path) in caplog.text
    assert knobs.directions.shape == (KNOB_COUNT, model.latent_size)
    with np.load(path) as data:  # replaced by a good file, atomically (no temporary left over)
        assert np.array_equal(data["directions"], knobs.directions)
    assert list(tmp_path.iterdir()) == [path]


def test_an_unwritable_cache_costs_a_warning_only(
    model: Model, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger=ganspace.__name__):
        knobs = knob_directions(model, samples=SAMPLES, cache_dir=blocker / "knobs", progress=False)
    assert "cannot keep them" in caplog.text
    assert knobs.count == KNOB_COUNT
