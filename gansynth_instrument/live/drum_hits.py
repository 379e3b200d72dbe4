"""Drum kits played by the engine (``engine.py``): each key of a ``timbre.DrumKit`` is its own hit,
a timbre's note at the kit's pitch, shaped by the hit's hold and decay (``note.shape_hit``, made
once per cached note and envelope) and played as a one-shot (note-offs do not cut it, as on a
General MIDI drum channel). Live, a hit whose note is not cached yet plays from the nearest
cached pitch of its timbre (``note_supply``), or not at all: a late drum hit is worse than none.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

from gansynth_instrument.live.channels import DRUM_CHANNEL
from gansynth_instrument.live.engine_report import KIT_ON_MELODIC, SKIP_KIT, SKIP_RANGE, Tally
from gansynth_instrument.live.note_supply import NoteSupply
from gansynth_instrument.live.voices import Layer, Voices
from gansynth_instrument.notes.levels import db_to_gain, note_amplitude
from gansynth_instrument.notes.note import Note, shape_hit
from gansynth_instrument.notes.note_queue import Priority
from gansynth_instrument.notes.timbre import DrumKit, KitHit, Timbre

HIT_ATTACK_S = 0.001  # a drum hit starts at once; 1 ms only keeps its first sample from clicking


class DrumHits:
    """Plays kits' hits for one engine, counting them in its ``tally``."""

    def __init__(
        self,
        supply: NoteSupply,
        voices: Voices,
        tally: Tally,
        model_pitch: Callable[[int], int | None],
        velocity_exponent: float,
    ) -> None:
        self._supply, self._voices, self._tally = supply, voices, tally
        self._model_pitch = model_pitch
        self._velocity_exponent = velocity_exponent
        # Each cached note shaped into hits once (note → (hold_s, decay_s) → hit), kept while
        # the cache keeps the note.
        self._hit_notes: weakref.WeakKeyDictionary[Note, dict[tuple[float, float], Note]] = (
            weakref.WeakKeyDictionary()
        )

    def prefetch(self, kits: Iterable[DrumKit | None]) -> None:
        """Ask for every hit of ``kits`` soon (at start, before the rest of their timbres)."""
        hits: dict[str, tuple[Timbre, set[int]]] = {}
        for kit in {id(k): k for k in kits if k is not None}.values():
            for hit in kit.hits.values():
                pitch = self._supply.model_pitch(hit.pitch, warn=False)
                if pitch is not None:
                    hits.setdefault(hit.timbre.key, (hit.timbre, set()))[1].add(pitch)
        for timbre, pitches in hits.values():
            self._supply.request_soon(timbre, sorted(pitches))

    def play(
        self, channel: int, kit: DrumKit, key: int, velocity: int, frame: int
    ) -> tuple[Timbre, Note] | None:
        """Play ``kit``'s hit for ``key`` as a one-shot; returns (timbre, shaped note) played,
        None when nothing was."""
        hit = kit.hits.get(key)
        if hit is None:
            self._tally.skipped[channel][SKIP_KIT] += 1
            return None
        model_pitch = self._model_pitch(hit.pitch)
        if model_pitch is None:
            self._tally.skipped[channel][SKIP_RANGE] += 1
            return None
        layer = self._supply.layer(hit.timbre, model_pitch, hit.pitch, Priority.WAITING)
        if layer is None:
            return None
        note = self._hit_note(layer.note, hit)
        self._tally.played[channel][kit.name] += 1
        if channel != DRUM_CHANNEL:
            self._tally.remarks[channel].add(KIT_ON_MELODIC)
        amp = note_amplitude(hit.timbre, velocity, self._velocity_exponent)
        self._voices.note_on(
            (channel, key),
            Layer(note, layer.pitch_ratio),
            amp=amp * db_to_gain(hit.gain_db),
            attack_s=HIT_ATTACK_S,
            release_s=hit.decay_s,
            one_shot=True,
            channel=channel,
            frame=frame,
        )
        return hit.timbre, note

    def _hit_note(self, note: Note, hit: KitHit) -> Note:
        """``note`` shaped into ``hit`` (made once per note and envelope)."""
        shaped = self._hit_notes.setdefault(note, {})
        envelope = (hit.hold_s, hit.decay_s)
        if envelope not in shaped:
            shaped[envelope] = shape_hit(note, *envelope)
        return shaped[envelope]
