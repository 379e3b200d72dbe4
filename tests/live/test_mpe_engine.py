"""MPE input (mpe_input.py) through a real Engine, NoteCache and Mixer: each member channel's note
takes its own slide, pressure and bend; the manager acts on the zone; a zone turned off is
ordinary channels again. Notes come from ``ToneModel`` (tests/tonemodel.py), so the audio
expected is computed exactly from the cached notes, as tests/live/test_engine.py does."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from presets.test_mpe import rpn
from tonemodel import ToneModel

from gansynth_instrument.live.mpe_input import MpeInput, pressure_level
from gansynth_instrument.live.voices import pitch_ratio
from gansynth_instrument.midi_spec import control_change
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.mpe import MpeSettings
from live.test_engine import DARK, attack, cached, knob_space, make, played, render


@pytest.fixture
def model() -> ToneModel:
    return ToneModel()


@pytest.fixture
def cache(model: ToneModel) -> Iterator[NoteCache]:
    with NoteCache(model, ToneModel.sample_rate, cache_dir=None, batch_size=1) as c:
        yield c


LOWER_ZONE = [control_change(101, 0), control_change(100, 6), control_change(6, 15)]


def brightest(space) -> Timbre:
    return Timbre("b", space.knobs.move(DARK.latent, [4.0]))


def mpe(cache, settings: MpeSettings | None = None, forced: str | None = "lower"):
    space = knob_space()
    engine, mixer = make(cache, space=space)
    return MpeInput(engine, settings, forced=forced), engine, mixer, space


def test_slide_moves_only_its_own_note(cache):
    midi, engine, mixer, space = mpe(cache)
    (_d60, d64) = cached(cache, DARK, [60, 64])
    (b60,) = cached(cache, brightest(space), [60])
    midi.handle([0x91, 60, 127])  # channel 2
    midi.handle([0x92, 64, 127])  # channel 3
    render(mixer, 1000)
    midi.handle(control_change(74, 127, 1))  # channel 2's slide to the top: knob 1 at +4
    out = render(mixer, 3000)
    expected = played(b60, 3000, start=1000) + played(d64, 3000, start=1000)
    np.testing.assert_allclose(out[2000:], expected[2000:], atol=1e-5)  # past the glide
    assert engine.current(2).key == DARK.key  # channel 3 has not moved


def test_values_sent_before_the_note_on_apply_from_its_first_sample(cache):
    midi, _, mixer, space = mpe(cache)
    (b60,) = cached(cache, brightest(space), [60])
    midi.handle(control_change(74, 127, 4))
    midi.handle([0xE4, 0x7F, 0x7F])  # +48 semitones, then -12 exactly:
    midi.handle([0xE4, 0, 0x30])  # 8192 - 2048: -12 semitones at ±48
    midi.handle([0x94, 60, 127])
    out = render(mixer, 2000)
    expected = attack(2000, DARK) * played(b60, 2000, ratio=pitch_ratio(-12))
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_pressure_never_starts_a_note_below_its_velocity_and_swells_it(cache):
    midi, engine, mixer, _ = mpe(cache)
    (d60,) = cached(cache, DARK, [60])
    midi.handle([0xD1, 0])  # pressure 0 before the note-on, as controllers send
    midi.handle([0x91, 60, 64])
    assert engine.channels[1].note_level == 1.0
    out = render(mixer, 1000)
    amp = (64 / 127) ** engine.velocity_exponent
    np.testing.assert_allclose(out, amp * attack(1000, DARK) * played(d60, 1000), atol=1e-5)
    midi.handle([0xD1, 127])
    level = (127 / 64) ** engine.velocity_exponent
    assert engine.channels[1].note_level == pytest.approx(level)
    assert pressure_level(10, 64, 2.0) == 1.0  # lighter than the strike: the strike's level
    out = render(mixer, 2000)
    np.testing.assert_allclose(out[1000:], played(d60, 2000, start=1000)[1000:], atol=1e-5)


def test_pressure_to_a_knob_starts_at_the_knobs_centre(cache):
    midi, _engine, mixer, space = mpe(cache, MpeSettings(slide="knob2", pressure="knob1"))
    (d60,) = cached(cache, DARK, [60])
    (b60,) = cached(cache, brightest(space), [60])
    midi.handle([0xD1, 0])
    midi.handle([0x91, 60, 127])
    np.testing.assert_allclose(render(mixer, 500), attack(500, DARK) * played(d60, 500), atol=1e-5)
    midi.handle([0xD1, 127])
    out = render(mixer, 2000)
    np.testing.assert_allclose(out[1000:], played(b60, 2000, start=500)[1000:], atol=1e-5)


def test_a_stop_not_made_yet_plays_the_nearest_then_crossfades_to_it(cache):
    midi, engine, mixer, space = mpe(cache)
    (d60,) = cached(cache, DARK, [60])
    midi.handle([0x91, 60, 127])
    render(mixer, 500)
    midi.handle(control_change(74, 127, 1))  # its stop at pitch 60: asked for, not made
    top = space.turn(0, 127)[0][-1]
    stand_in = render(mixer, 500)
    stood_in = cache.lookup(top.key, 60) is None
    if stood_in:  # the cache thread may be quicker than this: then no stand-in
        np.testing.assert_allclose(
            stand_in[GLIDE_FRAMES:], played(d60, 500, start=500)[GLIDE_FRAMES:], atol=1e-5
        )
        assert engine.pending
    assert cache.wait(top.key, [60], 30.0)
    engine.start_pending()
    assert not engine.pending
    (b60,) = cached(cache, top, [60])
    out = render(mixer, 2000)
    np.testing.assert_allclose(out[1000:], played(b60, 2000, start=1000)[1000:], atol=1e-5)


GLIDE_FRAMES = 200


def test_the_manager_acts_on_the_zone_and_its_bend_adds_to_each_note(cache):
    midi, engine, mixer, _ = mpe(cache)
    (d60,) = cached(cache, DARK, [60])
    midi.handle(control_change(7, 50, 0))  # volume on the manager: every member's
    assert all(engine.channels[c].volume == 50 for c in range(16))
    midi.handle([0xE0, 0, 0])  # the manager: -2 semitones
    midi.handle([0xE1, 0, 0x30])  # member: -12 of ±48
    midi.handle(control_change(7, 100, 0))
    midi.handle([0x91, 60, 127])
    out = render(mixer, 3000)
    expected = attack(3000, DARK) * played(d60, 3000, ratio=pitch_ratio(-14))
    np.testing.assert_allclose(out[1000:], expected[1000:], atol=1e-4)


def test_zero_members_returns_to_ordinary_channels(cache):
    midi, engine, _mixer, _space = mpe(cache, forced=None)
    for msg in LOWER_ZONE:
        midi.handle(msg)
    assert engine.channels[1].bend_range == 48.0 and engine.channels[0].bend_range == 2.0
    midi.handle([0xD1, 127])
    midi.handle([0x91, 60, 64])
    assert engine.channels[1].note_level > 1.0
    for msg in (control_change(101, 0), control_change(100, 6), control_change(6, 0)):
        midi.handle(msg)
    assert not midi.zones.active
    assert engine.channels[1].bend_range == 2.0 and engine.channels[1].note_level == 1.0
    before = engine.current(1).key
    midi.handle(control_change(74, 127, 1))  # an ordinary channel: CC74 is no knob
    assert engine.current(1).key == before


def test_configuration_and_bend_range_messages_reach_the_zone_through_the_input(cache):
    """RPN 6 and RPN 0 sent to ``MpeInput`` (the manager's controllers otherwise go to every
    member): the zone takes them, not the channels' own RPN handling (which stops at ±24)."""
    midi, engine, mixer, _ = mpe(cache, forced=None)
    (d60,) = cached(cache, DARK, [60])
    for msg in rpn(15, 0, 6, 3):  # an upper zone of 3 members
        midi.handle(msg)
    assert midi.zones.members == [0, 3]
    ranges = [engine.channels[c].bend_range for c in (15, 14, 13, 12, 11)]
    assert ranges == [2.0, 48.0, 48.0, 48.0, 2.0]  # channel 12 is no member: its own ±2
    for msg in rpn(13, 0, 0, 60):  # RPN 0 on one member: every member's range
        midi.handle(msg)
    assert [engine.channels[c].bend_range for c in (15, 14, 13, 12)] == [2.0, 60.0, 60.0, 60.0]
    midi.handle([0xEF, 0, 0])  # the manager bent fully down: -2 semitones
    for msg in rpn(15, 0, 0, 12):  # the manager's range to ±12: its bend is now -12
        midi.handle(msg)
    assert engine.channels[15].bend_range == 12.0 and engine.channels[14].bend_range == 60.0
    midi.handle([0x9E, 60, 127])  # a member's note: the manager's -12 from its first sample
    out = render(mixer, 2000)
    expected = attack(2000, DARK) * played(d60, 2000, ratio=pitch_ratio(-12))
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_more_notes_than_member_channels_share_them_and_are_stolen_as_ordinary_notes(cache):
    """A zone of 2 members: a third note shares channel 2 with the first (the controller's
    choice, as the spec describes) and both take channel 2's slide; past the polyphony the
    oldest is stolen, as on channels with no zone."""
    midi, engine, mixer, space = mpe(cache, forced=None)
    for msg in rpn(0, 0, 6, 2):  # a lower zone of 2 members: channels 2 and 3
        midi.handle(msg)
    (d64,) = cached(cache, DARK, [64])
    b60, b67 = cached(cache, brightest(space), [60, 67])
    d60, d67 = cached(cache, DARK, [60, 67])
    for msg in ([0x91, 60, 127], [0x92, 64, 127], [0x91, 67, 127]):
        midi.handle(msg)
    render(mixer, 1000)
    midi.handle(control_change(74, 127, 1))  # channel 2's slide: both its notes
    out = render(mixer, 3000)
    expected = sum(  # each voice keeps the attack make-up of the note it started with
        played(n, 3000, start=1000, started=s) for n, s in ((b60, d60), (d64, d64), (b67, d67))
    )
    np.testing.assert_allclose(out[2000:], expected[2000:], atol=1e-5)

    ordinary, _ = make(cache)  # the same notes on channels in no zone
    pitches = [48, 50, 52, 53, 55, 57, 59, 62, 65, 69]  # 3 sounding + 10 > polyphony 8
    for timbre in (DARK, brightest(space)):
        cached(cache, timbre, pitches)
    for k, pitch in enumerate(pitches):
        midi.handle([0x91 + k % 2, pitch, 100])
    for msg in ([0x91, 60, 127], [0x92, 64, 127], [0x91, 67, 127]):
        ordinary.handle(msg)
    for k, pitch in enumerate(pitches):
        ordinary.handle([0x91 + k % 2, pitch, 100])
    playing = sorted(key for _, key in engine.voices.sounding())
    assert len(playing) == 8
    assert playing == sorted(key for _, key in ordinary.voices.sounding())
