"""Voice engine without audio: envelopes, stealing, pedal, bend, morph crossfade, looping voices
(the mixer's own tests, block sizes included, are in test_mixer.py).

Expected outputs are computed here from the documented formulas (module docstring of mixer.py), not
taken from the Mixer.
"""

from __future__ import annotations

import numpy as np
import pytest

from gansynth_instrument.live.mixer import Mixer
from gansynth_instrument.live.voices import Layer, Voices, pitch_ratio
from gansynth_instrument.notes.note import LoopedNote, Note, loop_note

RATE = 8000


def make_note(
    pcm: np.ndarray, gain: float = 1.0 / 32768, pitch: int = 60, rate: int = RATE
) -> Note:
    pcm = np.asarray(pcm, dtype=np.int16)
    pcm.flags.writeable = False
    return Note(pcm=pcm, gain=gain, pitch=pitch, sample_rate=rate)


def constant_note(value: int = 10000, frames: int = RATE, **kw) -> Note:
    return make_note(np.full(frames, value), **kw)


def sine_note(freq_hz: float, frames: int = RATE, rate: int = RATE) -> Note:
    t = np.arange(frames) / rate
    return make_note(np.round(20000 * np.sin(2 * np.pi * freq_hz * t)), rate=rate)


def engine(polyphony: int = 8, **kw) -> tuple[Mixer, Voices]:
    mixer = Mixer(RATE, polyphony=polyphony, channels=2, **kw)
    return mixer, Voices(mixer)


def render(mixer: Mixer, frames: int, block: int | None = None) -> np.ndarray:
    """Render ``frames`` frames in blocks of ``block`` (all at once if None); returns channel 0."""
    out = np.full((frames, mixer.channels), np.nan, dtype=np.float32)
    block = block or frames
    for start in range(0, frames, block):
        n = min(block, frames - start)
        mixer.mix(out[start : start + n], n)
    assert np.array_equal(out[:, 0], out[:, 1])
    return out[:, 0]


def attack_release(
    frames: int, attack: int, release: int, released_at: float = np.inf
) -> np.ndarray:
    f = np.arange(frames, dtype=np.float64)
    a = np.minimum(1.0, (f + 1) / attack)
    r = np.clip(1.0 - (f - released_at + 1) / release, 0.0, 1.0)
    return a * r


def dominant_hz(x: np.ndarray, rate: int) -> float:
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window, n=16 * len(x)))
    return float(np.argmax(spectrum) * rate / (16 * len(x)))


def test_envelope_is_sample_exact_for_attack_hold_and_release():
    mixer, voices = engine()
    note = constant_note(10000)
    voices.note_on(60, Layer(note), amp=0.5, attack_s=0.01, release_s=0.05)
    voices.note_off(60, frame=1000)
    out = render(mixer, 2000)
    attack, release = round(0.01 * RATE), round(0.05 * RATE)
    expected = 0.5 * (10000 / 32768) * attack_release(2000, attack, release, released_at=1000)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)
    assert out[1000 + release - 1] == 0.0 and out[1000 + release - 2] > 0.0
    assert mixer.voices_active == 0 and voices.in_use() == 0


def test_note_plays_its_length_once_and_ends():
    mixer, voices = engine()
    note = make_note(np.arange(1, 501) * 10)
    voices.note_on(60, Layer(note), attack_s=1 / RATE)
    out = render(mixer, 800)
    np.testing.assert_allclose(out[:500], np.arange(1, 501) * 10 / 32768, rtol=1e-6)
    assert not out[500:].any()
    assert voices.in_use() == 0


def test_voices_peak_holds_the_most_voices_of_any_block_until_reset():
    mixer, voices = engine()
    for key in (60, 64, 67):
        voices.note_on(key, Layer(constant_note(frames=400)), attack_s=1 / RATE)
    render(mixer, 100)
    voices.note_on(72, Layer(constant_note(frames=200)), attack_s=1 / RATE)
    render(mixer, 100)
    assert (mixer.voices_active, mixer.voices_peak) == (4, 4)
    render(mixer, 600)  # every note over
    assert (mixer.voices_active, mixer.voices_peak) == (0, 4)
    mixer.voices_peak = 0  # the meter's reset
    render(mixer, 100)
    assert mixer.voices_peak == 0


def keys(voices: Voices) -> list:
    return sorted(key for _, key in voices.sounding())


def test_stealing_takes_the_oldest_released_voice_then_the_oldest_held_one():
    mixer, voices = engine(polyphony=4)
    note = constant_note()
    for pitch in (60, 61, 62, 63):
        voices.note_on(pitch, Layer(note))
    render(mixer, 64)
    voices.note_off(62)
    render(mixer, 64)
    voices.note_on(64, Layer(note))
    assert keys(voices) == [60, 61, 63, 64]  # the released voice went first
    voices.note_on(65, Layer(note))
    assert keys(voices) == [61, 63, 64, 65]  # then the oldest held one
    voices.note_on(66, Layer(note))
    assert keys(voices) == [63, 64, 65, 66]


def test_pedal_sustained_voices_are_stolen_after_released_before_held():
    _, voices = engine(polyphony=3)
    note = constant_note()
    voices.note_on(60, Layer(note))  # oldest, key still down
    voices.note_on(62, Layer(note))
    voices.note_off(62)
    voices.sustain(True)
    voices.note_on(61, Layer(note))  # newest, key up under the pedal
    voices.note_off(61)
    voices.note_on(70, Layer(note))
    assert keys(voices) == [60, 61, 70]  # released 62 went first
    voices.note_on(71, Layer(note))
    assert keys(voices) == [60, 70, 71]  # then sustained 61, though 60 is older
    voices.note_on(72, Layer(note))
    assert keys(voices) == [70, 71, 72]


def test_a_stolen_voice_fades_out_in_a_spare_slot_while_the_new_note_starts():
    mixer, voices = engine(polyphony=1)
    voices.note_on(60, Layer(constant_note(5000, frames=1000)), attack_s=1 / RATE)
    render(mixer, 50)
    voices.note_on(61, Layer(constant_note(-3000, frames=1000)), attack_s=1 / RATE)
    out = render(mixer, 200)
    fade = round(0.005 * RATE)  # Voices' default steal_fade_s
    fading = 5000 * np.clip(1 - (np.arange(200) + 1) / fade, 0, 1)
    np.testing.assert_allclose(out, (fading - 3000) / 32768, rtol=1e-6, atol=1e-9)
    assert keys(voices) == [61] and mixer.voices_active == 1


def test_a_stolen_release_tail_fades_from_where_it_was():
    mixer, voices = engine(polyphony=1)
    release = round(0.1 * RATE)
    voices.note_on(60, Layer(constant_note(8000, frames=2000)), attack_s=1 / RATE, release_s=0.1)
    voices.note_off(60, frame=100)
    render(mixer, 300)  # 200 frames into an 800-frame release
    voices.note_on(61, Layer(constant_note(0, frames=2000)), attack_s=1 / RATE)
    out = render(mixer, 100)
    level = 1 - (300 - 100) / release  # the release level at the steal
    fade = round(0.005 * RATE)
    expected = 8000 * level * np.clip(1 - (np.arange(100) + 1) / fade, 0, 1) / 32768
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-9)


def test_pedal_holds_released_keys_until_it_lifts():
    mixer, voices = engine()
    note = constant_note(10000, frames=4 * RATE)
    attack, release = round(0.01 * RATE), round(0.05 * RATE)
    voices.note_on(60, Layer(note), attack_s=0.01, release_s=0.05)
    voices.sustain(True, frame=100)
    voices.note_off(60, frame=200)  # the key goes up under the pedal: keeps sounding
    voices.sustain(False, frame=3000)  # pedal up: the release starts here
    out = render(mixer, 4000)
    expected = (10000 / 32768) * attack_release(4000, attack, release, released_at=3000)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)


def test_retrigger_under_pedal_releases_the_old_voice_and_starts_a_new_one():
    mixer, voices = engine()
    note = constant_note()
    first = voices.note_on(60, Layer(note), release_s=0.05)
    voices.sustain(True)
    voices.note_off(60)
    second = voices.note_on(60, Layer(note))
    assert first != second
    render(mixer, round(0.05 * RATE) + 10)
    assert [key for _, key in voices.sounding()] == [60]
    voices.sustain(False)  # the new voice is still held by its key
    render(mixer, 1000)
    assert [key for _, key in voices.sounding()] == [60]


def test_all_notes_off_releases_and_all_sound_off_silences_at_once():
    mixer, voices = engine()
    note = constant_note(frames=4 * RATE)
    for pitch in (60, 64, 67):
        voices.note_on(pitch, Layer(note), release_s=0.1)
    render(mixer, 500)
    voices.all_notes_off()
    tail = render(mixer, 100)
    assert 0 < abs(tail[-1]) < abs(tail[0])
    assert voices.in_use() == 3  # release tails still sounding
    voices.all_sound_off()
    assert not render(mixer, 100).any()
    assert voices.in_use() == 0


def test_pitch_bend_shifts_the_measured_pitch_of_sounding_notes():
    rate = 48000
    mixer = Mixer(rate, polyphony=4, channels=1)
    voices = Voices(mixer)
    note = sine_note(440.0, frames=rate, rate=rate)
    voices.note_on(69, Layer(note))
    out = np.zeros((rate // 4, 1), dtype=np.float32)
    mixer.mix(out, len(out))
    assert dominant_hz(out[1000:, 0], rate) == pytest.approx(440.0, rel=2e-3)
    voices.bend(2.0)
    mixer.mix(out, len(out))
    assert dominant_hz(out[:, 0], rate) == pytest.approx(440.0 * 2 ** (2 / 12), rel=2e-3)
    voices.bend(-1.0)
    mixer.mix(out, len(out))
    assert dominant_hz(out[:, 0], rate) == pytest.approx(440.0 * 2 ** (-1 / 12), rel=2e-3)


def test_bend_keeps_the_playback_position_continuous():
    mixer, voices = engine()
    note = make_note(np.arange(4000) * 8)
    voices.note_on(60, Layer(note), attack_s=1 / RATE)
    voices.bend(12.0, frame=100)
    out = render(mixer, 300)
    positions = np.where(np.arange(300) < 100, np.arange(300), 100 + 2 * (np.arange(300) - 100))
    np.testing.assert_allclose(out, positions * 8 / 32768, rtol=1e-6)


def test_nearest_pitch_fallback_plays_at_the_shifted_pitch():
    rate = 48000
    mixer = Mixer(rate, polyphony=4, channels=1)
    voices = Voices(mixer)
    note = sine_note(440.0, frames=rate, rate=rate)
    voices.note_on(72, Layer(note, pitch_ratio=pitch_ratio(72 - 69)))
    out = np.zeros((rate // 4, 1), dtype=np.float32)
    mixer.mix(out, len(out))
    assert dominant_hz(out[1000:, 0], rate) == pytest.approx(440 * 2 ** (3 / 12), rel=2e-3)


def test_morph_crossfade_mixes_two_notes_and_glides_the_weight():
    glide = 64
    mixer, voices = engine(glide_frames=glide)
    a, b = constant_note(10000), constant_note(-6000)
    slot = voices.note_on(60, Layer(a), Layer(b), weight=0.25, attack_s=1 / RATE)
    voices.morph(slot, Layer(a), Layer(b), 0.75, frame=200)
    out = render(mixer, 400)
    g = np.clip((np.arange(400) - 200 + 1) / glide, 0.0, 1.0)
    w = np.where(np.arange(400) < 200, 0.25, 0.25 + 0.5 * g)
    expected = ((1 - w) * 10000 + w * -6000) / 32768
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)


def test_morph_to_a_new_pair_keeps_the_playback_position_and_crossfades():
    glide = 80
    mixer, voices = engine(glide_frames=glide)
    a = make_note(np.arange(4000) * 4)
    b = make_note(np.arange(4000) * -4)
    c = make_note(np.arange(4000) * 2, pitch=59)
    slot = voices.note_on(60, Layer(a), attack_s=1 / RATE)
    voices.morph(slot, Layer(b), Layer(c, pitch_ratio=2.0), 0.5, frame=300)
    out = render(mixer, 600)
    f = np.arange(600)
    g = np.clip((f - 300 + 1) / glide, 0.0, 1.0)  # the old note fades out, the new pair in
    expected = ((1 - g) * f * 4 + g * (0.5 * (f * -4) + 0.5 * (2 * f * 2))) / 32768
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)


def test_a_knob_crossing_a_morph_step_glides_without_a_jump():
    """Steps (a, b) at weight 0.9, then (b, c) at 0.1: a fades out and c in, b takes its new
    weight; the swap of pairs is no discontinuity (the click it was)."""
    glide = 64
    mixer, voices = engine(glide_frames=glide)
    a, b, c = constant_note(12000), constant_note(-8000), constant_note(3000)
    slot = voices.note_on(60, Layer(a), Layer(b), weight=0.9, attack_s=1 / RATE)
    voices.morph(slot, Layer(b), Layer(c), 0.1, frame=200)
    out = render(mixer, 400)
    g = np.clip((np.arange(400) - 200 + 1) / glide, 0.0, 1.0)
    wa, wb, wc = 0.1 * (1 - g), 0.9 + (0.9 - 0.9) * g, 0.1 * g
    expected = (wa * 12000 + wb * -8000 + wc * 3000) / 32768
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
    assert np.abs(np.diff(out)).max() < 0.01


def test_a_knob_jump_to_other_steps_fades_all_four_notes():
    glide = 50
    mixer, voices = engine(glide_frames=glide)
    a, b, c, d = (constant_note(v) for v in (10000, -10000, 4000, 8000))
    slot = voices.note_on(60, Layer(a), Layer(b), weight=0.5, attack_s=1 / RATE)
    voices.morph(slot, Layer(c), Layer(d), 0.25, frame=100)
    out = render(mixer, 300)
    g = np.clip((np.arange(300) - 100 + 1) / glide, 0.0, 1.0)
    expected = ((1 - g) * 0.5 * (10000 - 10000) + g * (0.75 * 4000 + 0.25 * 8000)) / 32768
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)


def test_a_note_named_when_every_layer_is_taken_replaces_the_least_recently_named():
    glide = 40
    mixer, voices = engine(glide_frames=glide)
    notes = [constant_note(1000 * (k + 1)) for k in range(5)]
    slot = voices.note_on(60, Layer(notes[0]), Layer(notes[1]), weight=0.5, attack_s=1 / RATE)
    voices.morph(slot, Layer(notes[2]), Layer(notes[3]), 0.5, frame=10)
    voices.morph(slot, Layer(notes[4]), None, 0.0, frame=200)  # takes note 0's layer
    out = render(mixer, 400)
    assert out[-1] == pytest.approx(5000 / 32768, rel=1e-6)
    g = np.clip((np.arange(400) - 200 + 1) / glide, 0.0, 1.0)
    expected = ((1 - g) * 0.5 * (3000 + 4000) + g * 5000) / 32768
    np.testing.assert_allclose(out[200:], expected[200:], rtol=1e-5, atol=1e-7)


def test_full_command_queue_drops_and_counts_instead_of_blocking():
    mixer = Mixer(RATE, polyphony=4)
    voices = Voices(mixer, queue_limit=3)
    note = constant_note()
    for pitch in range(5):
        voices.note_on(pitch, Layer(note))
    assert len(mixer.commands) == 3 and voices.dropped == 2
    assert voices.in_use() == 3


def decaying_tone(seconds: float = 4.0, pitch: int = 60) -> Note:
    """A 4 s note like the model's: a pitched tone (with a harmonic) that decays, so a loop of it
    has a level step and a phase to hide at its seam."""
    t = np.arange(round(seconds * RATE)) / RATE
    f = 440.0 * 2 ** ((pitch - 69) / 12)
    wave = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t + 1.0)
    return make_note(np.round(20000 * wave * np.exp(-0.6 * t)), pitch=pitch)


def test_held_looping_voice_sounds_past_the_note_and_its_seam_does_not_click():
    note = decaying_tone()
    mixer, voices = engine()
    voices.note_on(60, Layer(note), attack_s=0.01, release_s=0.2, loop=True)
    out = render(mixer, 9 * RATE, block=128)
    assert mixer.voices_active == 1 and voices.in_use() == 1
    looped = loop_note(note)
    start, length = looped.loop_start, looped.loop_end - looped.loop_start
    assert np.abs(out[8 * RATE :]).max() > 0.05  # still sounding at 8-9 s (the note is 4 s)
    # Loop k wraps at frame start + k·length; the sample steps there are like the note's own.
    jumps = np.abs(np.diff(out))
    wraps = [start + k * length for k in (1, 2)]  # at 5 s and 7 s
    for wrap in wraps:
        assert jumps[wrap - 8 : wrap + 8].max() <= 1.1 * jumps[wrap - 400 : wrap - 8].max()
    # Across the crossfade after each wrap too: no step larger than the note has before it.
    fade = round(0.1 * RATE)
    assert jumps[start : wraps[-1] + fade].max() <= 1.05 * jumps[RATE:start].max()
    # Every pass of the loop plays the same samples.
    first = out[wraps[0] + 10 : wraps[0] + 1000]
    np.testing.assert_allclose(out[wraps[1] + 10 : wraps[1] + 1000], first, atol=1e-6)


def test_released_looping_voice_leaves_the_loop_and_ends_with_its_release():
    note = decaying_tone()
    mixer, voices = engine()
    release = round(0.2 * RATE)
    voices.note_on(60, Layer(note), attack_s=0.01, release_s=0.2, loop=True)
    voices.note_off(60, frame=7 * RATE + 123)
    out = render(mixer, 8 * RATE, block=100)
    off = 7 * RATE + 123
    assert np.abs(out[off - 800 : off]).max() > 0.05 and not out[off + release :].any()
    assert mixer.voices_active == 0 and voices.in_use() == 0
    jumps = np.abs(np.diff(out[off - 400 : off + 400]))
    assert jumps.max() <= 1.05 * np.abs(np.diff(out[RATE : 2 * RATE])).max()


def test_pedal_holds_a_looping_voice_and_lifting_it_plays_the_release():
    note = decaying_tone()
    mixer, voices = engine()
    voices.note_on(60, Layer(note), release_s=0.1, loop=True)
    voices.sustain(True, frame=100)
    voices.note_off(60, frame=200)
    voices.sustain(False, frame=6 * RATE)
    out = render(mixer, 7 * RATE, block=256)
    assert np.abs(out[6 * RATE - 500 : 6 * RATE]).max() > 0.05
    assert not out[6 * RATE + round(0.1 * RATE) :].any() and voices.in_use() == 0


def test_a_note_without_loop_still_ends_after_its_four_seconds():
    note = decaying_tone()
    mixer, voices = engine()
    voices.note_on(60, Layer(note), attack_s=0.01, release_s=0.2)
    out = render(mixer, 6 * RATE, block=128)
    assert np.abs(out[4 * RATE - 200 : 4 * RATE]).max() > 0 and not out[4 * RATE :].any()
    assert mixer.voices_active == 0 and voices.in_use() == 0


def test_morph_of_a_looping_voice_keeps_looping_both_layers_in_step():
    a, b = decaying_tone(), decaying_tone(pitch=67)
    mixer, voices = engine()
    slot = voices.note_on(60, Layer(a), attack_s=1 / RATE, loop=True)
    voices.morph(slot, Layer(a), Layer(b, pitch_ratio=pitch_ratio(60 - 67)), 0.5, frame=2 * RATE)
    out = render(mixer, 9 * RATE, block=500)
    assert np.abs(out[8 * RATE :]).max() > 0.05 and voices.in_use() == 1


def test_the_loop_version_of_a_note_is_made_once_and_reused():
    note = decaying_tone()
    mixer, voices = engine()
    voices.note_on(60, Layer(note), loop=True)
    voices.note_on(62, Layer(note, pitch_ratio=pitch_ratio(2)), loop=True)
    first, second = (cmd[4] for cmd in mixer.commands)  # note_a of each note-on command
    assert isinstance(first, LoopedNote) and second is first
