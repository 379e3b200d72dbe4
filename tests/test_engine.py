"""Engine: raw MIDI bytes in, audio from the Mixer out, against a real NoteCache.

The cache renders from ``ToneModel`` (tests/tonemodel.py: a decaying harmonic tone whose
brightness follows the latent) so pitches can be measured exactly; the model is not under test.
Expected audio is computed here with ``np.interp`` from the cached notes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest
from tonemodel import ToneModel

from gansynth_instrument.cache import NoteCache
from gansynth_instrument.engine import Engine
from gansynth_instrument.mixer import Mixer
from gansynth_instrument.note import Note
from gansynth_instrument.timbre import Timbre, morph_steps
from gansynth_instrument.voices import Voices

RATE = ToneModel.sample_rate
PITCHES = ToneModel.pitches
LATENT = ToneModel.latent_size
WAIT_S = 30.0


def timbre(name: str, brightness: float) -> Timbre:
    z = np.zeros(LATENT, dtype=np.float32)
    z[0] = brightness
    z[1] = 1.0
    return Timbre(name, z, gain_db=0.0, attack_s=0.005, release_s=0.05)


DARK, BRIGHT = timbre("dark", -3.0), timbre("bright", 3.0)


@pytest.fixture
def model() -> ToneModel:
    return ToneModel()


@pytest.fixture
def cache(model: ToneModel) -> Iterator[NoteCache]:
    with NoteCache(model, RATE, cache_dir=None, batch_size=1) as c:
        yield c


def make(cache: NoteCache, **kw) -> tuple[Engine, Mixer]:
    mixer = Mixer(RATE, polyphony=8, channels=1)
    kw.setdefault("timbre", DARK)
    engine = Engine(cache, Voices(mixer), PITCHES, **kw)
    return engine, mixer


def cached(cache: NoteCache, t: Timbre, pitches: list[int]) -> list[Note]:
    cache.request(t.latent, pitches)
    assert cache.wait(t.key, pitches, WAIT_S)
    notes = [cache.lookup(t.key, p) for p in pitches]
    assert all(n is not None for n in notes)
    return notes


def render(mixer: Mixer, frames: int) -> np.ndarray:
    out = np.empty((frames, 1), dtype=np.float32)
    mixer.mix(out, frames)
    return out[:, 0]


def played(note: Note, frames: int, ratio: float = 1.0, start: float = 0.0) -> np.ndarray:
    """The note read at ``start + ratio * f`` with linear interpolation (zero past its end)."""
    pos = start + ratio * np.arange(frames)
    return np.interp(pos, np.arange(len(note.pcm)), note.to_float(), right=0.0)


def attack(frames: int, t: Timbre, offset: int = 0) -> np.ndarray:
    return np.minimum(1.0, (np.arange(frames) + offset + 1) / round(t.attack_s * RATE))


def velocity_amp(velocity: int) -> float:
    return (velocity / 127) ** 2


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=16 * len(x)))
    return float(np.argmax(spectrum) * RATE / (16 * len(x)))


def test_note_on_plays_the_cached_note_at_the_velocity_amplitude(cache):
    (note,) = cached(cache, DARK, [60])
    engine, mixer = make(cache)
    engine.handle([0x90, 60, 100])
    out = render(mixer, 3000)
    expected = velocity_amp(100) * attack(3000, DARK) * played(note, 3000)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_note_off_and_velocity_zero_release_the_voice(cache):
    cached(cache, DARK, [60, 62])
    engine, mixer = make(cache)
    engine.handle([0x90, 60, 100])
    engine.handle([0x91, 62, 100])
    render(mixer, 500)
    engine.handle([0x80, 60, 0])
    engine.handle([0x91, 62, 0])
    release_frames = round(DARK.release_s * RATE)
    tail = render(mixer, release_frames + 1)
    assert np.abs(tail[:50]).max() > 0.01 and tail[-1] == 0.0
    assert engine.voices.in_use() == 0


def test_uncached_pitch_plays_the_nearest_pitch_shifted_then_the_exact_note(cache):
    (near,) = cached(cache, DARK, [60])
    engine, mixer = make(cache)
    engine.handle([0x90, 62, 127])
    out = render(mixer, 4000)
    expected = attack(4000, DARK) * played(near, 4000, ratio=2 ** (2 / 12))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert cache.wait(DARK.key, [62], WAIT_S)  # the exact note was requested
    engine.handle([0x80, 62, 0])
    render(mixer, 2000)
    engine.handle([0x90, 62, 127])
    out = render(mixer, 4000)
    exact = cache.lookup(DARK.key, 62)
    np.testing.assert_allclose(out, attack(4000, DARK) * played(exact, 4000), atol=1e-6)


def test_pitch_outside_the_model_is_shifted_within_the_bound_else_ignored_once(cache, caplog):
    (top,) = cached(cache, DARK, [72])
    engine, mixer = make(cache, max_shift_semitones=12)
    engine.handle([0x90, 79, 127])  # 7 above the model's top pitch
    out = render(mixer, 8000)
    assert dominant_hz(out[2000:]) == pytest.approx(440 * 2 ** ((79 - 69) / 12), rel=3e-3)
    with caplog.at_level(logging.WARNING, logger="gansynth_instrument.engine"):
        engine.handle([0x90, 100, 127])
        engine.handle([0x90, 100, 127])
    assert len(caplog.records) == 1 and "100" in caplog.records[0].getMessage()
    assert [key for _, key in engine.voices.sounding()] == [(0, 79)]
    assert top.pitch == 72


def test_pitch_bend_message_shifts_the_measured_pitch(cache):
    cached(cache, DARK, [69])
    engine, mixer = make(cache, bend_range_semitones=2.0)
    engine.handle([0x90, 69, 127])
    render(mixer, 1000)
    engine.handle([0xE0, 0x7F, 0x7F])  # full up
    assert dominant_hz(render(mixer, 4000)) == pytest.approx(440 * 2 ** (2 / 12), rel=3e-3)
    engine.handle([0xE0, 0x00, 0x00])  # full down
    assert dominant_hz(render(mixer, 4000)) == pytest.approx(440 * 2 ** (-2 / 12), rel=3e-3)
    engine.handle([0xE0, 0x00, 0x40])  # centre
    assert dominant_hz(render(mixer, 4000)) == pytest.approx(440, rel=3e-3)


def test_sustain_pedal_and_all_notes_off_all_sound_off_messages(cache):
    cached(cache, DARK, [60, 64])
    engine, mixer = make(cache)
    engine.handle([0xB0, 64, 127])
    engine.handle([0x90, 60, 100])
    engine.handle([0x80, 60, 0])
    render(mixer, 4000)
    assert engine.voices.in_use() == 1  # the pedal holds it
    engine.handle([0xB0, 64, 0])
    render(mixer, round(DARK.release_s * RATE))
    assert engine.voices.in_use() == 0
    engine.handle([0x90, 60, 100])
    engine.handle([0x90, 64, 100])
    engine.handle([0xB0, 123, 0])  # all notes off: release tails
    assert np.abs(render(mixer, 100)).max() > 0.0 and engine.voices.in_use() == 2
    engine.handle([0xB0, 120, 0])  # all sound off: silence now
    assert not render(mixer, 100).any() and engine.voices.in_use() == 0


def test_program_change_switches_new_notes_and_keeps_sounding_ones(cache, caplog):
    (dark60,) = cached(cache, DARK, [60])
    (bright64,) = cached(cache, BRIGHT, [64])
    engine, mixer = make(cache, programs={0: DARK, 5: BRIGHT})
    engine.handle([0x90, 60, 127])
    first = render(mixer, 1000)
    engine.handle([0xC0, 5])
    engine.handle([0x90, 64, 127])
    out = render(mixer, 3000)
    expected = played(dark60, 3000, start=1000) + attack(3000, BRIGHT) * played(bright64, 3000)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert np.abs(first).max() > 0.1
    with caplog.at_level(logging.WARNING, logger="gansynth_instrument.engine"):
        engine.handle([0xC0, 9])
    # Program 9 has no preset: the nearest defined program plays, with a notice.
    assert "program 9 (chromatic percussion) has no preset" in caplog.text
    assert engine.timbre is BRIGHT


def test_program_change_renders_played_pitches_first(model):
    cache = NoteCache(model, RATE, cache_dir=None, batch_size=1)  # renderer not started yet
    engine, _ = make(cache, programs={0: DARK, 1: BRIGHT})
    for pitch in (55, 67, 59):
        engine.handle([0x90, pitch, 90])
    engine.handle([0xC0, 1])
    model.generated.clear()
    with cache:
        assert cache.wait(BRIGHT.key, PITCHES, WAIT_S)
    bright = [p for z0, p in model.generated if z0 == BRIGHT.latent[0]]
    assert sorted(bright[:3]) == [55, 59, 67] and sorted(bright) == list(PITCHES)


def test_morph_cc_crossfades_the_nearest_rendered_steps_for_held_and_new_notes(cache):
    steps = morph_steps([DARK, BRIGHT], 5)
    (a60, a64) = cached(cache, steps[0], [60, 64])
    (b60, b64) = cached(cache, steps[-1], [60, 64])
    engine, mixer = make(cache, morph=steps, morph_cc=1)
    engine.timbre = steps[0]
    engine.handle([0x90, 60, 127])
    render(mixer, 1000)
    engine.handle([0xB0, 1, 64])  # position 64/127 of the path: steps 2 and 3 not rendered yet
    engine.handle([0x90, 64, 127])
    w = (64 / 127 * 4) / 4  # crossfade of the nearest rendered steps, 0 and 4
    out = render(mixer, 3000)
    held = (1 - w) * played(a60, 3000, start=1000) + w * played(b60, 3000, start=1000)
    new = attack(3000, steps[2]) * ((1 - w) * played(a64, 3000) + w * played(b64, 3000))
    np.testing.assert_allclose(out[64:], (held + new)[64:], atol=1e-5)  # after the 64-frame glide
    # The exact neighbouring steps fill in behind.
    assert cache.wait(steps[2].key, [60, 64], WAIT_S) and cache.wait(steps[3].key, [60, 64], WAIT_S)
    engine.handle([0xB0, 1, 127])
    out = render(mixer, 500)
    expected = played(b60, 500, start=4000) + played(b64, 500, start=3000)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_learn_binds_the_next_controller_to_the_morph(cache):
    steps = morph_steps([DARK, BRIGHT], 3)
    engine, _ = make(cache, morph=steps, morph_cc=1)
    engine.learn()
    engine.handle([0xB0, 64, 127])  # the pedal is never learned
    engine.handle([0xB0, 74, 127])
    assert engine.morph_cc == 74 and engine.morph_position == 2.0
    engine.handle([0xB0, 1, 0])  # the old CC no longer morphs
    assert engine.morph_position == 2.0
    engine.handle([0xB0, 74, 0])
    assert engine.morph_position == 0.0


def test_a_learned_controller_is_handed_over_once_for_saving(cache):
    engine, _ = make(cache, morph=morph_steps([DARK, BRIGHT], 3), morph_cc=1)
    assert engine.take_learned() is None  # nothing learned without learn()
    engine.handle([0xB0, 1, 64])
    assert engine.take_learned() is None  # the configured CC moving is not a new binding
    engine.learn()
    assert engine.take_learned() is None and engine.learning
    engine.handle([0xB0, 21, 10])
    assert not engine.learning and engine.morph_cc == 21
    assert engine.take_learned() == 21
    assert engine.take_learned() is None  # once: the file is written once
    engine.handle([0xB0, 22, 10])  # a later knob is not learned: one binding per learn()
    assert engine.morph_cc == 21 and engine.take_learned() is None


def test_a_looping_timbre_holds_its_notes_past_their_length_until_released(cache):
    looping = Timbre("held", DARK.latent, attack_s=0.005, release_s=0.05, loop=True)
    cached(cache, looping, [60, 64])
    engine, mixer = make(cache, timbre=looping)
    engine.handle([0x90, 60, 100])
    engine.handle([0x90, 64, 100])
    out = render(mixer, 3 * RATE)  # ToneModel notes are 1 s long
    assert np.abs(out[-RATE // 4 :]).max() > 0.01 and engine.voices.in_use() == 2
    engine.handle([0x80, 60, 0])
    engine.handle([0x90, 64, 0])
    tail = render(mixer, RATE // 10)
    assert tail[0] != 0 and not tail[round(0.05 * RATE) :].any()
    assert engine.voices.in_use() == 0
    engine, mixer = make(cache)  # DARK has no loop: the note ends after its second
    engine.handle([0x90, 60, 100])
    out = render(mixer, 2 * RATE)
    assert out[: RATE - 100].any() and not out[RATE:].any()


def test_morph_steps_loop_like_the_nearer_preset():
    looping = Timbre("held", BRIGHT.latent, loop=True)
    steps = morph_steps([DARK, looping], 5)
    assert [s.loop for s in steps] == [False, False, True, True, True]


def test_malformed_system_and_other_channel_messages_are_ignored(cache):
    cached(cache, DARK, [60])
    engine, mixer = make(cache, channels={0})
    for msg in ([], [0x90, 60], [0x90, 200, 100], [0xF8], [0x3C, 100], [0xD0, 40]):
        engine.handle(msg)
    assert engine.ignored == 6
    engine.handle([0x93, 60, 100])  # channel 4: not ours
    assert engine.voices.in_use() == 0 and not render(mixer, 200).any()
