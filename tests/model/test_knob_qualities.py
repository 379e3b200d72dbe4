"""What each timbre knob does, measured on the bundled model (issue 28 item 7): the README's
"brighter" example came out darker, since a PCA direction's sign says nothing about the sound.
Knobs are now oriented so that + raises the quality each moves most consistently, and named by it;
here each name is checked on latents and pitches the orientation never saw."""

from __future__ import annotations

import numpy as np
import pytest

from gansynth_instrument.model import knob_qualities
from gansynth_instrument.model.knob_qualities import (
    ORIENT_SEED,
    WORDS,
    brightness,
    knob_summary,
    turned,
)
from gansynth_instrument.model.runtime import Model, load_model, model_path
from gansynth_instrument.presets.ganspace import KnobDirections, compute_directions, knob_directions
from gansynth_instrument.presets.preset_files import find_preset

HELD_OUT_SEEDS = range(90210, 90218)  # not the orientation's (ORIENT_SEED...)
HELD_OUT_PITCHES = (43, 55, 67, 79)  # not the orientation's either


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model(model_path())


@pytest.fixture(scope="module")
def knobs(model: Model, tmp_path_factory: pytest.TempPathFactory) -> KnobDirections:
    """The bundled model's knobs as play finds them on its first run (PCA, then orientation)."""
    return knob_directions(model, cache_dir=tmp_path_factory.mktemp("knobs"), progress=False)


def test_each_named_knob_moves_its_quality_that_way_on_new_latents(
    model: Model, knobs: KnobDirections
) -> None:
    assert not set(HELD_OUT_SEEDS) & set(range(ORIENT_SEED, ORIENT_SEED + 64))
    assert len(knobs.qualities) == knobs.count
    assert sum(map(bool, knobs.qualities)) >= knobs.count // 2, knobs.qualities
    assert "brightness" in knobs.qualities
    changes = turned(
        model, knobs.directions, seeds=HELD_OUT_SEEDS, pitches=HELD_OUT_PITCHES, progress=False
    )
    for k, quality in enumerate(knobs.qualities):
        if not quality:
            continue
        row = changes[quality][k]  # from -2 to +2 standard deviations
        assert row.mean() > 0 and np.mean(row > 0) > 0.5, (k + 1, quality, row)


def test_the_pca_signs_alone_would_mislabel_a_knob(model: Model, knobs: KnobDirections) -> None:
    """Orientation is not a no-op on this model: at least one knob's + side is the PCA's −."""
    raw = compute_directions(model, progress=False)
    dots = np.einsum("kd,kd->k", raw.directions, knobs.directions)
    assert np.allclose(np.abs(dots), 1.0, atol=1e-5)
    assert (dots < 0).any()


def test_a_brighter_knob_makes_the_readme_preset_brighter(
    model: Model, knobs: KnobDirections
) -> None:
    """What the README's example promises, on its preset at middle C: a knob named brighter,
    turned +2.5, raises the share of the note's power above 4 kHz."""
    k = knobs.qualities.index("brightness")
    source = find_preset("felt-keys").latent_vector(model.latent_size)
    offsets = [0.0] * knobs.count
    offsets[k] = 2.5
    notes = model.generate(np.stack([source, knobs.move(source, offsets)]), [60, 60])
    before, after = (brightness(n, model.sample_rate) for n in notes)
    assert after > before, (k + 1, before, after)


def test_the_summary_names_every_knob() -> None:
    text = knob_summary(("decay", "brightness", ""))
    assert text == "1 longer decay (+), 2 brighter (+), 3 no single quality"
    assert knob_qualities.describe_knob("brightness", -1.0) == WORDS["brightness"][1]
    assert knob_qualities.describe_knob("", 2.0) == ""


def test_qualities_measure_what_they_name() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    low = np.sin(2 * np.pi * 220 * t) * np.exp(-3 * t)
    high = low + 0.3 * np.sin(2 * np.pi * 5000 * t) * np.exp(-3 * t)
    noise = low + 0.3 * np.random.default_rng(0).standard_normal(rate) * np.exp(-3 * t)
    tone = np.sin(2 * np.pi * 220 * t)
    long = tone * np.exp(-1 * t)  # -20 dB after 2.3 s (beyond the note: its end), low's at 0.77 s
    slow = low * np.minimum(t / 0.3, 1)  # peaks near 0.3 s
    assert knob_qualities.brightness(high, rate) > knob_qualities.brightness(low, rate)
    assert knob_qualities.noisiness(noise, rate) > knob_qualities.noisiness(low, rate)
    assert knob_qualities.thinness(high, rate) > knob_qualities.thinness(low, rate)
    assert knob_qualities.decay(long, rate) > knob_qualities.decay(low, rate)
    assert knob_qualities.attack(slow, rate) > knob_qualities.attack(low, rate)
