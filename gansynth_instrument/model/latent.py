"""Latent vectors (timbres): seeded draws, spherical interpolation, rescaling, cache-key digests.

GANSynth's generator was trained on z ~ N(0, I) of size 256, so |z| ≈ √256 = 16 — *not* unit
length (the course text's "magnitude 1" is wrong: the generator pixel-normalises
concat(z, one-hot pitch), and a unit-norm z would make the pitch one-hot ≈ 12× too strong).
Everything here keeps that scale.
"""

from __future__ import annotations

import hashlib

import numpy as np

from gansynth_instrument.errors import GansynthError

LATENT_SIZE = 256
# Below this angle (radians) slerp's sin(Ω) denominator loses precision; the arc is a line there.
_MIN_SLERP_ANGLE = 1e-6


def random_latent(seed: int | None, size: int = LATENT_SIZE) -> np.ndarray:
    """A timbre: float32 [size] of i.i.d. standard normals, exactly Magenta's draw for this seed.

    Uses NumPy's legacy ``RandomState`` because its stream is frozen (NEP 19), so a seed in a
    preset names the same sound forever, and because it is what ``gansynth_generate`` does
    (``np.random.seed(seed); np.random.normal(size=[n, 256])``): ``random_latent(s)`` equals the
    first latent Magenta draws after ``np.random.seed(s)``. ``seed=None`` draws a fresh timbre.
    """
    if seed is not None and not 0 <= seed < 2**32:
        raise GansynthError(f"latent seed must be in 0..{2**32 - 1}, got {seed}")
    return np.random.RandomState(seed).normal(size=size).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1), as ``gansynth_generate`` per note.

    Magenta's formula (``generate_util.slerp``): Ω = arccos(<a/|a|, b/|b|>),
    ``sin((1-t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b`` — the angle comes from normalised copies but
    the vectors themselves are not normalised, so endpoints are returned exactly. Parallel vectors
    fall back to linear interpolation (Magenta would divide by zero).

    Args:
        a: the latent at t=0, shape [size].
        b: the latent at t=1, of a's shape.
        t: scalar, or an array of positions (shape [N]) giving [N, size].

    Returns:
        float32 latent(s); computed in float64 like Magenta.
    """
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        raise GansynthError(f"slerp: latent shapes differ: {a64.shape} vs {b64.shape}")
    t64 = np.asarray(t, dtype=np.float64)[..., None]
    cos_omega = np.dot(a64 / np.linalg.norm(a64), b64 / np.linalg.norm(b64))
    omega = np.arccos(np.clip(cos_omega, -1.0, 1.0))
    if omega < _MIN_SLERP_ANGLE:
        out = (1.0 - t64) * a64 + t64 * b64
    else:
        sin_omega = np.sin(omega)
        out = np.sin((1.0 - t64) * omega) / sin_omega * a64 + np.sin(t64 * omega) / sin_omega * b64
    return out.astype(np.float32)


def rescale(z: np.ndarray) -> np.ndarray:
    """Scale a hand-made latent (course exercise 2) to the norm the generator expects, √size.

    A drawn or edited vector keeps its direction (the timbre) but gets the length of a typical
    N(0, I) draw, so the pitch conditioning keeps its trained weight.
    """
    z64 = np.asarray(z, dtype=np.float64)
    norm = np.linalg.norm(z64)
    if not np.isfinite(norm) or norm == 0.0:
        raise GansynthError(f"cannot rescale a latent with norm {norm}: it needs a direction")
    return (z64 * (np.sqrt(z64.size) / norm)).astype(np.float32)


def latent_digest(z: np.ndarray) -> str:
    """Stable hex digest (16 chars) of the latent's little-endian float32 bytes, for cache keys.

    Two latents that differ in any float32 bit get different keys; the same values give the same
    key on every machine and run (the dtype and byte order are fixed before hashing).
    """
    data = np.ascontiguousarray(z, dtype="<f4").tobytes()
    return hashlib.blake2b(data, digest_size=8).hexdigest()
