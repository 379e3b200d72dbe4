"""The voice engine: control-side voice allocation (``Voices``) and the render-side ``Mixer``.

The two halves share nothing but two queues, as FluidSynth's rvoice queue does: ``Voices``
(control side, MIDI thread) sends commands (``Mixer.commands``); ``Mixer.render`` (audio thread)
is their only consumer and queues the serial numbers of voices that ended (``Mixer.finished``).
In live play the render side runs in a process of its own (``audio_process.py``), which carries
the same commands over a pipe.
The control side keeps a shadow of every slot's state and decides stealing, the pedal and releases;
the render side only obeys.

A voice plays up to ``MORPH_LAYERS`` cache Notes from the same playback position, each at its own
pitch ratio (1.0 for the exact pitch, 2^(semitones/12) for the nearest-pitch fallback), times the
global pitch-bend ratio, and each at its own gain. A note-on or a morph names one or two notes
and their weights (a crossfade between neighbouring morph steps); every layer's gain then glides
linearly from where it is to its new weight (0 for a note no longer named) over the glide. So a
knob that crosses a step, from steps (A, B) to (B, C), fades A out while C fades in, instead of
swapping the pair at once (a discontinuity: a click). A named note that no layer holds takes the
layer whose note was named least recently (``Voices``' mirror of the arena follows the same
rule). Notes play their length once and end, unless the voice loops (a preset's ``loop: true``).

Looping: ``loop_note`` rearranges a cached note, on the control side and once per note, as
``note[:e] + seam + note[e:]``. The seam is ``note[s:e]`` (s = 1/4 of the note, e ≈ 3/4, moved by
up to a pitch period to where the two regions line up best) whose first ``crossfade`` frames fade
from ``note[e:]`` into ``note[s:]``. The seam starts where ``note[:e]`` stops and ends where
``note[e:]`` starts, so playing on from either end of it is seamless, and so is jumping from its
end back to its start. A held looping voice wraps its read position within the seam; a release
(note-off, pedal up) stops the wrapping, so the voice plays on through the rest of the seam and the
note's own tail while its release envelope runs. The audio thread only wraps a position.

Envelope of a voice, in output frames ``f`` since its note-on (``A`` attack frames, ``R`` release
frames, ``f_rel`` the frame its release began)::

    attack(f)  = min(1, (f + 1) / A)
    release(f) = clip(1 - (f - f_rel + 1) / R, 0, 1)     (1 before the release)
    env(f)     = attack(f) * release(f)

Every per-sample quantity is an elementwise function of integer frame counts, so the output does
not depend on how the audio is cut into blocks; a command's frame stamp is the exact frame it acts.
"""

from __future__ import annotations

import math
import weakref
from collections import deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from gansynth_instrument.cache import Note

IMMEDIATE = -1
"""Frame stamp of a command that applies at the start of the next rendered block (live play)."""

# Commands are tuples (frame, opcode, fields...), the protocol between Voices and any Mixer
# (``audio_process.py`` carries them to another process). Fields per opcode:
#   CMD_NOTE_ON  slot, serial, note_a, ratio_a, note_b, ratio_b, weight, amp, attack, release
#                (attack and release in frames; weight is note_b's share)
#   CMD_RELEASE  slot, serial
#   CMD_MORPH    slot, serial, note_a, ratio_a, note_b, ratio_b, weight (glide to these notes)
#   CMD_BEND     bend ratio (every voice, sounding and future)
#   CMD_SILENCE  none: every voice stops at once
#   CMD_FADE     slot, serial, fade frames: a stolen voice fades out from its current level
CMD_NOTE_ON, CMD_RELEASE, CMD_MORPH, CMD_BEND, CMD_SILENCE, CMD_FADE = range(6)
NOTE_FIELDS = (4, 6)  # where CMD_NOTE_ON and CMD_MORPH carry their notes (note_a, note_b)

_NEVER = 1e18  # "released at" frame of a voice that is still held
# Notes a voice can hold: a morph step pair gliding in while the previous pair glides out.
MORPH_LAYERS = 4
DEFAULT_GLIDE_S = 0.01

# Loop region as fractions of the note (1.0 s → 3.0 s of a 4 s note): past the attack, and before
# the end, so a released voice still has a second of the note's own tail to play on into.
LOOP_START = 0.25
LOOP_END = 0.75
LOOP_CROSSFADE_S = 0.1  # long enough to hide a level step, short enough not to smear a decay


@dataclass(frozen=True, eq=False)
class LoopedNote:
    """A note laid out for a crossfaded loop (``loop_note``): frames ``[loop_start, loop_end)`` of
    ``pcm`` repeat seamlessly while the voice is held. Same fields as a cache ``Note`` otherwise."""

    pcm: np.ndarray  # int16 mono at sample_rate, read-only
    gain: float
    pitch: int
    sample_rate: int
    loop_start: int
    loop_end: int


def loop_note(note: Note, crossfade_s: float = LOOP_CROSSFADE_S) -> LoopedNote:
    """``note`` rearranged for looping (see the module docstring); allocates: control side only.

    The loop end is moved by up to one pitch period (``note.pitch``) to where the audio after it
    best matches the audio after the loop start, so the crossfade joins similar waveforms.
    """
    pcm = note.pcm
    frames = len(pcm)
    start = round(LOOP_START * frames)
    fade = max(1, min(round(crossfade_s * note.sample_rate), (frames - start) // 8))
    period = note.sample_rate / (440.0 * 2.0 ** ((note.pitch - 69) / 12.0))
    reach = max(0, min(math.ceil(period), fade, frames - round(LOOP_END * frames) - fade))
    nominal = round(LOOP_END * frames)
    end = _best_end(pcm, start, nominal - reach, 2 * reach + 1, fade)
    # seam[i] for i < fade: (1 - w) note[end + i] + w note[start + i]; then note[start + i].
    w = np.arange(1, fade + 1, dtype=np.float64) / (fade + 1)
    blend = (1.0 - w) * pcm[end : end + fade] + w * pcm[start : start + fade]
    seam = np.concatenate([np.round(blend).astype(np.int16), pcm[start + fade : end]])
    out = np.concatenate([pcm[:end], seam, pcm[end:]])
    out.flags.writeable = False
    return LoopedNote(out, note.gain, note.pitch, note.sample_rate, end, end + len(seam))


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


def looped_frames_bound(frames: int) -> int:
    """At most how many frames ``loop_note`` makes of a note of ``frames`` frames: the note plus
    its seam, which spans half the note plus at most one crossfade (an eighth of the rest)."""
    return frames + frames // 2 + frames // 8 + 2


def _best_end(pcm: np.ndarray, start: int, first: int, count: int, width: int) -> int:
    """Which of the ``count`` frames from ``first`` on is followed by the audio most like
    ``pcm[start : start + width]`` (largest dot product, computed by FFT)."""
    target = pcm[start : start + width].astype(np.float64)
    search = pcm[first : first + count - 1 + width].astype(np.float64)
    size = 1 << (len(search) + width - 1).bit_length()
    spectrum = np.fft.rfft(search, size) * np.conj(np.fft.rfft(target, size))
    dots = np.fft.irfft(spectrum, size)[:count]
    return first + int(np.argmax(dots))


@dataclass(frozen=True)
class Layer:
    """One note a voice plays and its pitch ratio (playback rate before bend, 1.0 = as cached)."""

    note: Note | LoopedNote
    pitch_ratio: float = 1.0


def pitch_ratio(semitones: float) -> float:
    """Playback-rate ratio that shifts pitch by ``semitones`` (equal temperament)."""
    return 2.0 ** (semitones / 12.0)


def voice_slots(polyphony: int) -> int:
    """A Mixer's slots for ``polyphony`` voices: spares let stolen voices fade out (see Mixer)."""
    return polyphony + max(2, polyphony // 4)


class Mixer:
    """Render side: fixed voice slots mixed into a caller's buffer; see the module docstring.

    Everything is allocated here, before the stream starts. ``render`` is real-time safe: it uses
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
    ) -> None:
        if glide_frames is None:
            glide_frames = max(1, round(DEFAULT_GLIDE_S * sample_rate))
        if polyphony < 1 or channels < 1 or max_block_frames < 1 or glide_frames < 1:
            raise ValueError("polyphony, channels, max_block_frames and glide_frames must be ≥ 1")
        self.sample_rate = sample_rate
        self.polyphony = polyphony
        self.slots = voice_slots(polyphony)
        self.channels = channels
        self.commands: deque[tuple] = deque()
        self.finished: deque[int] = deque()
        # Waveforms a slot stopped referencing: the control side drops them (all but the newest,
        # which may still be in the middle of its swap), so no waveform is freed on this thread.
        self.retired: deque[np.ndarray] = deque()
        self.frames_rendered = 0
        self.voices_active = 0
        # The most voices mixed in one block since the control side last set it to 0 (read by
        # meters instead of polling voices_active from a thread, which would compete for the GIL).
        self.voices_peak = 0
        # Layer gains glide over this many frames so a knob step does not click.
        self._glide_frames = float(glide_frames)
        self._chunk = max_block_frames
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
        self._since_glide = np.zeros(voices)
        # Each voice's layers that hold a note, least recently named first (see layers_after).
        self._order: list[list[int]] = [[] for _ in range(voices)]
        self._depth = [0] * voices  # layers [0, depth) may hold a note
        self._bend = 1.0
        self._top = 0  # slots [0, top) hold every active voice

        self._ramp = np.arange(chunk, dtype=np.float64)
        self._frames = np.empty((voices, chunk))
        self._env = np.empty((voices, chunk))
        self._weight = np.empty((voices, chunk))
        self._pos = np.empty((layers, voices, chunk))
        self._floor = np.empty((layers, voices, chunk))
        self._pair_index = np.empty((layers, voices, chunk, 2), dtype=np.intp)  # floor, floor+1
        self._valid = np.empty((layers, voices, chunk), dtype=bool)
        self._wrapped = np.empty((layers, voices, chunk))
        self._past_end = np.empty((layers, voices, chunk), dtype=bool)
        self._row_gain = np.empty((layers, voices, chunk))
        self._pair = np.zeros((layers, voices, chunk, 2), dtype=np.int16)  # the samples there
        self._sig = np.empty((layers, voices, chunk), dtype=np.float32)
        self._voice_sig = np.empty((voices, chunk), dtype=np.float32)
        self._mix = np.empty((chunk, 1), dtype=np.float32)

    # -- control side: what ``Voices`` calls (``AudioProcess`` offers the same three) ------------

    def send(self, cmd: tuple) -> bool:
        """Queue a command for the render side (always possible here)."""
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

    # -- render side -------------------------------------------------------------------------------

    def render(self, out: np.ndarray, frames: int) -> None:
        """Fill ``out[:frames]`` ([frames, channels] float32) with the next ``frames`` frames.

        Applies queued commands at their frame stamps (``IMMEDIATE`` at once), splitting the block.
        """
        commands = self.commands
        done = 0
        while done < frames:
            now = self.frames_rendered
            while commands and commands[0][0] <= now:
                self._apply(commands.popleft())
            end = min(frames, done + self._chunk)
            if commands:
                end = min(end, done + commands[0][0] - now)
            self._render_chunk(out[done:end], end - done)
            done = end

    # -- render side internals ---------------------------------------------------------------------

    def _apply(self, cmd: tuple) -> None:
        op = cmd[1]
        if op == CMD_NOTE_ON:
            _, _, slot, serial, note_a, ratio_a, note_b, ratio_b, weight, amp, attack, release = cmd
            self._serial[slot] = serial
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
            self._since_glide[slot] = 0.0
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
            self._progress0 += self._bend * self._since_bend
            self._since_bend[:] = 0.0
            self._bend = cmd[2]
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
            for slot in range(self._top):
                if self._active[slot]:
                    self._end(slot)
            self._top = 0

    def _morph(
        self,
        slot: int,
        note_a: Note | LoopedNote,
        ratio_a: float,
        note_b: Note | LoopedNote | None,
        ratio_b: float,
        weight: float,
    ) -> None:
        """Every layer glides from its gain now to its new weight: the named notes' layers to
        theirs (a note no layer holds enters from silence), the others to 0."""
        t = min(1.0, self._since_glide[slot] / self._glide_frames)
        now = self._gain_from[:, slot] + (self._gain_to[:, slot] - self._gain_from[:, slot]) * t
        self._gain_from[:, slot] = now
        self._gain_to[:, slot] = 0.0
        self._since_glide[slot] = 0.0
        weight = weight if note_b is not None else 0.0
        order = self._order[slot]
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
            self._gain_to[layer, slot] = gain

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
        self._note_gain[layer, slot] = note.gain
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
        progress = self._progress0[slot] + self._bend * self._since_bend[slot]
        position = self._ratio[layer, slot] * progress - self._shift[layer, slot]
        if position >= end:
            start, length = self._loop_start[layer, slot], self._loop_length[layer, slot]
            self._shift[layer, slot] += math.floor((position - start) / length) * length
        self._loop_start[layer, slot] = 0.0
        self._loop_length[layer, slot] = 1.0
        self._loop_end[layer, slot] = np.inf

    def _end(self, slot: int) -> None:
        self._active[slot] = False
        self._looped[slot] = False
        self._amp[slot] = 0.0
        self.finished.append(self._serial[slot])

    def _render_chunk(self, out: np.ndarray, n: int) -> None:
        top = self._top
        if top == 0:
            out.fill(0.0)
            self.frames_rendered += n
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
        mix = self._mix[:n]

        # Playback position of each layer: ratio * (progress0 + bend * (frames since bend change)).
        np.add(self._since_bend[:top, None], ramp, out=frames)
        np.multiply(frames, self._bend, out=frames)
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
                np.take(pcm, pair_index[layer, slot], out=pair[layer, slot], mode="clip")
        np.subtract(right, left, out=sig, dtype=np.float32)
        np.multiply(sig, pos, out=sig, casting="same_kind")
        np.add(sig, left, out=sig, dtype=np.float32)
        np.multiply(sig, valid, out=sig)
        # Each layer's gain glides linearly from gain_from to gain_to over the glide.
        glide = self._weight[:top, :n]
        row_gain = self._row_gain[:layers, :top, :n]
        np.add(self._since_glide[:top, None], ramp, out=glide)
        np.add(glide, 1.0, out=glide)
        np.multiply(glide, 1.0 / self._glide_frames, out=glide)
        np.minimum(glide, 1.0, out=glide)
        np.multiply(glide, (gain_to - gain_from)[:layers, :top, None], out=row_gain)
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
        np.sum(voice_sig, axis=0, out=mix[:, 0])
        np.copyto(out, mix)

        self._since_bend[:top] += n
        self._age[:top] += n
        self._since_glide[:top] += n
        self.frames_rendered += n
        last = n - 1
        active = 0
        for slot in range(top):
            if not self._active[slot]:
                continue
            over = self._age[slot] - self._released_at[slot] >= self._release[slot]
            if over or not valid[:, slot, last].any():
                self._end(slot)
            else:
                active += 1
        while self._top and not self._active[self._top - 1]:
            self._top -= 1
        self.voices_active = active
        if active > self.voices_peak:
            self.voices_peak = active


class MixerLink(Protocol):
    """What ``Voices`` needs of a render side: a ``Mixer`` in this process, or an
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


class Voices:
    """Control side of the voice engine: allocation, stealing, sustain pedal, bend, morph updates.

    At most ``mixer.polyphony`` voices sound (release tails included). Past that, a note-on steals:
    the oldest released voice (its tail is the least audible), else the oldest pedal-sustained
    one, else the oldest held one; the victim fades out over ``steal_fade_s`` in one of the
    Mixer's spare slots while the new note starts. A retriggered key releases its old voice
    first (FluidSynth's convention). Commands go to the Mixer through its deque; when it holds
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
        self.pedal_down = False
        self.polyphony = mixer.polyphony
        self._fade_frames = max(1, round(steal_fade_s * mixer.sample_rate))
        self._slots = [_Slot() for _ in range(mixer.slots)]
        self._by_serial: dict[int, int] = {}
        self._serials = 0
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
        frame: int = IMMEDIATE,
    ) -> int | None:
        """Start a voice for ``key`` (e.g. a MIDI pitch); its slot, or None if the queue is full.

        ``weight`` is layer_b's share of a morph crossfade (0 = only layer_a). ``loop``: while held
        the voice loops the middle of its notes (see the module docstring) instead of ending.
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
        cmd += (note_b, ratio_b, float(weight), float(amp), attack_frames, release_frames)
        if not self._send(cmd):
            return None
        old = self._slots[slot]
        if old.sounding:
            self._by_serial.pop(old.serial, None)
        self._slots[slot] = _Slot(key, self._serials, self._serials, True, False, True, loop=loop)
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
                if self.pedal_down:
                    s.held, s.sustained = False, True
                else:
                    self._release_slot(slot, frame)

    def sustain(self, down: bool, frame: int = IMMEDIATE) -> None:
        """Sustain pedal (CC64): lifting it releases every voice whose key is already up."""
        self._collect_finished()
        self.pedal_down = down
        if not down:
            for slot, s in enumerate(self._slots):
                if s.sounding and s.sustained:
                    self._release_slot(slot, frame)

    def all_notes_off(self, frame: int = IMMEDIATE) -> None:
        """CC123: release every held or sustained voice (release tails still sound)."""
        self._collect_finished()
        for slot, s in enumerate(self._slots):
            if s.sounding and (s.held or s.sustained):
                self._release_slot(slot, frame)

    def all_sound_off(self, frame: int = IMMEDIATE) -> None:
        """CC120: silence every voice at once, tails included."""
        if self._send((frame, CMD_SILENCE)):
            self._slots = [_Slot() for _ in self._slots]
            self._by_serial.clear()

    def bend(self, semitones: float, frame: int = IMMEDIATE) -> None:
        """Pitch-bend every voice, sounding and future, by ``semitones``."""
        self._send((frame, CMD_BEND, pitch_ratio(semitones)))

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


__all__ = [
    "CMD_BEND",
    "CMD_FADE",
    "CMD_MORPH",
    "CMD_NOTE_ON",
    "CMD_RELEASE",
    "CMD_SILENCE",
    "IMMEDIATE",
    "NOTE_FIELDS",
    "Layer",
    "LoopedNote",
    "Mixer",
    "MixerLink",
    "Voices",
    "layers_after",
    "loop_note",
    "looped_frames_bound",
    "pitch_ratio",
    "voice_slots",
]
