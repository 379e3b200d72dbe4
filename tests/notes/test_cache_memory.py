"""The note cache's in-memory cap, against the real exported tiny model and real disk files.

Generator calls are counted by wrapping the real model's ``generate`` (tests/generate_spy.py):
every note still comes from the real model.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
from generate_spy import GenerateSpy

from gansynth_instrument.errors import CacheError
from gansynth_instrument.live.mixer import Mixer
from gansynth_instrument.live.voices import Layer, Voices
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.model.runtime import Model
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.note import Note
from gansynth_instrument.notes.note_queue import Priority

WAIT_S = 300  # only bounds a hang; no test measures time
RATE = 16000  # the model's own rate: no resampling, so every note is the same size


def note_bytes(model: Model) -> int:
    return 2 * round(model.audio_length * RATE / model.sample_rate)


def render_one(cache: NoteCache, seed: int, pitch: int) -> Note:
    """Request one note, wait for it, and keep our own reference (as a sounding voice does)."""
    timbre = cache.request(random_latent(seed), [pitch], Priority.WAITING)
    assert cache.wait(timbre, [pitch], WAIT_S)
    note = cache.lookup(timbre, pitch)
    assert note is not None
    return note


def test_cap_holds_and_evicted_notes_come_back_from_disk_not_the_model(
    model: Model, spy: GenerateSpy, tmp_path: Path
) -> None:
    cap = int(3.5 * note_bytes(model))
    pitches = [30, 36, 42, 48, 54, 60, 66, 72]  # 8 notes: more than twice the cap
    with NoteCache(model, RATE, tmp_path, max_memory_bytes=cap) as cache:
        held = {p: render_one(cache, 1, p) for p in pitches}
        timbre = cache.request(random_latent(1), [])
        in_memory = [p for p in pitches if cache.lookup(timbre, p) is not None]
        total = sum(cache.lookup(timbre, p).pcm.nbytes for p in in_memory)
        assert total == cache.memory_bytes <= cap
        assert len(in_memory) == 3  # full up to the cap, not emptied
        assert in_memory == pitches[-3:]  # the least recently used went first
        assert sorted(spy.pitches()) == pitches

        spy.calls.clear()
        evicted = pitches[:2]
        again = cache.request(random_latent(1), evicted, Priority.WAITING)
        assert cache.wait(again, evicted, WAIT_S)
        assert spy.calls == []  # a disk read, no render
        for p in evicted:
            np.testing.assert_array_equal(cache.lookup(timbre, p).pcm, held[p].pcm)
        assert cache.memory_bytes <= cap
        for note in held.values():  # notes we hold were never touched by eviction
            assert note.pcm.nbytes == note_bytes(model) and not note.pcm.flags.writeable
        assert cache.progress(timbre) == (len(pitches), len(pitches))
    assert len(list(tmp_path.glob("*.note"))) == len(pitches)  # evicted is not lost


def test_lookups_refresh_recency_and_played_timbres_go_last(model: Model, spy: GenerateSpy) -> None:
    cap = int(3.5 * note_bytes(model))
    with NoteCache(model, RATE, cache_dir=None, max_memory_bytes=cap) as cache:
        for p in (40, 41, 42):
            render_one(cache, 1, p)
        timbre = cache.request(random_latent(1), [])
        assert cache.lookup(timbre, 40) is not None  # 40 is now more recent than 41
        render_one(cache, 1, 43)
        assert cache.lookup(timbre, 41) is None
        assert all(cache.lookup(timbre, p) is not None for p in (40, 42, 43))

        cache.played(timbre, 43)  # timbre 1 is being played: timbre 2 fills around it
        other = cache.request(random_latent(2), [])
        for p in (50, 51, 52):
            render_one(cache, 2, p)
        # 50 found only timbre 1 to drop (its least recent, 40); 51 and 52 then dropped timbre 2's
        assert [p for p in (40, 42, 43) if cache.lookup(timbre, p) is not None] == [42, 43]
        assert [p for p in (50, 51, 52) if cache.lookup(other, p) is not None] == [52]
        assert cache.memory_bytes <= cap
        assert cache.nearest(other, 50).pitch == 52  # nearest only offers what is in memory


def test_lookups_never_wait_for_the_cache_lock_or_a_render(model: Model, spy: GenerateSpy) -> None:
    cap = int(1.5 * note_bytes(model))
    with NoteCache(model, RATE, cache_dir=None, max_memory_bytes=cap) as cache:
        first = render_one(cache, 1, 60)
        timbre = cache.request(random_latent(1), [])
        spy.hold()
        cache.request(random_latent(1), [61], Priority.WAITING)  # a render parks mid-generate
        assert spy.entered.wait(WAIT_S)
        found: list[Note | None] = []
        with cache._cond:  # the lock request/played/the renderer's bookkeeping take
            reader = threading.Thread(
                target=lambda: found.extend(
                    [cache.lookup(timbre, 60), cache.nearest(timbre, 62), cache.lookup(timbre, 61)]
                )
            )
            reader.start()
            reader.join(WAIT_S)
            assert not reader.is_alive()
        assert found == [first, first, None]
        spy.release()
        assert cache.wait(timbre, [61], WAIT_S)
        assert cache.lookup(timbre, 60) is None and cache.memory_bytes <= cap


def test_bad_memory_cap_is_one_clear_error(model: Model) -> None:
    with pytest.raises(CacheError, match="--max-memory-mb"):
        NoteCache(model, RATE, cache_dir=None, max_memory_bytes=0)


def test_mixer_never_drops_the_last_reference_to_a_waveform(model: Model) -> None:
    """An evicted note a slot still holds must not be freed when the audio thread swaps it out:
    the Mixer parks it in ``retired`` and the control side lets it go."""
    mixer = Mixer(RATE, polyphony=1, channels=1)
    voices = Voices(mixer)
    out = np.zeros((1024, 1), dtype=np.float32)

    def play_out(key: int, note: Note) -> None:
        """One voice from note-on to its natural end (the slot keeps its waveform after)."""
        assert voices.note_on(key, Layer(note)) == 0
        for _ in range(len(note.pcm) // len(out) + 8):
            mixer.mix(out, len(out))
        assert mixer.finished  # the voice ended; the slot still references the waveform

    with NoteCache(model, RATE, cache_dir=None, max_memory_bytes=note_bytes(model)) as cache:
        a = render_one(cache, 1, 60)
        gone = weakref.ref(a.pcm)
        play_out(60, a)
        b = render_one(cache, 1, 61)  # the cap holds one note: a leaves the cache
        assert cache.lookup(cache.request(random_latent(1), []), 60) is None
        del a
        assert gone() is not None  # the slot's reference alone
        play_out(61, b)  # the audio thread swaps a's waveform out of the slot ...
        assert gone() is not None  # ... and does not free it: it is parked
        assert any(w is gone() for w in mixer.retired)
        play_out(62, b)  # another swap parks b's waveform behind it
        voices.note_off(62)  # the control side collects: a's waveform is freed here
        assert gone() is None
        assert [w is b.pcm for w in mixer.retired] == [True]  # the newest stays parked
