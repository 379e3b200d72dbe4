"""The XY pad: a square of timbres spanned by four corner presets, on a grid of latents.

Corners A, B, C, D sit at (x, y) = (0, 0), (1, 0), (0, 1), (1, 1). A grid point's timbre is the
bilinear slerp of the corners (slerp along x on the bottom and top edges, then along y between
the two), as NSynth Super's pad and the course's ``gan2n.py`` grid. Two controllers move a
position over the grid; a voice plays the two grid points at the ends of the grid edge nearest to
that position, crossfaded by where the position lies along it, so a sweep glides from point to
point instead of snapping to the nearest one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gansynth_instrument.errors import PresetError
from gansynth_instrument.midi_spec import DATA_MAX
from gansynth_instrument.model.latent import slerp

PAD_CCS = (16, 17)  # MIDI 1.0's General Purpose Controllers 1 and 2 (x, y)
PAD_SIZE = 9  # points per side, as NSynth Super
PAD_SIZE_RANGE = (2, 33)

Point = tuple[int, int]  # (column, row): x index, y index


def check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise PresetError(f"pad size must be a whole number, got {size!r}")
    lo, hi = PAD_SIZE_RANGE
    if not lo <= size <= hi:
        raise PresetError(f"pad size must be {lo}..{hi} points per side, got {size}")
    return size


def check_ccs(x_cc: int, y_cc: int, taken: Mapping[int, str]) -> tuple[int, int]:
    """The pad's two controllers, or a PresetError naming the one that is out of range, the same
    as the other, or already ``taken`` (controller → what uses it: the pedal, the morph...)."""
    for axis, cc in (("x", x_cc), ("y", y_cc)):
        if isinstance(cc, bool) or not isinstance(cc, int) or not 0 <= cc <= 119:
            raise PresetError(f"pad {axis} controller must be CC0..119, got {cc!r}")
        if cc in taken:
            raise PresetError(f"pad {axis} controller CC{cc} is already {taken[cc]}")
    if x_cc == y_cc:
        raise PresetError(f"pad x and y controllers are both CC{x_cc}")
    return x_cc, y_cc


def point_latent(corners: Sequence[np.ndarray], point: Point, size: int = PAD_SIZE) -> np.ndarray:
    """The timbre at a grid point: float32 [latent]. Corner points return the corners exactly."""
    if len(corners) != 4:
        raise PresetError(f"a pad needs 4 corner timbres, got {len(corners)}")
    column, row = point
    if not (0 <= column < size and 0 <= row < size):
        raise PresetError(f"pad point {point} is outside the {size}×{size} grid")
    u, v = column / (size - 1), row / (size - 1)
    a, b, c, d = corners
    bottom = slerp(a, b, u)
    top = slerp(c, d, u)
    return slerp(bottom, top, v)


def grid_latents(corners: Sequence[np.ndarray], size: int = PAD_SIZE) -> np.ndarray:
    """Every grid point's timbre: float32 [size (rows, y), size (columns, x), latent]."""
    return np.stack(
        [np.stack([point_latent(corners, (i, j), size) for i in range(size)]) for j in range(size)]
    )


def grid_position(x_value: int, y_value: int, size: int = PAD_SIZE) -> tuple[float, float]:
    """Controller values (0..127) → position in grid units (0..size-1 each)."""
    for value in (x_value, y_value):
        if not 0 <= value <= DATA_MAX:
            raise PresetError(f"controller value must be 0..{DATA_MAX}, got {value}")
    return x_value * (size - 1) / DATA_MAX, y_value * (size - 1) / DATA_MAX


def edge(gx: float, gy: float, size: int = PAD_SIZE) -> tuple[Point, Point, float]:
    """(point a, point b, weight of b) for a position in grid units: the grid edge nearest to it
    (a row when it is nearer a row than a column) and where along that edge it lies. On a grid
    point the weight is 0 and a == b."""
    last = size - 1
    gx, gy = min(max(gx, 0.0), last), min(max(gy, 0.0), last)
    row, column = round(gy), round(gx)
    if abs(gy - row) <= abs(gx - column):  # nearer a row: glide along x
        x0 = min(int(gx), last - 1)
        t = gx - x0
        a, b = (x0, row), (x0 + 1, row)
    else:
        y0 = min(int(gy), last - 1)
        t = gy - y0
        a, b = (column, y0), (column, y0 + 1)
    if t == 0.0:
        return a, a, 0.0
    if t == 1.0:
        return b, b, 0.0
    return a, b, t
