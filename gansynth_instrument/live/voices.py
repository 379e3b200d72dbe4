"""Note-on → voice: the control side of the voices (allocation, stealing, pedal, envelopes, bend,
morph), run on the MIDI thread.

``Voices`` keeps a shadow of every mixer slot's state and decides stealing, the pedal and
releases; it tells the mixer (``mixer.py``) what to do with frame-stamped commands and learns
which voices ended from it. A looping voice plays ``note.loop_note`` versions of its notes, made
here once per note, so the audio thread only wraps a read position.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Protocol

from gansynth_instrument.live.mixer import (
    ALL_CHANNELS,
    CMD_BEND,
    CMD_FADE,
    CMD_GAIN,
    CMD_MORPH,
    CMD_NOTE_ON,
    CMD_RELEASE,
    CMD_SILENCE,
    IMMEDIATE,
)
from gansynth_instrument.notes.note import LoopedNote, Note, loop_note


@dataclass(frozen=True)
class Layer:
    """One note a voice plays and its pitch ratio (playback rate before bend, 1.0 = as cached)."""

    note: Note | LoopedNote
    pitch_ratio: float = 1.0


def pitch_ratio(semitones: float) -> float:
    """Playback-rate ratio that shifts pitch by ``semitones`` (equal temperament)."""
    return 2.0 ** (semitones / 12.0)


class MixerLink(Protocol):
    """What ``Voices`` needs of the audio side: a ``Mixer`` in this process, or an
    ``AudioProcess`` whose mixer runs in a process of its own. ``send`` returns False when the
    command could not be queued (it is then counted as dropped)."""

    sample_rate: int
    polyphony: int
    slots: int

    def send(self, cmd: tuple) -> bool: ...

    def pending(self) -> int: ...

    def take_finished(self) -> list[int]: ...


@dataclass
class _Slot:
    """Control-side shadow of one Mixer slot."""

    key: Hashable = None
    serial: int = 0
    started: int = 0  # note-on order, for "oldest first"
    held: bool = False  # key still down
    sustained: bool = False  # key up but the pedal holds it
    sounding: bool = False
    dying: bool = False  # stolen: fading out in a spare slot, no longer counted
    loop: bool = False  # plays looped notes (a morph keeps it looping)
    channel: int = 0  # MIDI channel 0-15


class Voices:
    """Control side of the voice engine: allocation, stealing, sustain pedal, bend, morph updates.

    At most ``mixer.polyphony`` voices sound (release tails included). Past that, a note-on steals:
    the oldest released voice (its tail is the least audible), else the oldest pedal-sustained
    one, else the oldest held one; the victim fades out over ``steal_fade_s`` in one of the
    Mixer's spare slots while the new note starts. A retriggered key releases its old voice
    first (FluidSynth's convention). The pool is shared by every MIDI channel, so stealing crosses
    channels; the pedal, bend and the all-notes/sound-off commands act on one channel's voices,
    as on a General MIDI synth. Commands go to the Mixer through its deque; when it holds
    ``queue_limit`` commands a new one is dropped and counted in ``dropped``.

    A looping voice (``note_on(loop=True)``) plays ``loop_note`` versions of its notes, made here
    once per cache note and kept while the cache keeps that note (a weak mapping), so the MIDI
    thread pays the rearrangement once and the audio thread never.
    """

    def __init__(
        self, mixer: MixerLink, *, queue_limit: int = 4096, steal_fade_s: float = 0.005
    ) -> None:
        self._mixer = mixer
        self.sample_rate = mixer.sample_rate
        self.queue_limit = queue_limit
        self.dropped = 0
        self._pedal = [False] * 16
        self.polyphony = mixer.polyphony
        self._fade_frames = max(1, round(steal_fade_s * mixer.sample_rate))
        self._slots = [_Slot() for _ in range(mixer.slots)]
        self._by_serial: dict[int, int] = {}
        self._serials = 0
        self.started = 0  # note-ons sent: a view tells a message that started a voice by it
        self._loop_notes: weakref.WeakKeyDictionary[Note, LoopedNote] = weakref.WeakKeyDictionary()

    def _send(self, cmd: tuple) -> bool:
        if self._mixer.pending() >= self.queue_limit or not self._mixer.send(cmd):
            self.dropped += 1
            return False
        return True

    def _looping(self, layer: Layer) -> Layer:
        """``layer`` with its note laid out for looping (made once per note, then reused)."""
        if isinstance(layer.note, LoopedNote):
            return layer
        looped = self._loop_notes.get(layer.note)
        if looped is None:
            looped = self._loop_notes[layer.note] = loop_note(layer.note)
        return Layer(looped, layer.pitch_ratio)

    def _collect_finished(self) -> None:
        for serial in self._mixer.take_finished():
            slot = self._by_serial.pop(serial, None)
            if slot is not None:
                self._slots[slot] = _Slot()

    def _pick_slot(self, frame: int) -> int:
        """A free slot, after stealing a voice if ``polyphony`` are sounding."""

        def steal_order(item: tuple[int, _Slot]) -> tuple[int, int]:
            s = item[1]
            # Released tails first (least audible), then pedal-held, then keys still down.
            tier = 2 if s.held else 1 if s.sustained else 0
            return tier, s.started

        live = [(slot, s) for slot, s in enumerate(self._slots) if s.sounding and not s.dying]
        if len(live) >= self.polyphony:
            victim, s = min(live, key=steal_order)
            if self._send((frame, CMD_FADE, victim, s.serial, self._fade_frames)):
                s.dying = True
                s.held = s.sustained = False
        free = [slot for slot, s in enumerate(self._slots) if not s.sounding]
        fading = [(s.started, slot) for slot, s in enumerate(self._slots) if s.dying]
        if free:
            return free[0]
        if fading:  # every spare slot still fading (a burst of steals): cut the oldest
            return min(fading)[1]
        return min(live, key=steal_order)[0]  # the queue is full: this note-on drops anyway

    def note_on(
        self,
        key: Hashable,
        layer_a: Layer,
        layer_b: Layer | None = None,
        *,
        weight: float = 0.0,
        amp: float = 1.0,
        attack_s: float = 0.01,
        release_s: float = 0.3,
        loop: bool = False,
        one_shot: bool = False,
        channel: int = 0,
        frame: int = IMMEDIATE,
    ) -> int | None:
        """Start a voice for ``key`` (e.g. a MIDI pitch); its slot, or None if the queue is full.

        ``weight`` is layer_b's share of a morph crossfade (0 = only layer_a). ``loop``: while held
        the voice loops the middle of its notes (see the module docstring) instead of ending.
        ``one_shot`` (a drum hit): the voice plays its note to the end; note-offs, the pedal and
        all-notes-off leave it, and it is stolen as early as a released voice.
        """
        self._collect_finished()
        if loop:
            layer_a = self._looping(layer_a)
            layer_b = self._looping(layer_b) if layer_b is not None else None
        for slot, s in enumerate(self._slots):
            if s.sounding and s.key == key and (s.held or s.sustained):
                self._release_slot(slot, frame)
        slot = self._pick_slot(frame)
        self._serials += 1
        attack_frames = max(1, round(attack_s * self.sample_rate))
        release_frames = max(1, round(release_s * self.sample_rate))
        note_b = layer_b.note if layer_b is not None else None
        ratio_b = layer_b.pitch_ratio if layer_b is not None else 1.0
        cmd = (frame, CMD_NOTE_ON, slot, self._serials, layer_a.note, layer_a.pitch_ratio)
        cmd += (note_b, ratio_b, float(weight), float(amp), attack_frames, release_frames, channel)
        if not self._send(cmd):
            return None
        self.started += 1
        old = self._slots[slot]
        if old.sounding:
            self._by_serial.pop(old.serial, None)
        self._slots[slot] = _Slot(
            key, self._serials, self._serials, not one_shot, False, True, loop=loop, channel=channel
        )
        self._by_serial[self._serials] = slot
        return slot

    def _release_slot(self, slot: int, frame: int) -> None:
        s = self._slots[slot]
        if self._send((frame, CMD_RELEASE, slot, s.serial)):
            s.held = s.sustained = False

    def note_off(self, key: Hashable, frame: int = IMMEDIATE) -> None:
        """Key up: release its voice, or leave it to the pedal while the pedal is down."""
        self._collect_finished()
        for slot, s in enumerate(self._slots):
            if s.sounding and s.held and s.key == key:
                if self._pedal[s.channel]:
                    s.held, s.sustained = False, True
                else:
                    self._release_slot(slot, frame)

    def pedal_down(self, channel: int = 0) -> bool:
        """Whether ``channel``'s sustain pedal is down."""
        return self._pedal[channel]

    def sustain(self, down: bool, frame: int = IMMEDIATE, channel: int = 0) -> None:
        """Sustain pedal (CC64) of ``channel``: lifting it releases the channel's voices whose
        key is already up."""
        self._collect_finished()
        self._pedal[channel] = down
        if not down:
            for slot, s in enumerate(self._slots):
                if s.sounding and s.sustained and s.channel == channel:
                    self._release_slot(slot, frame)

    def all_notes_off(self, frame: int = IMMEDIATE, channel: int = ALL_CHANNELS) -> None:
        """CC123: release every held or sustained voice of ``channel`` (default: of every
        channel); release tails still sound."""
        self._collect_finished()
        for slot, s in enumerate(self._slots):
            if s.sounding and (s.held or s.sustained) and channel in (ALL_CHANNELS, s.channel):
                self._release_slot(slot, frame)

    def all_sound_off(self, frame: int = IMMEDIATE, channel: int = ALL_CHANNELS) -> None:
        """CC120: silence every voice of ``channel`` (default: every voice) at once, tails
        included."""
        if self._send((frame, CMD_SILENCE, channel)):
            for slot, s in enumerate(self._slots):
                if s.sounding and channel in (ALL_CHANNELS, s.channel):
                    self._by_serial.pop(s.serial, None)
                    self._slots[slot] = _Slot()

    def bend(self, semitones: float, frame: int = IMMEDIATE, channel: int = 0) -> None:
        """Pitch-bend ``channel``'s voices, sounding and future, by ``semitones``."""
        self._send((frame, CMD_BEND, channel, pitch_ratio(semitones)))

    def channel_gain(self, channel: int, left: float, right: float, frame: int = IMMEDIATE) -> None:
        """``channel``'s voices, sounding and future, play at these (left, right) gains."""
        self._send((frame, CMD_GAIN, channel, float(left), float(right)))

    def morph(
        self,
        slot: int,
        layer_a: Layer,
        layer_b: Layer | None,
        weight: float,
        frame: int = IMMEDIATE,
    ) -> None:
        """Change what a sounding voice plays (same playback position); same pair = weight glide.

        A looping voice gets its new notes' loop versions and keeps looping."""
        s = self._slots[slot]
        if s.loop:
            layer_a = self._looping(layer_a)
            layer_b = self._looping(layer_b) if layer_b is not None else None
        note_b = layer_b.note if layer_b is not None else None
        ratio_b = layer_b.pitch_ratio if layer_b is not None else 1.0
        cmd = (frame, CMD_MORPH, slot, s.serial, layer_a.note, layer_a.pitch_ratio, note_b, ratio_b)
        self._send((*cmd, float(weight)))

    def sounding(self) -> Iterator[tuple[int, Hashable]]:
        """(slot, key) of every voice still sounding (stolen ones fading out excepted)."""
        self._collect_finished()
        for slot, s in enumerate(self._slots):
            if s.sounding and not s.dying:
                yield slot, s.key

    def in_use(self) -> int:
        """Number of voices sounding (control side's view, including release tails)."""
        return sum(1 for _ in self.sounding())
