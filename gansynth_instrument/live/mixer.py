"""Voices → samples: the ``Mixer``, the only code the audio callback runs.

The control side (``voices.Voices``, MIDI thread) and the mixer share nothing but two queues, as
FluidSynth's rvoice queue does: commands in (``Mixer.commands``), serial numbers of the voices that
ended out (``Mixer.finished``). ``Mixer.mix`` (audio thread) is the commands' only consumer; it
obeys them and decides nothing. In live play the mixer runs in a process of its own
(``audio_process.py``), which carries the same commands over a pipe.

A voice plays up to ``MORPH_LAYERS`` Notes from the same playback position, each at its own pitch
ratio (1.0 for the exact pitch, 2^(semitones/12) for the nearest-pitch fallback), times its MIDI
channel's pitch-bend ratio, and each at its own gain. A note-on or a morph names one or two notes
and their weights (a crossfade between neighbouring morph steps); every layer whose weight changes
(0 for a note no longer named) then glides linearly from where it is to its new weight over the
glide, each layer on its own clock. So a knob that crosses a step, from steps (A, B) to (B, C),
fades A out while C fades in, instead of swapping the pair at once (a discontinuity: a click);
and A is silent one glide later however many morphs arrive meanwhile (an MPE slide sends one
about every millisecond), before a later step may take its layer. A named note that no layer
holds takes an empty layer or the one whose note was named least recently (``layers_after``: the
audio process's arena follows the same rule). Notes play their length once and end, unless the
voice plays ``LoopedNote``s: while held it wraps its read position within the loop; a release
stops the wrapping, so the voice plays on through the rest of the seam and the note's own tail
while its release envelope runs.

Envelope of a voice, in output frames ``f`` since its note-on (``A`` attack frames, ``R`` release
frames, ``f_rel`` the frame its release began)::

    attack(f)  = min(1, (f + 1) / A)
    release(f) = clip(1 - (f - f_rel + 1) / R, 0, 1)     (1 before the release)
    env(f)     = attack(f) * release(f)

Output is a stereo bus: each voice is scaled by its MIDI channel's (left, right) gains (volume,
expression and pan, computed by ``channels.py``); a gain change glides over the glide, so a
volume or pan sweep does not click. ``_master`` is the one place the bus becomes the output:
the master gain and limiter (``levels.MasterBus``) act on the stereo bus, one gain for both
sides, and then a mono output gets the mean of left and right, so a centred channel keeps its
mono level.

Every per-sample quantity is an elementwise function of integer frame counts, so the output does
not depend on how the audio is cut into blocks; a command's frame stamp is the exact frame it acts.

Why one module of this length: it has one job, to be the reference the compiled core
(``_mixcore.c``, ``compiled_mixer.py``) is checked against sample for sample
(``tests/test_mixer_compiled.py``), and it follows the core's order (commands, layers and
morphs, one chunk's arithmetic, the bus, the master stage). Those stages work in place on one
set of arrays allocated before the stream starts; split into classes they would hand the same
arrays back and forth, and the file would no longer read beside the C function by function. The
limiter it runs is already apart (``levels.Limiter``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable

import numpy as np

from gansynth_instrument.notes.levels import MasterBus
from gansynth_instrument.notes.note import LoopedNote, Note

IMMEDIATE = -1
"""Frame stamp of a command that applies at the start of the next mixed block (live play)."""

# Commands are tuples (frame, opcode, fields...), the protocol between Voices and any Mixer
# (``audio_process.py`` carries them to another process). Fields per opcode:
#   CMD_NOTE_ON  slot, serial, note_a, ratio_a, note_b, ratio_b, weight, amp, attack, release,
#                channel (attack and release in frames; weight is note_b's share; channel: the
#                MIDI channel 0-15)
#   CMD_RELEASE  slot, serial
#   CMD_MORPH    slot, serial, note_a, ratio_a, note_b, ratio_b, weight (glide to these notes)
#   CMD_BEND     channel, bend ratio (the channel's voices, sounding and future)
#   CMD_SILENCE  channel: its voices stop at once (ALL_CHANNELS: every voice)
#   CMD_FADE     slot, serial, fade frames: a stolen voice fades out from its current level
#   CMD_GAIN     channel, left gain, right gain (the channel's voices, sounding and future)
CMD_NOTE_ON, CMD_RELEASE, CMD_MORPH, CMD_BEND, CMD_SILENCE, CMD_FADE, CMD_GAIN = range(7)
NOTE_FIELDS = (4, 6)  # where CMD_NOTE_ON and CMD_MORPH carry their notes (note_a, note_b)

MIDI_CHANNELS = 16
ALL_CHANNELS = -1
BUS_CHANNELS = 2  # the mix is stereo: left, right
_NEVER = 1e18  # "released at" frame of a voice that is still held
# Notes a voice can hold: a morph step pair gliding in while the previous pair glides out.
MORPH_LAYERS = 4
DEFAULT_GLIDE_S = 0.01


def voice_slots(polyphony: int) -> int:
    """A Mixer's slots for ``polyphony`` voices: spares let stolen voices fade out (see Mixer)."""
    return polyphony + max(2, polyphony // 4)


def layers_after(held: tuple[Hashable, ...], named: tuple[Hashable, ...]) -> tuple[Hashable, ...]:
    """The notes a voice's mixer layers hold after a morph names ``named`` (its note_a, then
    note_b), given those it ``held`` (least recently named first; a note-on holds its own notes):
    a named note moves last, a new one takes an empty layer or the least recently named note's.
    The Mixer follows this rule, so the control side knows which waveforms a voice may read."""
    kept = list(held)
    for note in named:
        if note in kept:
            kept.remove(note)
        elif len(kept) == MORPH_LAYERS:
            del kept[0]
        kept.append(note)
    return tuple(kept)


class Mixer:
    """Audio side: fixed voice slots mixed into a caller's buffer; see the module docstring.

    Everything is allocated here, before the stream starts. ``mix`` is real-time safe: it uses
    slices and ufuncs with ``out=``, takes no lock, logs nothing, and allocates only small Python
    objects (views, ints). Notes are owned by the cache, so the audio thread never frees a waveform.

    ``slots`` = ``polyphony`` plus spare slots in which stolen voices fade out (a few ms) while the
    new note already plays, so stealing never cuts a waveform mid-cycle (a click).
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        polyphony: int = 32,
        channels: int = 2,
        max_block_frames: int = 1024,
        glide_frames: int | None = None,
        master: MasterBus | None = None,
    ) -> None:
        if glide_frames is None:
            glide_frames = max(1, round(DEFAULT_GLIDE_S * sample_rate))
        if polyphony < 1 or max_block_frames < 1 or glide_frames < 1:
            raise ValueError("polyphony, max_block_frames and glide_frames must be ≥ 1")
        if channels not in (1, BUS_CHANNELS):
            raise ValueError(f"the output is mono or stereo (channels 1 or 2), got {channels}")
        self.sample_rate = sample_rate
        self.polyphony = polyphony
        self.slots = voice_slots(polyphony)
        self.channels = channels
        self.commands: deque[tuple] = deque()
        self.finished: deque[int] = deque()
        # Waveforms a slot stopped referencing: the control side drops them (all but the newest,
        # which may still be in the middle of its swap), so no waveform is freed on this thread.
        self.retired: deque[np.ndarray] = deque()
        self.frames_mixed = 0
        self.voices_active = 0
        # The most voices mixed in one block since the control side last set it to 0 (read by
        # meters instead of polling voices_active from a thread, which would compete for the GIL).
        self.voices_peak = 0
        # Layer gains glide over this many frames so a knob step does not click.
        self._glide_frames = float(glide_frames)
        self._chunk = max_block_frames
        # Master gain and limiter on the mix (levels.py); None: the voices' sum as it is.
        self.master = master
        voices, layers, chunk = self.slots, MORPH_LAYERS, max_block_frames

        self._active = [False] * voices
        self._looped = [False] * voices  # the voice plays LoopedNotes (held, or released from one)
        self._serial = [0] * voices
        self._notes: list[list[np.ndarray | None]] = [[None] * voices for _ in range(layers)]
        self._ratio = np.ones((layers, voices))
        self._length = np.zeros((layers, voices))  # pcm length in frames; 0 = no note in the layer
        self._note_gain = np.zeros((layers, voices))
        # Loop of each layer in its note's frames; a layer that does not loop has end = inf (and
        # start 0, length 1, so the wrap arithmetic on it stays finite). ``_shift``: frames a
        # released looped layer plays behind its unwrapped position (whole loops it made).
        self._loop_start = np.zeros((layers, voices))
        self._loop_length = np.ones((layers, voices))
        self._loop_end = np.full((layers, voices), np.inf)
        self._shift = np.zeros((layers, voices))
        self._progress0 = np.zeros(voices)  # unbent playback position at the last bend change
        self._since_bend = np.zeros(voices)  # frames since then
        self._age = np.zeros(voices)  # frames since note-on
        self._attack = np.ones(voices)
        self._release = np.ones(voices)
        self._released_at = np.full(voices, _NEVER)
        self._amp = np.zeros(voices)  # 0 for a free slot, so stale rows mix as silence
        self._gain_from = np.zeros((layers, voices))  # each layer's gain glides from here ...
        self._gain_to = np.zeros((layers, voices))  # ... to here
        self._gain_step = np.zeros((layers, voices))  # to - from, in each mixed chunk
        self._since_glide = np.zeros((layers, voices))  # frames since each layer's glide began
        # Each voice's layers that hold a note, least recently named first (see layers_after).
        self._order: list[list[int]] = [[] for _ in range(voices)]
        self._depth = [0] * voices  # layers [0, depth) may hold a note
        self._channel = [0] * voices  # each voice's MIDI channel
        self._bend = np.ones(voices)  # each voice's bend ratio (its channel's)
        self._channel_bend = [1.0] * MIDI_CHANNELS
        # Each voice's (left, right) bus gains glide from ``_bus_from`` to ``_bus_to``.
        self._channel_gain = np.ones((MIDI_CHANNELS, BUS_CHANNELS), dtype=np.float32)
        self._bus_from = np.ones((BUS_CHANNELS, voices), dtype=np.float32)
        self._bus_to = np.ones((BUS_CHANNELS, voices), dtype=np.float32)
        self._bus_step = np.zeros((BUS_CHANNELS, voices), dtype=np.float32)  # to - from
        self._since_bus = np.full(voices, float(glide_frames))
        # Shortcuts of ``_mix_bus``: the voice's target gains are equal (centred), or both 1.
        self._balanced = [True] * voices
        self._unity = [True] * voices
        self._top = 0  # slots [0, top) hold every active voice

        self._ramp = np.arange(chunk, dtype=np.float64)
        self._frames = np.empty((voices, chunk))
        self._env = np.empty((voices, chunk))
        self._pos = np.empty((layers, voices, chunk))
        self._floor = np.empty((layers, voices, chunk))
        self._pair_index = np.empty((layers, voices, chunk, 2), dtype=np.intp)  # floor, floor+1
        self._valid = np.empty((layers, voices, chunk), dtype=bool)
        self._wrapped = np.empty((layers, voices, chunk))
        self._past_end = np.empty((layers, voices, chunk), dtype=bool)
        self._row_gain = np.empty((layers, voices, chunk))
        self._sounding = np.empty(voices, dtype=bool)  # a layer still has samples at the end
        self._pair = np.zeros((layers, voices, chunk, 2), dtype=np.int16)  # the samples there
        self._sig = np.empty((layers, voices, chunk), dtype=np.float32)
        self._voice_sig = np.empty((voices, chunk), dtype=np.float32)
        self._bus_glide = np.empty((voices, chunk))
        self._bus_voices = np.empty((BUS_CHANNELS, voices, chunk), dtype=np.float32)
        self._bus = np.empty((BUS_CHANNELS, chunk), dtype=np.float32)
        self._frame_bus = np.empty((chunk, BUS_CHANNELS), dtype=np.float32)  # the bus, per frame

    # -- control side: what ``Voices`` calls (``AudioProcess`` offers the same three) ------------

    def send(self, cmd: tuple) -> bool:
        """Queue a command for the audio side (always possible here)."""
        self.commands.append(cmd)
        return True

    def pending(self) -> int:
        """Commands queued and not applied yet."""
        return len(self.commands)

    def take_finished(self) -> list[int]:
        """Serial numbers of the voices that ended since the last call; also drops the retired
        waveforms (all but the newest, which may be mid-swap on the audio thread)."""
        while len(self.retired) > 1:
            self.retired.popleft()
        ended = []
        while self.finished:
            ended.append(self.finished.popleft())
        return ended

    def layer_notes(self, slot: int) -> tuple[np.ndarray, ...]:
        """The waveforms the voice in ``slot`` holds, least recently named first: what
        ``layers_after`` predicts from its commands (the audio process's arena relies on it)."""
        return tuple(self._notes[layer][slot] for layer in self._order[slot])

    # -- audio side -------------------------------------------------------------------------------

    def mix(self, out: np.ndarray, frames: int) -> None:
        """Fill ``out[:frames]`` ([frames, channels] float32) with the next ``frames`` frames.

        Applies queued commands at their frame stamps (``IMMEDIATE`` at once), splitting the block.
        """
        commands = self.commands
        done = 0
        while done < frames:
            now = self.frames_mixed
            while commands and commands[0][0] <= now:
                self._apply(commands.popleft())
            end = min(frames, done + self._chunk)
            if commands:
                end = min(end, done + commands[0][0] - now)
            self._mix_chunk(out[done:end], end - done)
            done = end

    # -- audio side internals ---------------------------------------------------------------------

    def _apply(self, cmd: tuple) -> None:
        op = cmd[1]
        if op == CMD_NOTE_ON:
            (
                _,
                _,
                slot,
                serial,
                note_a,
                ratio_a,
                note_b,
                ratio_b,
                weight,
                amp,
                attack,
                release,
                channel,
            ) = cmd
            self._serial[slot] = serial
            self._channel[slot] = channel
            self._bend[slot] = self._channel_bend[channel]
            self._bus_from[:, slot] = self._bus_to[:, slot] = self._channel_gain[channel]
            self._bus_step[:, slot] = 0.0
            self._set_gain_kind(slot)
            self._since_bus[slot] = self._glide_frames
            self._active[slot] = True
            self._looped[slot] = isinstance(note_a, LoopedNote)
            self._released_at[slot] = _NEVER
            self._shift[:, slot] = 0.0
            for layer in range(self._depth[slot]):
                self._set_layer(slot, layer, None, 1.0)
            self._depth[slot] = 0
            self._order[slot].clear()
            weight = weight if note_b is not None else 0.0
            for layer, note, ratio, gain in (
                (0, note_a, ratio_a, 1.0 - weight),
                (1, note_b, ratio_b, weight),
            ):
                if note is not None:
                    self._set_layer(slot, layer, note, ratio)
                    self._gain_from[layer, slot] = self._gain_to[layer, slot] = gain
                    self._order[slot].append(layer)
            self._progress0[slot] = 0.0
            self._since_bend[slot] = 0.0
            self._age[slot] = 0.0
            self._attack[slot] = attack
            self._release[slot] = release
            self._amp[slot] = amp
            self._since_glide[:, slot] = 0.0
            self._top = max(self._top, slot + 1)
        elif op == CMD_RELEASE:
            slot, serial = cmd[2], cmd[3]
            if self._active[slot] and self._serial[slot] == serial:
                self._released_at[slot] = min(self._released_at[slot], self._age[slot])
                for layer in range(self._depth[slot]):
                    self._leave_loop(layer, slot)
        elif op == CMD_MORPH:
            _, _, slot, serial, note_a, ratio_a, note_b, ratio_b, weight = cmd
            if self._active[slot] and self._serial[slot] == serial:
                self._morph(slot, note_a, ratio_a, note_b, ratio_b, weight)
        elif op == CMD_BEND:
            channel, ratio = cmd[2], cmd[3]
            self._channel_bend[channel] = ratio
            for slot in range(self._top):
                if self._active[slot] and self._channel[slot] == channel:
                    self._progress0[slot] += self._bend[slot] * self._since_bend[slot]
                    self._since_bend[slot] = 0.0
                    self._bend[slot] = ratio
        elif op == CMD_GAIN:
            channel, left, right = cmd[2], cmd[3], cmd[4]
            self._channel_gain[channel] = (left, right)
            for slot in range(self._top):
                if self._active[slot] and self._channel[slot] == channel:
                    self._bus_from[:, slot] = self._bus_now(slot)
                    self._bus_to[:, slot] = (left, right)
                    self._set_gain_kind(slot)
                    np.subtract(
                        self._bus_to[:, slot],
                        self._bus_from[:, slot],
                        out=self._bus_step[:, slot],
                    )
                    self._since_bus[slot] = 0.0
        elif op == CMD_FADE:
            slot, serial, fade = cmd[2], cmd[3], cmd[4]
            if self._active[slot] and self._serial[slot] == serial:
                # A new release ramp: from the level of the last frame played to 0 in ``fade``
                # frames, L·(1 - (k + 1)/fade) at the k-th frame from now.
                age, release = self._age[slot], self._release[slot]
                level = min(1.0, max(0.0, 1.0 - (age - self._released_at[slot]) / release))
                if level > 0.0:
                    self._release[slot] = fade / level
                    self._released_at[slot] = age - fade / level * (1.0 - level)
        elif op == CMD_SILENCE:
            channel = cmd[2]
            for slot in range(self._top):
                if self._active[slot] and channel in (ALL_CHANNELS, self._channel[slot]):
                    self._end(slot)
            while self._top and not self._active[self._top - 1]:
                self._top -= 1

    def _morph(
        self,
        slot: int,
        note_a: Note | LoopedNote,
        ratio_a: float,
        note_b: Note | LoopedNote | None,
        ratio_b: float,
        weight: float,
    ) -> None:
        """Every layer whose weight changes glides from its gain now to its new weight: the named
        notes' layers to theirs (a note no layer holds enters from silence), the others to 0. A
        layer whose weight stays goes on with its glide."""
        weight = weight if note_b is not None else 0.0
        order = self._order[slot]
        target = [0.0] * MORPH_LAYERS
        for note, ratio, gain in ((note_a, ratio_a, 1.0 - weight), (note_b, ratio_b, weight)):
            if note is None:
                continue
            layer = self._layer_of(slot, note.pcm)
            if layer is not None:
                order.remove(layer)
            else:  # an empty layer, else the least recently named one's (never this morph's)
                layer = self._depth[slot] if self._depth[slot] < MORPH_LAYERS else order.pop(0)
                self._set_layer(slot, layer, note, ratio)
            order.append(layer)
            target[layer] = gain
        for layer in range(MORPH_LAYERS):
            if target[layer] != self._gain_to[layer, slot]:
                t = min(1.0, self._since_glide[layer, slot] / self._glide_frames)
                start, end = self._gain_from[layer, slot], self._gain_to[layer, slot]
                self._gain_from[layer, slot] = start + (end - start) * t
                self._gain_to[layer, slot] = target[layer]
                self._since_glide[layer, slot] = 0.0

    def _layer_of(self, slot: int, pcm: np.ndarray) -> int | None:
        for layer in range(self._depth[slot]):
            if self._notes[layer][slot] is pcm:
                return layer
        return None

    def _set_layer(
        self, slot: int, layer: int, note: Note | LoopedNote | None, ratio: float
    ) -> None:
        # Ratios include the sample-rate conversion, so a position is in the note's own frames.
        # A released voice's new layer keeps the other layers' place past their loops (in
        # progress frames, shift / ratio is the same for every layer), in its own frames.
        if self._notes[layer][slot] is not None:  # appended before the swap: never freed here
            self.retired.append(self._notes[layer][slot])
        self._loop_start[layer, slot] = 0.0
        self._loop_length[layer, slot] = 1.0
        self._loop_end[layer, slot] = np.inf
        self._gain_from[layer, slot] = self._gain_to[layer, slot] = 0.0
        if note is None:
            self._notes[layer][slot] = None
            self._length[layer, slot] = 0.0
            self._note_gain[layer, slot] = 0.0
            self._shift[layer, slot] = 0.0
            return
        other = next(
            (
                k
                for k in range(self._depth[slot])
                if k != layer and self._notes[k][slot] is not None
            ),
            None,
        )
        behind = 0.0 if other is None else self._shift[other, slot] / self._ratio[other, slot]
        self._notes[layer][slot] = note.pcm
        self._length[layer, slot] = note.pcm.shape[0]
        self._note_gain[layer, slot] = note.gain * note.level
        self._ratio[layer, slot] = ratio * note.sample_rate / self.sample_rate
        self._shift[layer, slot] = behind * self._ratio[layer, slot]
        if isinstance(note, LoopedNote) and self._released_at[slot] >= _NEVER:
            self._loop_start[layer, slot] = note.loop_start
            self._loop_length[layer, slot] = note.loop_end - note.loop_start
            self._loop_end[layer, slot] = note.loop_end
        self._depth[slot] = max(self._depth[slot], layer + 1)

    def _leave_loop(self, layer: int, slot: int) -> None:
        """Stop wrapping this layer: it plays on from where the wrap has it now (release)."""
        end = self._loop_end[layer, slot]
        if end == np.inf:
            return
        progress = self._progress0[slot] + self._bend[slot] * self._since_bend[slot]
        position = self._ratio[layer, slot] * progress - self._shift[layer, slot]
        if position >= end:
            start, length = self._loop_start[layer, slot], self._loop_length[layer, slot]
            self._shift[layer, slot] += math.floor((position - start) / length) * length
        self._loop_start[layer, slot] = 0.0
        self._loop_length[layer, slot] = 1.0
        self._loop_end[layer, slot] = np.inf

    def _bus_now(self, slot: int) -> np.ndarray:
        """The (left, right) gains the voice played its last frame at (see ``_mix_bus``)."""
        t = min(1.0, self._since_bus[slot] / self._glide_frames)
        return self._bus_to[:, slot] - self._bus_step[:, slot] * np.float32(1.0 - t)

    def _set_gain_kind(self, slot: int) -> None:
        left, right = self._bus_to[:, slot]
        self._balanced[slot] = left == right
        self._unity[slot] = left == right == 1.0

    def _end(self, slot: int) -> None:
        self._balanced[slot] = self._unity[slot] = True  # its row mixes as zeros from now on
        self._active[slot] = False
        self._looped[slot] = False
        self._amp[slot] = 0.0
        self.finished.append(self._serial[slot])

    def _mix_chunk(self, out: np.ndarray, n: int) -> None:
        top = self._top
        if top == 0:
            self._bus[:, :n].fill(0.0)  # the limiter's delay line still plays out
            self._master(out, n)
            self.frames_mixed += n
            self.voices_active = 0
            return
        # Only the layers some voice holds a note in are computed (one without a morph). Any
        # number gives bit-identical samples (a silent layer adds exact zeros), so the choice
        # never depends on where a block starts.
        layers = 1
        looped = False
        for slot in range(top):
            if self._active[slot]:
                looped = looped or self._looped[slot]
                layers = max(layers, self._depth[slot])
        ramp = self._ramp[:n]
        frames = self._frames[:top, :n]
        env = self._env[:top, :n]
        pos = self._pos[:layers, :top, :n]
        floor = self._floor[:layers, :top, :n]
        pair_index = self._pair_index[:layers, :top, :n]
        pair = self._pair[:layers, :top, :n]
        left, right = pair[..., 0], pair[..., 1]
        valid = self._valid[:layers, :top, :n]
        sig = self._sig[:layers, :top, :n]

        # Playback position of each layer: ratio * (progress0 + bend * (frames since bend change)).
        np.add(self._since_bend[:top, None], ramp, out=frames)
        np.multiply(frames, self._bend[:top, None], out=frames)
        np.add(frames, self._progress0[:top, None], out=frames)
        np.multiply(frames, self._ratio[:layers, :top, None], out=pos)
        if looped:  # wrap held looped layers within their loop; released ones play on, shifted
            wrapped = self._wrapped[:layers, :top, :n]
            past_end = self._past_end[:layers, :top, :n]
            start = self._loop_start[:layers, :top, None]
            np.subtract(pos, self._shift[:layers, :top, None], out=pos)
            np.greater_equal(pos, self._loop_end[:layers, :top, None], out=past_end)
            np.subtract(pos, start, out=wrapped)
            np.remainder(wrapped, self._loop_length[:layers, :top, None], out=wrapped)
            np.add(wrapped, start, out=wrapped)
            np.copyto(pos, wrapped, where=past_end)
        np.less(pos, self._length[:layers, :top, None], out=valid)
        np.floor(pos, out=floor)
        np.copyto(pair_index[..., 0], floor, casting="unsafe")
        np.add(pair_index[..., 0], 1, out=pair_index[..., 1])
        np.subtract(pos, floor, out=pos)  # pos now holds the interpolation fraction

        # Linear interpolation of the int16 waveforms; rows of free slots mix as silence (amp 0).
        gain_from, gain_to = self._gain_from, self._gain_to
        for layer in range(layers):
            notes = self._notes[layer]
            for slot in range(top):
                pcm = notes[slot]
                if pcm is None or not self._active[slot]:
                    continue
                if gain_from[layer, slot] == 0.0 and gain_to[layer, slot] == 0.0:
                    continue  # silent for the whole chunk: its samples are multiplied by 0
                pcm.take(pair_index[layer, slot], out=pair[layer, slot], mode="clip")
        np.subtract(right, left, out=sig, dtype=np.float32)
        np.multiply(sig, pos, out=sig, casting="same_kind")
        np.add(sig, left, out=sig, dtype=np.float32)
        np.multiply(sig, valid, out=sig)
        # Each layer's gain glides linearly from gain_from to gain_to over the glide.
        row_gain = self._row_gain[:layers, :top, :n]
        np.add(self._since_glide[:layers, :top, None], ramp, out=row_gain)
        np.add(row_gain, 1.0, out=row_gain)
        np.multiply(row_gain, 1.0 / self._glide_frames, out=row_gain)
        np.minimum(row_gain, 1.0, out=row_gain)
        gain_step = self._gain_step[:layers, :top]
        np.subtract(gain_to[:layers, :top], gain_from[:layers, :top], out=gain_step)
        np.multiply(row_gain, gain_step[:, :, None], out=row_gain)
        np.add(row_gain, gain_from[:layers, :top, None], out=row_gain)
        np.multiply(row_gain, self._note_gain[:layers, :top, None], out=row_gain)
        np.multiply(sig, row_gain, out=sig, casting="same_kind")
        if layers == 1:
            voice_sig = sig[0]
        else:
            voice_sig = self._voice_sig[:top, :n]
            np.sum(sig, axis=0, out=voice_sig)

        # Envelope: attack ramp times release ramp, times the voice's amplitude.
        np.add(self._age[:top, None], ramp, out=frames)
        np.add(frames, 1.0, out=frames)
        np.divide(frames, self._attack[:top, None], out=env)
        np.minimum(env, 1.0, out=env)
        np.subtract(frames, self._released_at[:top, None], out=frames)
        np.divide(frames, self._release[:top, None], out=frames)
        np.subtract(1.0, frames, out=frames)
        np.clip(frames, 0.0, 1.0, out=frames)
        np.multiply(env, frames, out=env)
        np.multiply(env, self._amp[:top, None], out=env)
        np.multiply(voice_sig, env, out=voice_sig, casting="same_kind")
        self._mix_bus(voice_sig, top, n)
        self._master(out, n)

        self._since_bend[:top] += n
        self._age[:top] += n
        self._since_glide[:, :top] += n
        self._since_bus[:top] += n
        self.frames_mixed += n
        sounding = self._sounding[:top]
        np.any(valid[:, :, n - 1], axis=0, out=sounding)
        active = 0
        for slot in range(top):
            if not self._active[slot]:
                continue
            over = self._age[slot] - self._released_at[slot] >= self._release[slot]
            if over or not sounding[slot]:
                self._end(slot)
            else:
                active += 1
        while self._top and not self._active[self._top - 1]:
            self._top -= 1
        self.voices_active = active
        if active > self.voices_peak:
            self.voices_peak = active

    def _mix_bus(self, voice_sig: np.ndarray, top: int, n: int) -> None:
        """Sum the voices into the stereo bus, each at its channel's gains. A gliding voice's
        gain is ``to - (to - from) * (1 - t)``: exactly ``to`` once the glide is over, so the
        settled paths (one gain per voice; left = right when every voice is centred; no gain at
        all when every voice plays at 1, as on a single channel at its defaults) give the same
        samples, so which one runs never depends on where a block starts."""
        bus_voices = self._bus_voices[:, :top, :n]
        bus = self._bus[:, :n]
        gliding = self._since_bus[:top].min() + 1.0 < self._glide_frames
        if not gliding and all(self._balanced[:top]):
            if all(self._unity[:top]):
                np.sum(voice_sig, axis=0, out=bus[0])
            else:
                np.multiply(voice_sig, self._bus_to[0, :top, None], out=bus_voices[0])
                np.sum(bus_voices[0], axis=0, out=bus[0])
            np.copyto(bus[1], bus[0])
            return
        if gliding:
            glide = self._bus_glide[:top, :n]
            np.add(self._since_bus[:top, None], self._ramp[:n], out=glide)
            np.add(glide, 1.0, out=glide)
            np.multiply(glide, 1.0 / self._glide_frames, out=glide)
            np.minimum(glide, 1.0, out=glide)
            np.subtract(1.0, glide, out=glide)
            np.multiply(glide, self._bus_step[:, :top, None], out=bus_voices, casting="same_kind")
            np.subtract(self._bus_to[:, :top, None], bus_voices, out=bus_voices)
            np.multiply(bus_voices, voice_sig, out=bus_voices)
        else:
            np.multiply(voice_sig, self._bus_to[:, :top, None], out=bus_voices)
        np.sum(bus_voices, axis=1, out=bus)

    def _master(self, out: np.ndarray, n: int) -> None:
        """The stereo bus → the output buffer: the one master stage. Master gain and limiter
        (``self.master``) act on the stereo bus, linked across left and right, before a mono
        output takes the mean of the two."""
        bus = self._bus[:, :n]
        if self.master is not None:
            frame_bus = self._frame_bus[:n]
            np.copyto(frame_bus, bus.T)
            self.master.process(frame_bus)
            bus = frame_bus.T
        if self.channels == BUS_CHANNELS:
            np.copyto(out, bus.T)
        else:
            np.add(bus[0], bus[1], out=out[:, 0])
            np.multiply(out[:, 0], 0.5, out=out[:, 0])
