"""TimbreSpace: the lines of timbres knob turns and pad moves give the engine."""

from __future__ import annotations

import numpy as np
import pytest

from gansynth_instrument.errors import PresetError
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.ganspace import KnobDirections
from gansynth_instrument.presets.pad import point_latent
from gansynth_instrument.presets.timbre_space import TimbreSpace

COUNT = 8


def _knobs() -> KnobDirections:
    """Eight orthonormal directions: what KnobDirections holds, whatever the model."""
    q = np.linalg.qr(np.random.default_rng(0).standard_normal((256, COUNT)))[0]
    return KnobDirections("digest", q.T.astype(np.float32), np.ones(COUNT), np.ones(COUNT), 60, 1)


def _timbre(seed: int, gain_db: float = 0.0) -> Timbre:
    return Timbre(f"t{seed}", random_latent(seed), gain_db=gain_db, release_s=0.5)


def test_a_knob_turn_gives_the_line_of_its_stops() -> None:
    knobs = _knobs()
    base = _timbre(1, gain_db=-6.0)
    space = TimbreSpace(base, knobs)
    assert space.current() is base and space.offsets == (0.0,) * COUNT
    line, at = space.turn(0, 127)
    assert len(line) == 17 and at == 16.0
    assert line[8] is base  # the centre stop is the base itself: same cache key
    assert np.array_equal(line[16].latent, knobs.move(base.latent, [4.0]))
    assert np.array_equal(line[0].latent, knobs.move(base.latent, [-4.0]))
    assert line[16].gain_db == -6.0 and line[16].release_s == 0.5 and "knobs 1=+4" in line[16].name
    again, at = space.turn(0, 100)
    assert all(a is b for a, b in zip(line, again, strict=True))  # made once, kept
    assert at == pytest.approx(8 + (100 - 64) / 63 * 8)
    assert space.current() is line[13]
    # Knob 3's line carries knob 1 at its stop.
    line3, _ = space.turn(2, 0)
    assert np.allclose(line3[8].latent, knobs.move(base.latent, [2.5]), atol=1e-6)
    assert np.allclose(line3[0].latent, knobs.move(base.latent, [2.5, 0.0, -4.0]), atol=1e-6)
    assert space.offsets[:3] == (2.5, 0.0, -4.0)
    # A new base keeps the knob positions.
    other = _timbre(2)
    assert np.allclose(
        space.set_base(other).latent, knobs.move(other.latent, space.offsets), atol=1e-6
    )


def test_knob_errors() -> None:
    with pytest.raises(PresetError, match="no timbre knobs"):
        TimbreSpace(_timbre(1)).turn(0, 64)
    with pytest.raises(PresetError, match=r"knob 9 is beyond this model's knobs \(1..8\)"):
        TimbreSpace(_timbre(1), _knobs()).turn(8, 64)
    with pytest.raises(PresetError, match="no pad"):
        TimbreSpace(_timbre(1)).move_pad(0, 64)


def test_the_pad_gives_the_nearest_grid_edge() -> None:
    corners = [_timbre(s, gain_db=-s) for s in (1, 2, 3, 4)]
    space = TimbreSpace(corners[0], _knobs(), corners=corners, pad_size=9)
    line, weight = space.move_pad(0, 0)
    assert line[0] is line[1] and np.array_equal(line[0].latent, corners[0].latent)
    assert weight == 0.0
    line, weight = space.move_pad(0, 64)  # x = 64/127 of 8 grid steps, on the bottom row
    assert weight == pytest.approx(64 * 8 / 127 - 4)
    for timbre, column in zip(line, (4, 5), strict=True):
        expected = point_latent([c.latent for c in corners], (column, 0), 9)
        assert np.array_equal(timbre.latent, expected)
    assert (line[0].gain_db, line[1].gain_db) == (-1.0, -2.0)  # the nearest corner's level
    line, _ = space.move_pad(1, 127)  # top edge
    assert np.array_equal(space.point((8, 8)).latent, corners[3].latent)
    assert space.base is space.point((4, 8))
    # Knobs apply on top of the pad's points.
    space.turn(1, 127)
    line, _ = space.move_pad(1, 127)
    assert np.allclose(line[0].latent, space.knobs.move(space.point((4, 8)).latent, [0.0, 4.0]))
