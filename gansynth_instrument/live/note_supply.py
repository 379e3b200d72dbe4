"""The cache-miss policy: what a note plays while its exact note is not made yet, and the swap to
the exact note when it arrives. The engine (``engine.py``) asks here for every note it starts or
moves along a line.

- A pitch outside the model's range plays the nearest model pitch rate-shifted by up to
  ``max_shift_semitones``; farther ones are ignored with one warning per pitch (``model_pitch``).
- A note plays its exact cached note. If that note is not cached yet it plays at once from the
  nearest cached pitch of the same timbre, rate-shifted (a stand-in), and the exact note is
  requested at ``Priority.WAITING`` for the next note-on. Offline (``wait_s`` set) it waits for
  the exact note instead, and nothing here is ever a stand-in.
- A timbre with nothing cached yet (a random draw, a new knob stop) has no stand-in: its note-on
  waits (``hold``), and ``start_pending()`` (polled by the player) starts the exact note when it
  arrives, unless the key was released first or ``PENDING_S`` passed.
- On a line (the morph path, a knob's stops, a pad edge) a voice crossfades the two nearest
  *cached* steps around the position; a channel whose sounding notes play such stand-ins is
  *stale*, and ``start_pending()`` crossfades them to the exact steps when those arrive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from gansynth_instrument.errors import CacheError
from gansynth_instrument.live.channels import Channel
from gansynth_instrument.live.mixer import IMMEDIATE
from gansynth_instrument.live.voices import Layer, Voices, pitch_ratio
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.note import Note
from gansynth_instrument.notes.note_queue import Priority
from gansynth_instrument.notes.timbre import Timbre

PENDING_S = 1.0  # a note-on still waiting for its first note after this long is dropped

Key = tuple[int, int]  # (channel, MIDI pitch)
Layers = tuple[Layer, Layer | None, float]  # layer a, layer b, weight of b
Sounding = Sequence[tuple[int, int, int | None]]  # (voice slot, pitch, model pitch)
StartNote = Callable[[Key, Timbre, Layers, int, int], None]  # key, timbre, layers, velocity, frame


def neighbour_steps(position: float) -> list[int]:
    """The line steps around ``position`` (one when it is on a step)."""
    return list(dict.fromkeys((math.floor(position), math.ceil(position))))


class NoteSupply:
    """Exact notes, stand-ins and waiting note-ons for one engine; see the module docstring.

    ``lines``, ``channels`` and ``heard`` are the engine's own per-channel lists (the line each
    channel moves along, its MIDI state, the timbre its notes were last heard at), read and, for
    ``heard``, written here as the engine's notes follow their line.
    """

    def __init__(
        self,
        cache: NoteCache,
        voices: Voices,
        *,
        lines: list[list[Timbre]],
        channels: list[Channel],
        heard: list[Timbre | None],
        pitches: Sequence[int],
        max_shift_semitones: int,
        wait_s: float | None,
        warn_once: Callable[[str, str], None],
    ) -> None:
        self.cache, self.voices = cache, voices
        self._lines, self._channels, self._heard = lines, channels, heard
        self.pitches = tuple(pitches)
        self._pitch_set = frozenset(self.pitches)
        self._warn_once = warn_once
        self._prefetched: set[str] = set()  # timbres whose every pitch has been asked for
        self.max_shift_semitones = max_shift_semitones
        self.wait_s = wait_s
        # Note-ons waiting for their timbre's first note: key → (timbre, model pitch, velocity,
        # when it came); see start_pending().
        self.pending: dict[Key, tuple[Timbre, int, int, float]] = {}
        # Channels whose sounding notes play a stand-in for a line's exact step (not made yet):
        # start_pending() crossfades them to the exact steps when those arrive.
        self.stale: set[int] = set()

    @property
    def waiting(self) -> int:
        """Note-ons waiting for their timbre's first note, and stale channels."""
        return len(self.pending) + len(self.stale)

    def start_pending(self, start: StartNote, now: float | None = None) -> int:
        """Start (with ``start``) every waiting note-on whose exact note has arrived, drop those
        older than ``PENDING_S``; crossfade sounding notes whose line's exact steps have arrived.
        Returns how many note-ons still wait."""
        now = time.monotonic() if now is None else now
        for channel in list(self.stale):
            sounding = self.sounding_on(channel)
            if not self.missing_steps(channel, sounding):
                self.follow(channel, sounding, IMMEDIATE)
        for key, (timbre, model_pitch, velocity, since) in list(self.pending.items()):
            note = self.cache.lookup(timbre.key, model_pitch)
            if note is not None:
                del self.pending[key]
                layer = self.shifted(note, key[1])
                if layer is not None:
                    start(key, timbre, (layer, None, 0.0), velocity, IMMEDIATE)
            elif now - since > PENDING_S:
                del self.pending[key]
        return len(self.pending)

    def model_pitch(self, pitch: int, *, warn: bool = True) -> int | None:
        """The model pitch that plays ``pitch`` (itself if the model has it), rate-shifted by up
        to ``max_shift_semitones``; None if too far (with one warning per pitch)."""
        if pitch in self._pitch_set:
            return pitch
        nearest = min(self.pitches, key=lambda p: (abs(p - pitch), p))
        if abs(nearest - pitch) > self.max_shift_semitones:
            if not warn:
                return None
            self._warn_once(
                f"pitch {pitch}",
                f"MIDI note {pitch} is more than {self.max_shift_semitones} semitones from the "
                f"model's pitches ({self.pitches[0]}..{self.pitches[-1]}); ignored",
            )
            return None
        return nearest

    def request_all(self, timbre: Timbre) -> None:
        """Live, ask once for every pitch of ``timbre`` in the background."""
        if self.wait_s is None and timbre.key not in self._prefetched:
            self._prefetched.add(timbre.key)
            self.cache.request(timbre.latent, self.pitches, Priority.BACKGROUND)

    def request_soon(self, timbre: Timbre, model_pitches: Sequence[int]) -> None:
        """Ask for these pitches of ``timbre`` before the background (a kit's hits at start)."""
        self.cache.request(timbre.latent, model_pitches, Priority.NEAR)

    def request_switch(self, timbre: Timbre, recent: Sequence[int]) -> None:
        """Live, a channel switched to ``timbre``: the ``recent`` pitches (played last first)
        soon, so the next notes find them, then every pitch in the background."""
        if self.wait_s is None:
            model_pitches = (self.model_pitch(p) for p in recent)
            played = list(dict.fromkeys(p for p in model_pitches if p is not None))
            if played:
                self.request_soon(timbre, played)
            self.request_all(timbre)

    def request_line(self, channel: int, model_pitch: int | None) -> None:
        """Live, ask for every step of ``channel``'s line at ``model_pitch``, sooner than the rest
        of their pitches: a note that slides needs them next."""
        if self.wait_s is None and model_pitch is not None:
            for step in self._lines[channel]:
                if self.cache.lookup(step.key, model_pitch) is None:
                    self.request_soon(step, [model_pitch])

    def release(self, key: Key) -> None:
        """A note-off: a note-on still waiting for its note is not started."""
        self.pending.pop(key, None)

    def drop_channel(self, channel: int) -> None:
        """Forget ``channel``'s waiting note-ons (all notes or sound off)."""
        for key in [k for k in self.pending if k[0] == channel]:
            del self.pending[key]

    def note_on(
        self, key: Key, timbre: Timbre | None, model_pitch: int, velocity: int
    ) -> tuple[Timbre, Layers | None]:
        """What a note-on on ``key``'s channel plays: ``timbre``'s note, or while the channel
        moves along a line, the steps around its position (a stand-in there marks the channel
        stale). None for the layers when nothing near enough is cached yet: live, the note-on
        then waits for its exact note (``start_pending``)."""
        channel, pitch = key
        position = self._channels[channel].morph_position
        if position is None:
            assert timbre is not None
            layer = self.layer(timbre, model_pitch, pitch, Priority.WAITING)
            layers = (layer, None, 0.0) if layer is not None else None
        else:
            line = self._lines[channel]
            layers = self.line_layers(line, position, model_pitch, pitch, Priority.WAITING)
            for step in line:
                self.cache.played(step.key, model_pitch)
            self.mark_stale(channel, [(0, pitch, model_pitch)])
            timbre = line[round(position)]
        if layers is None and self.wait_s is None:
            self.pending[key] = (timbre, model_pitch, velocity, time.monotonic())
        return timbre, layers

    def glide(self, channel: int, frame: int) -> None:
        """``channel`` moved along its line: its sounding notes follow (``follow``); live, the
        exact steps they lack are asked for soon (one request per step for every sounding
        pitch: a knob sends ~100 messages/s), the steps' other pitches in the background."""
        sounding = self.sounding_on(channel)
        position = self._channels[channel].morph_position
        if self.wait_s is None and position is not None:
            line = self._lines[channel]
            for step, missing in self.missing_steps(channel, sounding).items():
                self.request_soon(line[step], missing)
            for step in neighbour_steps(position):
                self.request_all(line[step])
        self.follow(channel, sounding, frame)

    def layer(
        self, timbre: Timbre, model_pitch: int, pitch: int, priority: Priority
    ) -> Layer | None:
        """The exact note, else (live) the nearest cached pitch rate-shifted, else None."""
        key = timbre.key
        note = self.cache.lookup(key, model_pitch)
        if note is None:
            self.cache.request(timbre.latent, [model_pitch], priority)
            if self.wait_s is not None:
                note = self.wait(timbre, model_pitch)
            else:
                note = self.cache.nearest(key, model_pitch)
        self.cache.played(key, model_pitch)
        return self.shifted(note, pitch)

    def wait(self, timbre: Timbre, model_pitch: int) -> Note:
        """Offline: the exact note, waited for up to ``wait_s``."""
        assert self.wait_s is not None
        if not self.cache.wait(timbre.key, [model_pitch], self.wait_s):
            raise CacheError(
                f"note {model_pitch} of '{timbre.name}' was not rendered within {self.wait_s} s"
            )
        note = self.cache.lookup(timbre.key, model_pitch)
        assert note is not None
        return note

    def shifted(self, note: Note | None, pitch: int) -> Layer | None:
        """``note`` rate-shifted to ``pitch``, None when none or too far."""
        if note is None or abs(pitch - note.pitch) > self.max_shift_semitones:
            return None
        return Layer(note, pitch_ratio(pitch - note.pitch))

    def line_layers(
        self,
        line: list[Timbre],
        u: float,
        model_pitch: int,
        pitch: int,
        priority: Priority | None,
    ) -> Layers | None:
        """(layer_a, layer_b, weight of b) at position ``u`` along ``line``: the two nearest
        cached steps around ``u`` crossfaded.

        Missing exact neighbour steps are requested at ``priority`` (None: already requested).
        """
        keys = [step.key for step in line]
        for step in neighbour_steps(u) if priority is not None else ():
            if self.cache.lookup(keys[step], model_pitch) is None:
                self.cache.request(line[step].latent, [model_pitch], priority)
                if self.wait_s is not None:
                    self.wait(line[step], model_pitch)
        cached = [
            s for s, key in enumerate(keys) if self.cache.lookup(key, model_pitch) is not None
        ]
        below = max((s for s in cached if s <= u), default=None)
        above = min((s for s in cached if s >= u), default=None)
        if below is None and above is None:
            # Nothing of this pitch yet: the nearest step that has any pitch, rate-shifted.
            for step in sorted(range(len(line)), key=lambda s: abs(s - u)):
                layer = self.shifted(self.cache.nearest(keys[step], model_pitch), pitch)
                if layer is not None:
                    return layer, None, 0.0
            return None
        if below is None or above is None or below == above:
            only = below if below is not None else above
            note = self.cache.lookup(keys[only], model_pitch)
            layer = self.shifted(note, pitch)
            return (layer, None, 0.0) if layer is not None else None
        a = self.shifted(self.cache.lookup(keys[below], model_pitch), pitch)
        b = self.shifted(self.cache.lookup(keys[above], model_pitch), pitch)
        if a is None or b is None:
            return None
        return a, b, (u - below) / (above - below)

    def sounding_on(self, channel: int) -> list[tuple[int, int, int | None]]:
        """(slot, pitch, model pitch) of ``channel``'s sounding voices."""
        return [
            (slot, pitch, self.model_pitch(pitch))
            for slot, (ch, pitch) in self.voices.sounding()
            if ch == channel
        ]

    def missing_steps(self, channel: int, sounding: Sounding) -> dict[int, list[int]]:
        """Step → the sounding pitches it lacks, for the steps around ``channel``'s position."""
        line, u = self._lines[channel], self._channels[channel].morph_position
        played = sorted({mp for _, _, mp in sounding if mp is not None})
        missing = {}
        for step in neighbour_steps(u) if u is not None else ():
            lacking = [p for p in played if self.cache.lookup(line[step].key, p) is None]
            if lacking:
                missing[step] = lacking
        return missing

    def mark_stale(self, channel: int, sounding: Sounding) -> None:
        """Live, mark ``channel`` stale when ``sounding`` plays stand-ins for its line's steps."""
        if self.wait_s is None and self.missing_steps(channel, sounding):
            self.stale.add(channel)

    def follow(self, channel: int, sounding: Sounding, frame: int) -> None:
        """``channel``'s sounding notes take its line's position (the nearest made steps where
        the exact ones are not made yet; ``start_pending`` moves them on when those arrive)."""
        line, u = self._lines[channel], self._channels[channel].morph_position
        assert u is not None
        priority = Priority.NEAR if self.wait_s is not None else None
        for slot, pitch, model_pitch in sounding:
            layers = None
            if model_pitch is not None:
                layers = self.line_layers(line, u, model_pitch, pitch, priority)
            if layers is not None:
                self.voices.morph(slot, *layers, frame=frame)
                self._heard[channel] = line[round(u)]
        if self.wait_s is None and self.missing_steps(channel, sounding):
            self.stale.add(channel)
        else:
            self.stale.discard(channel)
