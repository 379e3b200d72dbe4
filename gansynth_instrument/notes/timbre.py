"""Timbres: what the instrument can play (a latent plus level and envelope), morph steps, and
drum kits (a timbre, pitch and hit envelope per key).

Below both the note cache and the engine: ``cache warm`` makes the same morph steps the engine
plays, and neither has to import the other for it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gansynth_instrument.errors import PresetError
from gansynth_instrument.model.latent import latent_digest, slerp

DEFAULT_MORPH_STEPS = 17


class Settings(Protocol):
    """A timbre's settings besides its latent (a ``Preset`` or a ``Timbre``)."""

    gain_db: float
    attack_s: float
    release_s: float
    loop: bool


class PresetLike(Settings, Protocol):
    """What a timbre is made from (a ``presets.Preset``; presets import this module, not back)."""

    name: str

    def latent_vector(self, latent_size: int) -> np.ndarray: ...


def blend_settings(a: Settings, b: Settings, t: float) -> tuple[float, float, float, bool]:
    """(gain_db, attack_s, release_s, loop) at ``t`` between ``a`` (0) and ``b`` (1): levels and
    times interpolated linearly, looping taken from the nearer one."""
    return (
        a.gain_db + t * (b.gain_db - a.gain_db),
        a.attack_s + t * (b.attack_s - a.attack_s),
        a.release_s + t * (b.release_s - a.release_s),
        a.loop if t < 0.5 else b.loop,
    )


@dataclass(frozen=True, eq=False)
class Timbre:
    """Something the engine can play: a latent (its cache key) plus level and envelope."""

    name: str
    latent: np.ndarray  # float32 [latent_size]
    gain_db: float = 0.0
    attack_s: float = 0.01
    release_s: float = 0.3
    loop: bool = False  # held notes loop (see voices.loop_note) instead of ending

    @functools.cached_property
    def key(self) -> str:
        """The note cache's timbre key for this latent (hashed once: note-ons ask for it)."""
        return latent_digest(self.latent)

    def with_latent(self, name: str, latent: np.ndarray) -> Timbre:
        """Timbre ``name`` of ``latent`` at this one's level and envelope: a random draw or a
        drawn latent changes the timbre only."""
        return Timbre(name, latent, self.gain_db, self.attack_s, self.release_s, self.loop)

    @classmethod
    def from_preset(cls, preset: PresetLike, latent_size: int) -> Timbre:
        return cls(
            preset.name,
            preset.latent_vector(latent_size),
            preset.gain_db,
            preset.attack_s,
            preset.release_s,
            preset.loop,
        )


@dataclass(frozen=True)
class KitHit:
    """One key of a drum kit: ``timbre``'s note at ``pitch`` (a MIDI pitch; the engine plays the
    nearest model pitch rate-shifted, as for any note), held ``hold_s`` then decaying over
    ``decay_s`` (``note.shape_hit``), at ``gain_db`` on top of the timbre's own gain."""

    timbre: Timbre
    pitch: int
    hold_s: float
    decay_s: float
    gain_db: float = 0.0


@dataclass(frozen=True)
class DrumKit:
    """A kit the engine plays: MIDI key → hit (General MIDI percussion keys 35–81 in a GM kit).
    Its hits are one-shots: a note-off does not cut them, as on a General MIDI drum channel."""

    name: str
    hits: dict[int, KitHit]


def morph_steps(path: Sequence[Timbre], steps: int = DEFAULT_MORPH_STEPS) -> list[Timbre]:
    """``steps`` timbres evenly spaced along ``path``: slerp between neighbouring latents, and
    gain and envelope interpolated linearly, looping taken from the nearer preset. Step 0 is
    ``path[0]``, the last step ``path[-1]``."""
    if len(path) < 2 or steps < 2:
        raise PresetError(f"a morph needs ≥ 2 presets and ≥ 2 steps (got {len(path)}, {steps})")
    out = []
    for step in range(steps):
        u = step * (len(path) - 1) / (steps - 1)
        i = min(int(u), len(path) - 2)
        t = u - i
        a, b = path[i], path[i + 1]
        latent = np.asarray(slerp(a.latent, b.latent, t), dtype=np.float32)
        out.append(Timbre(f"{a.name}→{b.name}@{t:.2f}", latent, *blend_settings(a, b, t)))
    return out
