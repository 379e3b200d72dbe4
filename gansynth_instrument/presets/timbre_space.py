"""Where the player is in timbre space: a base timbre, the knobs' stops, a point on the XY pad.

The engine asks this module for a *line*: a short list of timbres and a position along it,
exactly what a morph path is, so a voice crossfades the two timbres around the position through
the same morph path in the mixer. Turning knob k gives the line of k's stops (the other knobs at
their stops); moving the pad gives the grid edge nearest to the position. Every timbre on a line
is made once and kept, so a knob turned back and forth asks the note cache for the same keys.

The base is what knobs move: the preset playing, a random draw, or the pad's nearest grid point.
Knob positions are offsets from the base, so they carry over when the base changes.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

import numpy as np

from gansynth_instrument.errors import PresetError
from gansynth_instrument.model.latent import latent_digest
from gansynth_instrument.presets import knobs as knob_stops
from gansynth_instrument.presets import pad
from gansynth_instrument.presets.ganspace import KnobDirections


class TimbreLike(Protocol):
    """What a timbre is here: a name and a latent; the rest (level, envelope) is carried over."""

    name: str
    latent: np.ndarray


T = TypeVar("T", bound=TimbreLike)


class TimbreSpace(Generic[T]):
    """See the module docstring. Not thread-safe: the engine's MIDI thread owns it."""

    def __init__(
        self,
        base: T,
        knobs: KnobDirections | None = None,
        *,
        stops: int = knob_stops.KNOB_STOPS,
        span: float = knob_stops.KNOB_SPAN,
        corners: Sequence[T] = (),
        pad_size: int = pad.PAD_SIZE,
    ) -> None:
        if corners and len(corners) != 4:
            raise PresetError(f"a pad needs 4 corner presets, got {len(corners)}")
        self.knobs = knobs
        self.stops = knob_stops.check_stops(stops)
        self.span = span
        self.corners = tuple(corners)
        self.pad_size = pad.check_size(pad_size)
        self.base = base
        self.knob_stop = [(stops - 1) // 2] * (knobs.count if knobs is not None else 0)
        self.pad_value = [0, 0]  # controller values, x and y
        self._made: dict[tuple[str, str, tuple[int, ...]], T] = {}
        self._points: dict[pad.Point, T] = {}

    def fork(self) -> TimbreSpace[T]:
        """A space with the same knobs, pad and base but its own knob stops and pad position
        (one per MIDI channel); the timbres made so far are shared, as they depend only on
        where they are."""
        twin = copy.copy(self)
        twin.knob_stop = list(self.knob_stop)
        twin.pad_value = list(self.pad_value)
        return twin

    @property
    def offsets(self) -> tuple[float, ...]:
        """The knobs' offsets at their stops (standard deviations)."""
        return tuple(knob_stops.stop_offset(s, self.stops, self.span) for s in self.knob_stop)

    def current(self) -> T:
        """The one timbre at the current stops: what a new note plays when no line is moving,
        and what "save" keeps."""
        return self._at(self.base, tuple(self.knob_stop))

    def set_base(self, base: T) -> T:
        """A new base (program change, random draw); knob positions stay. Returns ``current()``."""
        self.base = base
        return self.current()

    def turn(self, knob: int, value: int) -> tuple[list[T], float]:
        """Knob ``knob`` (0-based) to controller ``value``: the line of its stops and the
        position along it. The knob's stop becomes the one nearest the value."""
        if self.knobs is None:
            raise PresetError("no timbre knobs: the model's knob directions were not loaded")
        if not 0 <= knob < len(self.knob_stop):
            raise PresetError(
                f"knob {knob + 1} is beyond this model's knobs (1..{self.knobs.count})"
            )
        at = knob_stops.position(value, self.stops)
        self.knob_stop[knob] = round(at)
        line = []
        for stop in range(self.stops):
            key = list(self.knob_stop)
            key[knob] = stop
            line.append(self._at(self.base, tuple(key)))
        return line, at

    def move_pad(self, axis: int, value: int) -> tuple[list[T], float]:
        """Pad ``axis`` (0 = x, 1 = y) to controller ``value``: the two grid points at the ends
        of the nearest grid edge (knobs applied) and the position between them. The base becomes
        the grid point nearest the position."""
        if not self.corners:
            raise PresetError("no pad: the bank names no corner presets")
        self.pad_value[axis] = value
        gx, gy = pad.grid_position(self.pad_value[0], self.pad_value[1], self.pad_size)
        a, b, weight = pad.edge(gx, gy, self.pad_size)
        self.base = self.point(a if weight < 0.5 else b)
        stops = tuple(self.knob_stop)
        return [self._at(self.point(a), stops), self._at(self.point(b), stops)], weight

    def point(self, where: pad.Point) -> T:
        """The pad's grid point ``where`` (column, row) as a timbre; level and envelope from
        the nearest corner. Made on first use."""
        found = self._points.get(where)
        if found is None:
            latent = pad.point_latent([c.latent for c in self.corners], where, self.pad_size)
            column, row = where
            last = self.pad_size - 1
            nearest = self.corners[(2 if row * 2 > last else 0) + (1 if column * 2 > last else 0)]
            found = dataclasses.replace(nearest, name=f"pad {column},{row}", latent=latent)
            self._points[where] = found
        return found

    def _at(self, base: T, stops: tuple[int, ...]) -> T:
        centre = (self.stops - 1) // 2
        if self.knobs is None or all(s == centre for s in stops):
            return base
        key = (base.name, latent_digest(base.latent), stops)
        found = self._made.get(key)
        if found is None:
            offsets = [knob_stops.stop_offset(s, self.stops, self.span) for s in stops]
            latent = self.knobs.move(base.latent, offsets)
            label = knob_stops.describe(offsets)
            found = dataclasses.replace(base, name=f"{base.name} {label}", latent=latent)
            self._made[key] = found
        return found
