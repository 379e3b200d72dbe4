"""Control side of the instrument: raw MIDI bytes → voice commands, cache requests, timbre state.

``Engine.handle(msg)`` takes one MIDI message as raw bytes (``midi.py`` and the offline MIDI-file
renderer feed it; nothing here imports mido). It keeps the 16 channels' state (``channels.py``:
program and bank, morph position, pedal, bend and its range, volume, expression, pan), turns
changes into voice commands (``voices.Voices``: one voice pool shared by every channel), and asks
the note cache for what will be needed next.

General MIDI: channel 10 is percussion; its notes name drum sounds, not pitches. A drum kit
(``drums``, a ``timbre.DrumKit``) plays each key as its own hit (``drum_hits.py``). A melodic
preset as ``drums`` plays each key at its own pitch; without either, drum notes are not played (one
notice). A kit can also play a melodic channel (``kit``). A program the bank lacks plays a
stand-in (``programs.py``), with one notice. Every note played or skipped is counted per channel
(``report()``), for a render to say what it did.

Rules, each kept where its job is done:
- A note plays its exact cached note, else a stand-in, else waits for it; a pitch outside the
  model's range plays the nearest model pitch, shifted a little (``note_supply.py``).
- Morph, timbre knobs and the XY pad move a channel along a line of timbres, its sounding notes
  following (``timbre_lines.py``). Knobs, pad and buttons act on the channel their controller
  arrives on: each channel keeps its own knob stops, pad position, button states and line.
- What a channel plays, the random-timbre and save buttons (``channel_timbres.py``).
- Controllers, MIDI learn (``learn()``; ``controllers.py``): the learned controller is handed
  once to whoever saves it (``take_learned()``), so no file is written on the MIDI thread.
- Malformed or unsupported messages are dropped and counted (``ignored``), as mido does with
  incoming garbage: a live instrument must not stop for a stray byte.

This module is the engine's façade: what live play, render, the surfaces and MPE input call.
Most of its length is that interface (documented methods handing work to the modules above);
the work itself is done there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from gansynth_instrument.live.channel_timbres import ChannelTimbres
from gansynth_instrument.live.channels import (
    CHANNELS,
    DRUM_CHANNEL,
    Channel,
)
from gansynth_instrument.live.config import EngineConfig
from gansynth_instrument.live.controllers import Bindings, ControlChanges
from gansynth_instrument.live.drum_hits import DrumHits
from gansynth_instrument.live.engine_report import (
    MELODIC_DRUMS,
    PERCUSSION_NOTICE,
    SKIP_CHANNEL,
    SKIP_PERCUSSION,
    SKIP_RANGE,
    ChannelReport,
    EngineStatus,
    Tally,
)
from gansynth_instrument.live.mixer import IMMEDIATE
from gansynth_instrument.live.note_supply import PENDING_S as PENDING_S  # what callers wait for
from gansynth_instrument.live.note_supply import NoteSupply
from gansynth_instrument.live.planning import planned_notes
from gansynth_instrument.live.programs import Programs
from gansynth_instrument.live.timbre_lines import TimbreLines
from gansynth_instrument.live.voices import Layer, Voices
from gansynth_instrument.midi_spec import (
    CC_MOD_WHEEL,
    CHANNEL_MASK,
    CONTROL_CHANGE,
    DATA_BYTES,
    DATA_MAX,
    KIND_MASK,
    NOTE_OFF,
    NOTE_ON,
    PITCH_BEND,
    PROGRAM_CHANGE,
    STATUS_BIT,
    SYSTEM,
)
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.levels import DEFAULT_VELOCITY_EXPONENT as DEFAULT_VELOCITY_EXPONENT
from gansynth_instrument.notes.levels import AttackGains
from gansynth_instrument.notes.levels import note_amplitude as note_amplitude
from gansynth_instrument.notes.note import Note
from gansynth_instrument.notes.timbre import DrumKit, Timbre
from gansynth_instrument.presets.knobs import EXPLORE_CCS, KNOB_CCS
from gansynth_instrument.presets.timbre_space import TimbreSpace

logger = logging.getLogger(__name__)


RANDOM_CC = EXPLORE_CCS["the random-timbre button"]
SAVE_CC = EXPLORE_CCS["the save-timbre button"]


class Engine:
    """MIDI in, voice commands out; see the module docstring. Not thread-safe: one MIDI thread.

    ``programs`` maps bank 0's program numbers to timbres, ``variations`` other banks' (bank
    select CC0 → program → timbre); ``timbre`` is what every channel plays at start, or
    ``kit`` when given (a kit as the preset; a program change replaces it). ``drums`` plays
    channel 10: a kit, a melodic preset, or None (its notes are skipped). ``morph`` holds the
    quantised morph steps (``morph_steps``), empty for no morph. ``config``: the channels to
    play, bend range, velocity curve, shift limit and wait (``config.EngineConfig``, checked when
    made). ``space`` holds the knob directions and the pad's corners
    (None: no knobs, no pad); ``knob_ccs`` are the knobs' controllers, ``pad_ccs`` the pad's
    (x, y). Knobs, pad, buttons and waiting note-ons act per channel (see the module docstring).
    """

    def __init__(
        self,
        cache: NoteCache,
        voices: Voices,
        pitches: Sequence[int],
        timbre: Timbre,
        *,
        programs: Mapping[int, Timbre] | None = None,
        variations: Mapping[int, Mapping[int, Timbre]] | None = None,
        drums: Timbre | DrumKit | None = None,
        kit: DrumKit | None = None,
        morph: Sequence[Timbre] = (),
        morph_cc: int | None = CC_MOD_WHEEL,
        space: TimbreSpace[Timbre] | None = None,
        knob_ccs: Sequence[int] = KNOB_CCS,
        pad_ccs: Sequence[int] = (),
        random_cc: int | None = RANDOM_CC,
        save_cc: int | None = SAVE_CC,
        config: EngineConfig | None = None,
    ) -> None:
        config = config or EngineConfig()
        channels = config.channels
        self.cache = cache
        self.voices = voices
        self.pitches = tuple(sorted(pitches))
        self.programs = dict(programs or {})
        self._programs = Programs({0: self.programs, **(variations or {})})
        self._path = list(morph)  # the bank's morph steps
        self.listen = frozenset(range(CHANNELS) if channels is None else channels)
        # Per channel, the line it moves along: the morph path, a knob's stops, a pad edge.
        self._lines: list[list[Timbre]] = [self._path] * CHANNELS
        knobs = space.knobs if space is not None else None
        has_pad = space is not None and bool(space.corners)
        self.random_cc, self.save_cc = random_cc, save_cc
        buttons = [cc for cc in (random_cc, save_cc) if cc is not None]
        self._bindings = Bindings(
            morph_cc if self._path else None,
            knob_ccs[: knobs.count if knobs else 0],
            pad_ccs if has_pad else (),
            buttons,
        )
        self.config = config
        self.velocity_exponent = config.velocity_exponent
        self.channels = [
            Channel(c, bend_range=config.bend_range_semitones) for c in range(CHANNELS)
        ]
        # Per channel: the timbre its last note started with, or the step a line moved it to
        # while it sounded: what the save button keeps (None: no note yet; ChannelTimbres.press).
        self._heard: list[Timbre | None] = [None] * CHANNELS
        self._supply = NoteSupply(
            cache,
            voices,
            lines=self._lines,
            channels=self.channels,
            heard=self._heard,
            pitches=self.pitches,
            max_shift_semitones=config.max_shift_semitones,
            wait_s=config.wait_s,
            warn_once=self._warn_once,
        )
        self._glides = TimbreLines(
            self._path, space, self._lines, self.channels, self._supply, self._set_focus
        )
        self._spaces = self._glides.spaces  # per channel: its knob stops and pad position
        self._tally = Tally()
        self._choice = ChannelTimbres(
            timbre,
            kit=kit,
            drums=drums,
            programs=self._programs,
            spaces=self._spaces,
            lines=self._lines,
            channels=self.channels,
            heard=self._heard,
            random_cc=random_cc,
            supply=self._supply,
            focus=self._set_focus,
            warn_once=self._warn_once,
            remark=lambda channel, text: self._tally.remarks[channel].add(text),
        )
        self._controls = ControlChanges(
            self.channels,
            voices,
            self._supply,
            self._glides,
            self._bindings,
            press=self._choice.press,
            warn_once=self._warn_once,
        )
        # A channel playing a kit plays it instead of its timbre (``drum_hits.py``).
        self._timbres, self._kits = self._choice.timbres, self._choice.kits
        # The channel the live view shows and ``timbre`` names: the last one played or changed.
        self.focus = min(self.listen - {DRUM_CHANNEL}, default=DRUM_CHANNEL)
        self.ignored = 0
        # The timbre and note of the last note started (the browser surface draws its spectrum).
        self.last_played: tuple[Timbre, Note] | None = None
        self._attack_gains = AttackGains()
        self._drums = DrumHits(
            self._supply, voices, self._tally, self.model_pitch, config.velocity_exponent
        )
        self._warned: set[str] = set()

    # -- entry points --------------------------------------------------------------------------

    def handle(self, msg: Sequence[int], frame: int = IMMEDIATE) -> None:
        """Act on one raw MIDI message; ``frame`` stamps its commands (offline), else at once."""
        if not msg or msg[0] >= SYSTEM or msg[0] < STATUS_BIT:
            self.ignored += 1  # system, realtime and running-status bytes are not ours
            return
        kind, channel = msg[0] & KIND_MASK, msg[0] & CHANNEL_MASK
        data = DATA_BYTES[kind]
        if len(msg) < 1 + data or any(not 0 <= b <= DATA_MAX for b in msg[1 : 1 + data]):
            self.ignored += 1
            return
        if channel not in self.listen:
            if kind == NOTE_ON and msg[2] > 0:
                self._tally.skipped[channel][SKIP_CHANNEL] += 1
            return
        if kind == NOTE_ON and msg[2] > 0:
            self._note_on(channel, msg[1], msg[2], frame)
        elif kind in (NOTE_ON, NOTE_OFF):  # velocity 0 = note-off (MIDI running-status idiom)
            self._supply.release((channel, msg[1]))
            self.voices.note_off((channel, msg[1]), frame)
        elif kind == CONTROL_CHANGE:
            if not self._controls.handle(channel, msg[1], msg[2], frame):
                self.ignored += 1
        elif kind == PROGRAM_CHANGE:
            self.program_change(msg[1], channel)
        elif kind == PITCH_BEND:
            state = self.channels[channel]
            state.bend = msg[1] | (msg[2] << 7)
            self.voices.bend(state.bend_semitones(), frame, channel)
        else:
            self.ignored += 1  # aftertouch: no per-voice pressure in this instrument

    @property
    def timbre(self) -> Timbre | None:
        """The preset the focus channel plays (see ``focus``)."""
        return self._timbres[self.focus]

    @timbre.setter
    def timbre(self, timbre: Timbre) -> None:
        self._timbres[self.focus] = timbre

    @property
    def morph_position(self) -> float | None:
        """The focus channel's morph position in steps, None while its preset plays."""
        return self.channels[self.focus].morph_position

    @property
    def morph(self) -> list[Timbre]:
        """The line the focus channel moves along: the morph path, a knob's stops, a pad edge."""
        return self._lines[self.focus]

    @property
    def space(self) -> TimbreSpace[Timbre] | None:
        """The focus channel's knobs and pad (None: no knobs, no pad)."""
        return self._spaces[self.focus]

    @property
    def bend_range_semitones(self) -> float:
        return self.channels[self.focus].bend_range

    def prefetch(self) -> None:
        """Ask for every pitch of the current timbre in the background, and the kits' hits
        first (call once at start)."""
        self._drums.prefetch(self._kits)
        if self.timbre is not None:
            self._supply.request_all(self.timbre)

    def drums_summary(self) -> str:
        """What channel 10 plays, for a render's or the player's summary."""
        return self._choice.drums_summary()

    def timbre_of(self, channel: int) -> Timbre | None:
        """What ``channel`` plays now (None: nothing, e.g. unmapped percussion)."""
        return self._timbres[channel]

    def planned_notes(
        self, messages: Iterable[Sequence[int]]
    ) -> dict[str, tuple[Timbre, set[int]]]:
        """Timbre key → (timbre, model pitches) the program changes and note-ons of
        ``messages`` will ask for, from the engine's present state and without acting on any:
        a renderer asks the cache for them up front, so they render in batches."""
        return planned_notes(
            messages,
            timbres=self._timbres,
            kits=self._kits,
            banks=[c.bank for c in self.channels],
            listen=self.listen,
            programs=self._programs,
            model_pitch=lambda pitch: self.model_pitch(pitch, warn=False),
        )

    def report(self) -> list[ChannelReport]:
        """Per channel that had notes: notes played per preset and skipped per reason."""
        return self._tally.report()

    @property
    def morph_cc(self) -> int | None:
        """The morph's controller (None: no morph path)."""
        return self._bindings.morph_cc

    def learn(self, knob: int | None = None) -> None:
        """Bind the morph (or knob ``knob``, 0-based) to the next controller moved (other than
        pedal and channel modes)."""
        self._bindings.learn(knob, has_knobs=self.space is not None, has_morph=bool(self._path))

    @property
    def learning(self) -> bool:
        """True until a controller has been bound after ``learn()``."""
        return self._bindings.learning

    def take_learned(self) -> int | None:
        """The controller ``learn()`` bound, once (then None): for the caller to save it."""
        return self._bindings.take_learned()

    @property
    def pending(self) -> int:
        """Note-ons waiting for their timbre's first note, and channels whose notes wait for
        their line's exact steps (see ``start_pending``)."""
        return self._supply.waiting

    def start_pending(self, now: float | None = None) -> int:
        """Start every waiting note-on whose exact note has arrived, drop those older than
        ``PENDING_S``; crossfade sounding notes whose line's exact steps have arrived. Returns
        how many still wait. Live, the player calls this every few ms while any wait."""
        return self._supply.start_pending(self._start, now)

    def take_learned_knob(self) -> tuple[int, int] | None:
        """(knob, controller) that ``learn(knob=…)`` bound, once (then None)."""
        return self._bindings.take_learned_knob()

    def take_save(self) -> Timbre | None:
        """The timbre the save button marked, once (then None): for the caller to write it."""
        return self._choice.take_save()

    def random_timbre(self, channel: int | None = None) -> None:
        """A fresh random timbre for ``channel``'s (default: the focus channel's) next notes,
        with the level and envelope of what it plays; the pitches played last are rendered
        first, then the rest."""
        self._choice.random(self.focus if channel is None else channel)

    def current(self, channel: int | None = None) -> Timbre | None:
        """The one timbre ``channel`` (default: the focus channel) plays now: the nearest step
        of a line that is moving, else its timbre (knob offsets included)."""
        return self._choice.current(self.focus if channel is None else channel)

    def program_change(self, program: int, channel: int | None = None) -> None:
        """Switch ``channel``'s (default: the focus channel's) timbre for new notes, in the bank
        its last bank select chose; sounding notes keep theirs. A program the bank lacks plays a
        stand-in with one notice (``programs.py``); without a bank there is nothing to switch
        to. Percussion (channel 10) keeps its drum preset."""
        self._choice.program_change(self.focus if channel is None else channel, program)

    def switch_to(self, timbre: Timbre, channel: int | None = None) -> None:
        """``channel``'s (default: the focus channel's) new notes play ``timbre``, a timbre from
        outside the bank (a preset file, a latent drawn in the browser), as a program change
        switches: sounding notes keep theirs, the pitches played last render first."""
        self._choice.switch_to(self.focus if channel is None else channel, timbre)

    def status(self) -> EngineStatus:
        """What the live view shows; cheap enough to call a few times a second."""
        named = {t.name: t for t in self._timbres if t is not None}
        named.update((t.name, t) for t in self.programs.values())
        position = self.morph_position
        return EngineStatus(
            timbre=self._choice.name(self.focus),
            morph_position=(
                None
                if position is None or self.morph is not self._path
                else position / (len(self.morph) - 1)
            ),
            cache_fill={name: self.cache.progress(t.key) for name, t in named.items()},
            dropped_commands=self.voices.dropped,
            ignored_messages=self.ignored,
            morph_cc=self.morph_cc,
        )

    # -- internals ------------------------------------------------------------------------------

    def _set_focus(self, channel: int) -> None:
        self.focus = channel

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning("%s", message)

    def model_pitch(self, pitch: int, *, warn: bool = True) -> int | None:
        """The model pitch that plays ``pitch`` (itself if the model has it), None if too far."""
        return self._supply.model_pitch(pitch, warn=warn)

    def _note_on(self, channel: int, pitch: int, velocity: int, frame: int) -> None:
        kit = self._kits[channel]
        if kit is not None:
            played = self._drums.play(channel, kit, pitch, velocity, frame)
            self.last_played = played or self.last_played
            return
        timbre = self._timbres[channel]
        if timbre is None and self.channels[channel].morph_position is None:
            self._tally.skipped[channel][SKIP_PERCUSSION] += 1
            self._warn_once("percussion", PERCUSSION_NOTICE)
            return
        model_pitch = self.model_pitch(pitch)
        if model_pitch is None:
            self._tally.skipped[channel][SKIP_RANGE] += 1
            return
        self._choice.recent.append(pitch)
        self.focus = channel
        timbre, layers = self._supply.note_on((channel, pitch), timbre, model_pitch, velocity)
        if layers is None:  # nothing near enough cached yet: it waits for its exact note
            return
        self._start((channel, pitch), timbre, layers, velocity, frame)

    def _start(
        self,
        key: tuple[int, int],
        timbre: Timbre,
        layers: tuple[Layer, Layer | None, float],
        velocity: int,
        frame: int,
    ) -> None:
        channel = key[0]
        self._tally.played[channel][timbre.name] += 1
        if channel == DRUM_CHANNEL:
            self._tally.remarks[channel].add(MELODIC_DRUMS)
        self._heard[channel] = timbre
        self.last_played = (timbre, layers[0].note)
        amp = note_amplitude(timbre, velocity, self.velocity_exponent)
        amp *= self._attack_gains(layers[0].note, timbre.attack_s)  # its peak as it sounds
        self.voices.note_on(
            key,
            layers[0],
            layers[1],
            weight=layers[2],
            amp=amp,
            attack_s=timbre.attack_s,
            release_s=timbre.release_s,
            loop=timbre.loop,
            channel=channel,
            frame=frame,
        )

    # -- per-note expression (MPE: ``mpe_input.py`` drives these on member channels) -----------

    def move(
        self, channel: int, target: tuple[str, int], value: int, frame: int = IMMEDIATE
    ) -> bool:
        """Move ``channel``'s knob, morph or pad axis (``("knob", k)``, ``("morph", 0)``,
        ``("pad", axis)``) to controller ``value``, as its own controller would: that channel's
        notes follow, no other's. False when this instrument has no such target."""
        return self._glides.move(channel, target, value, frame)

    def request_line(self, channel: int, pitch: int) -> None:
        """Ask for every step of ``channel``'s line at ``pitch``, sooner than the rest of their
        pitches: a note that slides needs them next."""
        self._supply.request_line(channel, self.model_pitch(pitch, warn=False))

    def set_level(self, channel: int, level: float, frame: int = IMMEDIATE) -> None:
        """``channel``'s voices play at ``level`` times its volume, expression and pan (an MPE
        note's pressure), gliding there as a volume change does."""
        state = self.channels[channel]
        state.note_level = level
        self.voices.channel_gain(channel, *state.gains(), frame)
