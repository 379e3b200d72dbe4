"""Latents: Magenta's seeded draw and per-note slerp (against its MIDI render), rescale, digests."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.model.latent import latent_digest, random_latent, rescale, slerp

seeds = st.integers(min_value=0, max_value=2**32 - 1)


@pytest.fixture(scope="module")
def midi_render(magenta_tiny):
    return np.load(magenta_tiny / "midi_render.npz")


def test_random_latent_is_magentas_first_draw_for_the_seed(midi_render):
    z = random_latent(int(midi_render["seed"]))
    assert z.dtype == np.float32 and z.shape == (256,)
    np.testing.assert_allclose(z, midi_render["z_instruments"][0], rtol=1e-6, atol=1e-7)


def test_random_latent_is_standard_normal_not_unit_length():
    zs = np.stack([random_latent(seed) for seed in range(200)])
    norms = np.linalg.norm(zs, axis=1)
    assert 15.5 < norms.mean() < 16.5  # E|z| ≈ √(256 - ½)
    assert abs(zs.mean()) < 0.02 and abs(zs.std() - 1.0) < 0.02


def test_random_latent_none_draws_fresh_timbres_and_bad_seed_is_refused():
    assert not np.array_equal(random_latent(None), random_latent(None))
    assert random_latent(3, size=64).shape == (64,)
    with pytest.raises(GansynthError, match="seed"):
        random_latent(-1)


def test_slerp_matches_magentas_per_note_latents(midi_render):
    """Re-derive gansynth_generate's get_z_notes: t = note start's position between instruments."""
    z0, z1 = midi_render["z_instruments"]
    t0, t1 = midi_render["t_instruments"]
    t = (midi_render["start_times"] - t0) / (t1 - t0)
    got = slerp(z0, z1, t)
    assert got.shape == midi_render["z_notes"].shape
    np.testing.assert_allclose(got, midi_render["z_notes"], rtol=1e-5, atol=1e-6)


@given(seeds, seeds)
def test_slerp_endpoints_are_the_inputs(seed_a, seed_b):
    a, b = random_latent(seed_a), random_latent(seed_b)
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-5)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-5)


@given(seeds, seeds, st.floats(min_value=0.0, max_value=1.0))
def test_slerp_of_equal_norm_latents_keeps_the_norm(seed_a, seed_b, t):
    a, b = rescale(random_latent(seed_a)), rescale(random_latent(seed_b))
    assert np.linalg.norm(slerp(a, b, t)) == pytest.approx(16.0, rel=1e-5)


def test_slerp_of_parallel_latents_is_linear():
    a = random_latent(5)
    np.testing.assert_allclose(slerp(a, 3 * a, 0.5), 2 * a, rtol=1e-6)


def test_rescale_gives_norm_sqrt_size_and_keeps_direction():
    drawn = np.linspace(-1.0, 1.0, 256) ** 3
    z = rescale(drawn)
    assert z.dtype == np.float32
    assert np.linalg.norm(z) == pytest.approx(16.0, rel=1e-6)
    np.testing.assert_allclose(z / 16.0, drawn / np.linalg.norm(drawn), atol=1e-7)
    with pytest.raises(GansynthError, match="norm"):
        rescale(np.zeros(256))


def test_latent_digest_depends_only_on_the_float32_values():
    z = random_latent(11)
    d = latent_digest(z)
    assert re.fullmatch("[0-9a-f]{16}", d), d
    assert latent_digest(z.astype(np.float64)) == d
    assert latent_digest(z.astype(">f4")) == d
    assert latent_digest(z.copy()) == d
    nudged = z.copy()
    nudged[100] = np.nextafter(nudged[100], np.float32(np.inf))
    assert latent_digest(nudged) != d
    assert latent_digest(random_latent(12)) != d


def test_latent_digest_is_the_same_in_another_process():
    code = "from gansynth_instrument.model.latent import *; print(latent_digest(random_latent(11)))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == latent_digest(random_latent(11))
