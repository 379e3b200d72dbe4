"""Engine: raw MIDI bytes in, audio from the Mixer out, against a real NoteCache.

The cache renders from ``ToneModel`` (tests/tonemodel.py: a decaying harmonic tone whose
brightness follows the latent) so pitches can be measured exactly; the model is not under test.
Expected audio is computed here with ``np.interp`` from the cached notes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import pytest
from tonemodel import ToneModel

from gansynth_instrument.live.config import EngineConfig
from gansynth_instrument.live.engine import PENDING_S, RANDOM_CC, SAVE_CC, Engine
from gansynth_instrument.live.mixer import DEFAULT_GLIDE_S, Mixer
from gansynth_instrument.live.voices import Voices
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.note import Note
from gansynth_instrument.notes.timbre import Timbre, morph_steps
from gansynth_instrument.presets.ganspace import KnobDirections
from gansynth_instrument.presets.knobs import KNOB_CCS
from gansynth_instrument.presets.timbre_space import TimbreSpace

RATE = ToneModel.sample_rate
GLIDE = round(DEFAULT_GLIDE_S * RATE)  # frames a morph takes to glide to its new notes
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
    engine, mixer = make(cache, config=EngineConfig(max_shift_semitones=12))
    engine.handle([0x90, 79, 127])  # 7 above the model's top pitch
    out = render(mixer, 8000)
    assert dominant_hz(out[2000:]) == pytest.approx(440 * 2 ** ((79 - 69) / 12), rel=3e-3)
    with caplog.at_level(logging.WARNING, logger="gansynth_instrument.live.engine"):
        engine.handle([0x90, 100, 127])
        engine.handle([0x90, 100, 127])
    assert len(caplog.records) == 1 and "100" in caplog.records[0].getMessage()
    assert [key for _, key in engine.voices.sounding()] == [(0, 79)]
    assert top.pitch == 72


def test_pitch_bend_message_shifts_the_measured_pitch(cache):
    cached(cache, DARK, [69])
    engine, mixer = make(cache, config=EngineConfig(bend_range_semitones=2.0))
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
    with caplog.at_level(logging.WARNING, logger="gansynth_instrument.live.engine"):
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
    # The first batch also makes the reference note (middle C, levels.py) to level the timbre.
    assert sorted(bright[:4]) == [55, 59, 60, 67] and sorted(set(bright)) == list(PITCHES)


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
    np.testing.assert_allclose(out[GLIDE:], (held + new)[GLIDE:], atol=1e-5)  # after the glide
    # The exact neighbouring steps fill in behind.
    assert cache.wait(steps[2].key, [60, 64], WAIT_S) and cache.wait(steps[3].key, [60, 64], WAIT_S)
    engine.handle([0xB0, 1, 127])
    out = render(mixer, GLIDE + 500)[GLIDE:]  # the old steps fade out over the glide
    expected = played(b60, 500, start=4000 + GLIDE) + played(b64, 500, start=3000 + GLIDE)
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
    engine, mixer = make(cache, config=EngineConfig(channels=frozenset({0})))
    for msg in ([], [0x90, 60], [0x90, 200, 100], [0xF8], [0x3C, 100], [0xD0, 40]):
        engine.handle(msg)
    assert engine.ignored == 6
    engine.handle([0x93, 60, 100])  # channel 4: not ours
    assert engine.voices.in_use() == 0 and not render(mixer, 200).any()


# -- timbre knobs, the XY pad, exploring ---------------------------------------------------------


def knob_space(corners=()) -> TimbreSpace[Timbre]:
    """Two knobs: knob 1 moves z[0] (the tone's brightness), knob 2 moves z[2] (no effect)."""
    directions = np.eye(LATENT, dtype=np.float32)[[0, 2]]
    knobs = KnobDirections(ToneModel.digest, directions, np.ones(2), np.ones(2), 60, 1)
    return TimbreSpace(DARK, knobs, stops=5, span=4.0, corners=corners, pad_size=3)


def test_a_knob_moves_held_and_new_notes_along_its_stops(cache):
    space = knob_space()
    engine, mixer = make(cache, space=space)
    brightest = Timbre("b", space.knobs.move(DARK.latent, [4.0]))
    (d60,) = cached(cache, DARK, [60])
    (b60, b64) = cached(cache, brightest, [60, 64])
    engine.handle([0x90, 60, 127])
    render(mixer, 1000)
    engine.handle([0xB0, KNOB_CCS[0], 127])  # the last stop: +4 along knob 1
    assert engine.current().key == brightest.key
    engine.handle([0x90, 64, 127])
    out = render(mixer, 3000)
    held = played(b60, 3000, start=1000)
    new = attack(3000, DARK) * played(b64, 3000)
    np.testing.assert_allclose(out[2000:], (held + new)[2000:], atol=1e-5)  # past any crossfade
    # Knob 2's controller moves along knob 2 with knob 1 kept at its stop.
    engine.handle([0xB0, KNOB_CCS[1], 127])
    assert engine.current().latent[0] == pytest.approx(DARK.latent[0] + 4.0)
    assert engine.current().latent[2] == pytest.approx(4.0)
    # Back to the centre: the original timbre's own notes (same cache keys).
    engine.handle([0xB0, KNOB_CCS[1], 64])
    engine.handle([0xB0, KNOB_CCS[0], 64])
    assert engine.current().key == DARK.key
    engine.handle([0x90, 60, 0])
    engine.handle([0x90, 64, 0])
    render(mixer, 2000)
    engine.handle([0x90, 60, 127])
    np.testing.assert_allclose(render(mixer, 500), attack(500, DARK) * played(d60, 500), atol=1e-5)


def test_the_pad_glides_between_grid_points(cache):
    corners = [timbre(n, b) for n, b in (("a", -3.0), ("b", 3.0), ("c", 0.0), ("d", 1.0))]
    space = knob_space(corners)
    engine, mixer = make(cache, space=space, pad_ccs=(16, 17))
    (a60,) = cached(cache, corners[0], [60])
    (b60,) = cached(cache, corners[1], [60])
    engine.handle([0xB0, 16, 0])
    engine.handle([0x90, 60, 127])
    np.testing.assert_allclose(
        render(mixer, 1000)[64:], (attack(1000, DARK) * played(a60, 1000))[64:], atol=1e-5
    )
    engine.handle([0xB0, 16, 127])  # x = 1: corner B, a grid point
    out = render(mixer, 3000)
    np.testing.assert_allclose(out[2000:], played(b60, 3000, start=1000)[2000:], atol=1e-5)
    assert engine.current().key == corners[1].key
    middle = space.point((1, 0))
    (m60,) = cached(cache, middle, [60])
    engine.handle([0xB0, 16, 32])  # between A (0) and the middle point (1): x = 0.5 grid steps
    w = 32 * 2 / 127
    out = render(mixer, 3000)
    expected = (1 - w) * played(a60, 3000, start=4000) + w * played(m60, 3000, start=4000)
    np.testing.assert_allclose(out[2000:], expected[2000:], atol=1e-5)


def test_the_random_button_draws_a_timbre_for_the_next_notes(model):
    with NoteCache(model, RATE, cache_dir=None, batch_size=1) as cache:
        engine, _ = make(cache, space=knob_space())
        cached(cache, DARK, [60])
        engine.handle([0x90, 60, 127])
        engine.handle([0x80, 60, 0])
        engine.handle([0xB0, RANDOM_CC, 127])
        drawn = engine.current()
        assert drawn.name.startswith("random-") and drawn.key != DARK.key
        assert (drawn.attack_s, drawn.release_s) == (DARK.attack_s, DARK.release_s)
        engine.handle([0xB0, RANDOM_CC, 127])  # still held: no second draw
        assert engine.current() is drawn
        engine.handle([0xB0, RANDOM_CC, 0])
        engine.handle([0xB0, RANDOM_CC, 100])
        assert engine.current().key not in (drawn.key, DARK.key)
        assert cache.wait(engine.current().key, [60], WAIT_S)
    # The pitch played last is rendered first for each new draw.
    firsts = [p for z0, p in model.generated if z0 != DARK.latent[0]]
    assert firsts[0] == 60


def test_knobs_and_buttons_act_on_the_channel_their_controller_arrives_on(cache):
    engine, mixer = make(cache, space=knob_space())
    brightest = Timbre("b", engine.space.knobs.move(DARK.latent, [4.0]))
    (d60,) = cached(cache, DARK, [60])
    (b60,) = cached(cache, brightest, [60])
    engine.handle([0xB1, KNOB_CCS[0], 127])  # channel 2's knob 1 to its last stop
    assert engine.current(1).key == brightest.key
    assert engine.current(0).key == DARK.key  # channel 1 keeps its timbre and knob stops
    engine.handle([0x90, 60, 127])
    engine.handle([0x91, 60, 127])
    out = render(mixer, 2000)
    both = attack(2000, DARK) * (played(d60, 2000) + played(b60, 2000))
    np.testing.assert_allclose(out, both, atol=1e-5)
    engine.handle([0xB0, SAVE_CC, 127])  # channel 1's save button: channel 1's timbre
    assert engine.take_save().key == DARK.key
    engine.handle([0xB1, SAVE_CC, 127])  # channel 2's button was never pressed: it acts
    assert engine.take_save().key == brightest.key


def test_the_save_button_hands_over_what_plays_once(cache):
    engine, _ = make(cache, space=knob_space())
    assert engine.take_save() is None
    engine.handle([0xB0, KNOB_CCS[0], 127])
    engine.handle([0xB0, SAVE_CC, 127])
    saved = engine.take_save()
    assert saved is not None and saved.latent[0] == pytest.approx(DARK.latent[0] + 4.0)
    assert "knobs 1=+4" in saved.name
    assert engine.take_save() is None


def test_the_save_button_keeps_what_the_last_note_played_not_a_later_draw(model):
    """A draw that has not sounded yet is not what was heard: the race of issue 28 item 13. The
    cache is started only after the presses, so the order of events is fixed."""
    cache = NoteCache(model, RATE, cache_dir=None, batch_size=1)
    try:
        engine, mixer = make(cache, space=knob_space())
        engine.handle([0xB0, RANDOM_CC, 127])
        engine.handle([0xB0, RANDOM_CC, 0])
        first = engine.current()
        engine.handle([0x90, 60, 127])  # waits: nothing of the draw is made yet
        engine.handle([0xB0, RANDOM_CC, 127])  # a second draw, before the first one sounds
        engine.handle([0xB0, RANDOM_CC, 0])
        second = engine.current()
        assert second.key != first.key and engine.pending == 1
        cache.start()
        assert cache.wait(first.key, [60], WAIT_S)
        assert engine.start_pending() == 0
        (f60,) = cached(cache, first, [60])
        out = render(mixer, 2000)
        np.testing.assert_allclose(out, attack(2000, first) * played(f60, 2000), atol=1e-5)
        engine.handle([0xB0, SAVE_CC, 127])
        assert engine.take_save() is first  # what sounded, not the draw still to be heard
        # A draw while the note is held: the held note keeps its timbre, and so does the save.
        engine.handle([0xB0, RANDOM_CC, 127])
        assert engine.current().key not in (first.key, second.key)
        engine.handle([0xB0, SAVE_CC, 0])
        engine.handle([0xB0, SAVE_CC, 127])
        assert engine.take_save() is first
        # The next note plays the newest draw, and the save follows it.
        engine.handle([0x80, 60, 0])
        newest = engine.current()
        cached(cache, newest, [60])
        engine.handle([0x90, 60, 110])
        engine.handle([0xB0, SAVE_CC, 0])
        engine.handle([0xB0, SAVE_CC, 127])
        assert engine.take_save() is newest
    finally:
        cache.close()


def test_a_knob_turned_under_a_held_note_is_saved_with_it(cache):
    engine, _ = make(cache, space=knob_space())
    cached(cache, DARK, [60])
    engine.handle([0x90, 60, 110])
    engine.handle([0xB0, KNOB_CCS[0], 127])  # the held note follows the knob to its last stop
    engine.handle([0xB0, SAVE_CC, 127])
    saved = engine.take_save()
    assert saved is not None and saved.latent[0] == pytest.approx(DARK.latent[0] + 4.0)


def test_learn_binds_the_next_controller_to_a_knob(cache):
    engine, _ = make(cache, space=knob_space())
    engine.learn(knob=1)
    engine.handle([0xB0, 64, 127])  # the pedal is never learned
    engine.handle([0xB0, 21, 127])
    assert engine.take_learned_knob() == (1, 21) and engine.take_learned_knob() is None
    assert engine.current().latent[2] == pytest.approx(4.0)
    engine.handle([0xB0, KNOB_CCS[1], 64])  # the old controller no longer turns it
    assert engine.current().latent[2] == pytest.approx(4.0)
    engine.handle([0xB0, 21, 64])
    assert engine.current().key == DARK.key
    with pytest.raises(ValueError, match="knob 3: this instrument has 2"):
        engine.learn(knob=2)


def test_a_new_timbres_first_note_waits_for_the_exact_note(cache):
    engine, mixer = make(cache, timbre=BRIGHT)
    engine.handle([0x90, 60, 127])  # nothing of BRIGHT cached: no stand-in to play
    assert engine.pending == 1 and not any(render(mixer, 256))
    assert cache.wait(BRIGHT.key, [60], WAIT_S)
    assert engine.start_pending() == 0
    (b60,) = cached(cache, BRIGHT, [60])
    np.testing.assert_allclose(
        render(mixer, 500), attack(500, BRIGHT) * played(b60, 500), atol=1e-5
    )


def test_a_waiting_note_on_ends_with_its_key_or_after_a_while(cache):
    engine, mixer = make(cache, timbre=timbre("fresh", 2.0))
    engine.handle([0x90, 62, 127])
    engine.handle([0x80, 62, 0])  # released before its note arrived: never starts
    assert engine.pending == 0
    engine.handle([0x90, 63, 127])
    assert engine.start_pending(now=time.monotonic() + PENDING_S + 1) == 0  # too late: dropped
    engine.handle([0x90, 64, 127])
    engine.handle([0xB0, 123, 0])  # all notes off
    assert engine.pending == 0
    assert cache.wait(engine.timbre.key, [62, 63, 64], WAIT_S)
    engine.start_pending()
    assert not any(render(mixer, 500))
