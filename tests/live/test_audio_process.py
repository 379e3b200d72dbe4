"""audio_process.py on the JACK dummy server: the mixer in its own process plays what ``Voices``
sends, note waveforms cross through the shared arena without a sounding one ever being
overwritten, and a dead or missing audio process is reported, not hung on."""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jackrig import JackServer, Recorder

from gansynth_instrument.errors import DeviceError
from gansynth_instrument.live.audio_mix import ChildConfig, RingReader, SharedLayout, mix_function
from gansynth_instrument.live.audio_process import JACK_CLIENT_NAME, AudioProcess
from gansynth_instrument.live.command_sender import CommandSender
from gansynth_instrument.live.compiled_mixer import RING_RECORDS, load_core
from gansynth_instrument.live.mixer import CMD_NOTE_ON, IMMEDIATE, MORPH_LAYERS, Mixer, voice_slots
from gansynth_instrument.live.protocol import (
    OP_LOAD,
    RECORD,
    STATUS_LIMITED,
    WRITE,
    Ring,
    to_record,
)
from gansynth_instrument.live.voices import Layer, Voices
from gansynth_instrument.notes.levels import MasterBus
from gansynth_instrument.notes.note import LoopedNote, Note

RATE = 48000
NOTE_FRAMES = RATE  # 1 s notes


def tone(freq: float, frames: int = NOTE_FRAMES, peak: int = 20000) -> Note:
    pcm = np.round(peak * np.sin(2 * np.pi * freq * np.arange(frames) / RATE)).astype(np.int16)
    pcm.flags.writeable = False
    return Note(pcm=pcm, gain=0.5 / 32767, pitch=69, sample_rate=RATE, peak=0.0)  # played as given


def looped(note: Note) -> LoopedNote:
    """The whole note as its loop: a held voice plays it for ever (its frequency fits exactly)."""
    return LoopedNote(note.pcm, note.gain, note.pitch, RATE, 0, len(note.pcm))


def dominant_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum)) * RATE / len(audio)


def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_voices_sent_to_the_audio_process_sound_and_end(jack_server: JackServer) -> None:
    with AudioProcess(note_frames=NOTE_FRAMES, sample_rate=RATE, polyphony=4) as audio:
        assert audio.device.host_api == "JACK Audio Connection Kit"
        voices = Voices(audio)
        with Recorder(seconds=0.3) as recorder:
            assert all(p.startswith(JACK_CLIENT_NAME) for p in recorder.sources)
            voices.note_on("a", Layer(tone(600.0)), attack_s=0.001)
            captured = recorder.wait(timeout_s=10.0).copy()
        assert dominant_hz(captured[-RATE // 10 :, 0]) == pytest.approx(600.0, abs=10.0)
        assert np.abs(captured[-RATE // 10 :, 0]).max() == pytest.approx(0.5 * 20000 / 32767, 0.05)
        voices.note_off("a")
        wait_until(lambda: audio.voices_active == 0)
        assert voices.in_use() == 0 and audio.pending() == 0
        assert audio.stats().callbacks > 0 and audio.voices_peak == 1
        assert audio.limited_frames == 0  # one note at -4 dBFS: the limiter idles
        # Commands without a slot (bend, all sound off) pass through as well.
        voices.bend(1.0)
        voices.all_sound_off()
        assert voices.dropped == 0


def arena_mapping(pid: int) -> tuple[int, int, list[str]]:
    """Size and resident KiB of the shared file's mapping in process ``pid``, and its flags."""
    lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "/memfd:gansynth-audio" in line)
    fields = {}
    for line in lines[start + 1 :]:
        key, _, value = line.partition(":")
        fields[key] = value.split()
        if key == "VmFlags":
            break
    return int(fields["Size"][0]), int(fields["Rss"][0]), fields["VmFlags"]


def may_lock_memory() -> bool:
    """Whether this system lets a process lock all its memory (root, or no ``ulimit -l``)."""
    limit = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    return os.geteuid() == 0 or limit == resource.RLIM_INFINITY


def test_the_audio_process_is_settled_for_its_real_time_callback(jack_server: JackServer) -> None:
    """Once set up, the child runs no garbage collection (collector off, everything frozen), its
    note arena is resident in both processes before any note arrives (no page fault when a
    note is copied in or read by the callback), and its memory is locked where the system
    allows it (else the reason is given)."""
    with AudioProcess(note_frames=NOTE_FRAMES, sample_rate=RATE, polyphony=4) as audio:
        settled = audio.settled
        assert not settled.collector_on and settled.frozen_objects > 10_000
        for pid in (os.getpid(), audio.pid):
            size, resident, _ = arena_mapping(pid)
            assert size >= NOTE_FRAMES * 2 * 12 // 1024 and resident == size, (pid, size, resident)
        if may_lock_memory():
            assert settled.memory_locked and "lo" in arena_mapping(audio.pid)[2]
            vm_locked = Path(f"/proc/{audio.pid}/status").read_text().split("VmLck:")[1]
            assert int(vm_locked.split()[0]) > size
        else:
            assert not settled.memory_locked and settled.why_not_locked.startswith("mlockall")


def test_the_status_row_counts_the_frames_the_limiter_turned_down(
    jack_server: JackServer,
) -> None:
    """A note at +12 dB master gain (about +1.6 dBFS) through the live child: the limiter acts,
    and the frames it turned down reach the player's side."""
    with AudioProcess(note_frames=NOTE_FRAMES, sample_rate=RATE, gain_db=12.0) as audio:
        voices = Voices(audio)
        voices.note_on("a", Layer(looped(tone(600.0))), loop=True, attack_s=0.001)
        wait_until(lambda: audio.limited_frames > RATE // 10)
        with Recorder(seconds=0.2) as recorder:
            captured = recorder.wait(timeout_s=10.0).copy()
        assert np.abs(captured).max() <= 10 ** (-1 / 20) + 1e-6  # the limit, -1 dBFS
        voices.all_sound_off()


def test_a_sounding_note_is_never_overwritten_while_others_come_and_go(
    jack_server: JackServer,
) -> None:
    # The smallest arena (no spare entries): 70 short notes pass through its 12 entries around
    # one held voice; if its entry were reused, the held voice would change pitch.
    with AudioProcess(
        note_frames=NOTE_FRAMES, sample_rate=RATE, polyphony=4, arena_spare=0
    ) as audio:
        voices = Voices(audio)
        voices.note_on("held", Layer(looped(tone(500.0))), attack_s=0.001)
        for i in range(70):
            short = tone(900.0 + 10 * i, frames=RATE // 50)
            assert voices.note_on(i, Layer(short), attack_s=0.001) is not None
            voices.note_off(i)  # released voices are stolen first, never the held one
            time.sleep(0.03)  # each short note (20 ms) ends before the next
        assert voices.dropped == 0
        wait_until(lambda: audio.voices_active == 1)
        with Recorder(seconds=0.3) as recorder:
            captured = recorder.wait(timeout_s=10.0).copy()
        assert dominant_hz(captured[:, 0]) == pytest.approx(500.0, abs=10.0)


def test_a_full_arena_drops_the_note_instead_of_overwriting_one(jack_server: JackServer) -> None:
    # Not started: the child applies nothing, so every note sent stays in flight and holds its
    # entry. Past the last entry, a note-on is dropped and counted.
    audio = AudioProcess(note_frames=NOTE_FRAMES, sample_rate=RATE, polyphony=2, arena_spare=0)
    audio.open()
    try:
        voices = Voices(audio)
        notes = [tone(300.0 + i) for i in range(MORPH_LAYERS * audio.slots)]
        for i, note in enumerate(notes):
            assert voices.note_on(i, Layer(note)) is not None
        assert voices.note_on("one more", Layer(tone(2000.0))) is None
        assert voices.dropped == 1
        # A waveform already in the arena needs no new entry.
        assert voices.note_on("again", Layer(notes[0])) is not None
    finally:
        audio.close()


def test_garbage_in_the_command_ring_is_dropped_counted_and_the_note_plays_on(
    jack_server: JackServer,
) -> None:
    """Malformed records written into the live ring (random bytes, a load past its arena entry,
    a note naming an entry never loaded, two published before they were written): the child
    drops and counts each, keeps playing the sounding note, and reports which mixer it runs."""
    with AudioProcess(note_frames=NOTE_FRAMES, sample_rate=RATE, polyphony=4) as audio:
        # The child loads the compiled core where this process can (CI requires it).
        assert audio.mixer == ("compiled" if load_core()[0] is not None else "numpy")
        voices = Voices(audio)
        voices.note_on("a", Layer(looped(tone(600.0))), loop=True, attack_s=0.001)
        wait_until(lambda: audio.voices_active == 1)
        ring = audio._sender._ring
        garbage = np.frombuffer(os.urandom(RECORD.itemsize * 4), RECORD).copy()
        garbage["op"] = 1000 + np.arange(4)
        bad = [
            *garbage.tolist(),
            to_record((IMMEDIATE, OP_LOAD, 5, 10**12, 1.0, 60, RATE, 0, 0)),
            to_record((IMMEDIATE, CMD_NOTE_ON, 3, 9, 150, 1.0, None, 1.0, 0.0, 1.0, 1, 1, 0)),
        ]
        for values in bad:
            assert ring.put(values)
        ring._counts[WRITE] += 2  # two records published before they were written
        wait_until(lambda: ring.dropped == len(bad) + 2)
        with Recorder(seconds=0.2) as recorder:
            captured = recorder.wait(timeout_s=10.0).copy()
        assert dominant_hz(captured[:, 0]) == pytest.approx(600.0, abs=10.0)
        assert audio.voices_active == 1 and audio.pending() == 0
        ring = None  # no view of the shared memory left: it closes with the process


def test_a_killed_audio_process_is_reported_and_closes_without_hanging(
    jack_server: JackServer,
) -> None:
    audio = AudioProcess(note_frames=NOTE_FRAMES, sample_rate=RATE)
    audio.open()
    audio.start()
    wait_until(lambda: audio.stats().callbacks > 10)
    assert audio.active and not audio.server_lost
    [child] = multiprocessing.active_children()  # the audio process
    os.kill(child.pid, signal.SIGKILL)
    wait_until(lambda: not audio.active)
    assert audio.server_lost
    started = time.monotonic()
    audio.stop()
    audio.close()
    assert time.monotonic() - started < 5.0
    assert audio.stats().callbacks > 10  # the last figures stay readable


def test_an_unknown_device_is_one_line_and_leaves_no_process(jack_server: JackServer) -> None:
    audio = AudioProcess(note_frames=NOTE_FRAMES, device="no-such-sound-card")
    with pytest.raises(DeviceError) as err:
        audio.open()
    assert "\n" not in str(err.value) and "'no-such-sound-card'" in str(err.value)
    assert multiprocessing.active_children() == []  # the child that failed has exited
    audio.close()


class Link:
    """``CommandSender`` as the ``MixerLink`` ``Voices`` sends to (``AudioProcess`` does this)."""

    sample_rate, polyphony, slots = RATE, 2, voice_slots(2)

    def __init__(self, sender: CommandSender) -> None:
        self.send, self.pending = sender.send, sender.pending
        self.take_finished = sender.take_finished


def child_side(numpy: bool) -> tuple[CommandSender, Any, Ring, np.ndarray]:
    """The audio child's mix over a shared layout in this process (no stream), a sender
    writing to it as the player does, and its status row: the compiled core's, or the NumPy
    fallback's reader."""
    config = ChildConfig(SharedLayout(16, 12, NOTE_FRAMES), RATE, 128, 2, None, 2, 1024, 6.0)
    views = config.layout.views(bytearray(config.layout.size))
    ring, status, ended, _, arena = views

    def copy(entry: int, note: Note) -> None:
        arena[entry, : len(note.pcm)] = note.pcm

    if numpy:
        master = MasterBus(RATE, gain_db=6.0, max_block_frames=1024)
        mix = RingReader(Mixer(RATE, polyphony=2, master=master), views, NOTE_FRAMES).mix
    else:
        mix = mix_function(config, views)
    ring = Ring(ring, RING_RECORDS)
    return CommandSender(ring, status, ended, 12, copy), mix, ring, status


@pytest.mark.skipif(load_core()[0] is None, reason="the compiled mixer core is not built")
def test_the_numpy_fallback_reads_the_ring_as_the_compiled_core_does() -> None:
    """The same commands and the same garbage through the shared ring (bad fields, records
    published before they were written, torn write counts): the child's NumPy reader and the
    compiled core drop the same records, read nothing past a torn count, mix the same samples
    and publish the same count of limited frames (two notes at +6 dB master gain drive the
    limiter)."""
    outputs, limited = [], []
    for numpy in (False, True):
        sender, mix, ring, status = child_side(numpy)
        voices = Voices(Link(sender))
        slot = voices.note_on("a", Layer(tone(440.0)), Layer(tone(660.0)), weight=0.3)
        voices.note_on("b", Layer(looped(tone(550.0))), loop=True)
        garbage = np.frombuffer(bytes(range(256)) * 2, RECORD, 3).copy()
        for values in garbage.tolist():
            assert ring.put(values)
        ring._counts[WRITE] += 2  # published, never written
        voices.morph(slot, Layer(tone(880.0)), None, 0.0)
        blocks = []
        written = ring.written
        for torn in (written + RING_RECORDS + 1, 10**15, -1):
            ring._counts[WRITE] = torn
            blocks.append(np.empty((16, 2), dtype=np.float32))
            mix(blocks[-1], 16)
            assert ring.read == 0 and not blocks[-1].any()
        ring._counts[WRITE] = written
        for b in range(60):
            if b == 30:
                voices.note_off("a")
            block = np.empty((128, 2), dtype=np.float32)
            mix(block, 128)
            blocks.append(block)
        assert ring.dropped == 5 and sender.pending() == 0
        outputs.append(np.concatenate(blocks))
        limited.append(status[STATUS_LIMITED])
    assert np.abs(outputs[0]).max() > 0.1
    assert limited[0] == limited[1] > 0
    assert np.abs(outputs[0] - outputs[1]).max() <= 1e-6
