"""The NumPy mixer (voices → samples) driven through ``Voices``: playback rate, the layers a morph
leaves and their glides under a stream of morphs, commands for finished voices, and the same
samples in any block size (plain and looping voices). Expected outputs come from the documented
formulas, not from the Mixer.
"""

from __future__ import annotations

import numpy as np
import pytest

from gansynth_instrument.live.compiled_mixer import CompiledMixer
from gansynth_instrument.live.mixer import MORPH_LAYERS, Mixer, layers_after
from gansynth_instrument.live.voices import Layer, Voices, pitch_ratio
from live.test_voices import RATE, constant_note, decaying_tone, engine, make_note, render


def test_playback_rate_interpolates_linearly_and_converts_sample_rate():
    mixer, voices = engine()
    note = make_note(np.arange(2000) * 8, rate=RATE // 2)  # half the output rate: 0.5 step/frame
    voices.note_on(60, Layer(note, pitch_ratio=1.5), attack_s=1 / RATE)
    out = render(mixer, 400)
    positions = np.arange(400) * 1.5 * 0.5
    np.testing.assert_allclose(out, positions * 8 / 32768, rtol=1e-6)


@pytest.mark.parametrize("kind", ["numpy", "compiled"])
def test_a_fast_slide_through_steps_with_a_command_every_few_frames_never_jumps(kind: str):
    """A controller sending a message every 8 frames (an MPE slide: about 1 ms) while crossing a
    step every half glide: each note left behind fades out in one glide, however many commands
    arrive meanwhile, so its layer is silent when a new step takes it (no click)."""
    glide = 64
    mixer = (
        CompiledMixer(RATE, polyphony=8, channels=2, glide_frames=glide)
        if kind == "compiled"
        else Mixer(RATE, polyphony=8, channels=2, glide_frames=glide)
    )
    voices = Voices(mixer)
    steps = [constant_note(12000 * (-1) ** k, frames=RATE * 2) for k in range(12)]
    slot = voices.note_on(60, Layer(steps[0]), Layer(steps[1]), weight=0.0, attack_s=1 / RATE)
    for command in range(1, 40):
        u = command / 4  # a step every 4 commands: every 32 frames
        k = min(int(u), len(steps) - 2)
        voices.morph(slot, Layer(steps[k]), Layer(steps[k + 1]), u - k, frame=8 * command)
    out = render(mixer, 8 * 40 + 2 * glide)
    # Gliding, two notes' weights move at most 2 / glide per frame: 2 × 12000 / 32768 / 64.
    assert np.abs(np.diff(out)).max() < 0.015


@pytest.mark.parametrize("kind", ["numpy", "compiled"])
def test_the_mixer_holds_exactly_the_notes_layers_after_predicts(kind: str):
    """Random knob moves over six steps: after each morph the voice's layers hold what
    ``layers_after`` says (the audio process frees arena entries by it), in either mixer."""
    rng = np.random.default_rng(3)
    if kind == "compiled":
        mixer = CompiledMixer(RATE, polyphony=8, channels=2)
        voices = Voices(mixer)
    else:
        mixer, voices = engine()
    steps = [constant_note(1000 * (k + 1), frames=RATE * 4) for k in range(6)]
    slot = voices.note_on(60, Layer(steps[0]), Layer(steps[1]), weight=0.5)
    held: tuple = (id(steps[0].pcm), id(steps[1].pcm))
    for move in range(60):
        a = int(rng.integers(6))
        b = None if rng.random() < 0.2 else steps[(a + 1) % 6]
        voices.morph(slot, Layer(steps[a]), Layer(b) if b else None, float(rng.random()))
        named = (id(steps[a].pcm),) + ((id(b.pcm),) if b else ())
        held = layers_after(held, named)
        render(mixer, int(rng.integers(1, 200)))
        assert len(held) <= MORPH_LAYERS
        assert tuple(id(p) for p in mixer.layer_notes(slot)) == held, move


def test_morph_for_a_finished_voice_is_ignored():
    mixer, voices = engine()
    a, b = constant_note(frames=100), constant_note(frames=100)
    slot = voices.note_on(60, Layer(a), attack_s=1 / RATE)
    render(mixer, 200)
    voices.morph(slot, Layer(b), None, 0.0)
    assert not render(mixer, 100).any()


def scenario(mixer: Mixer, voices: Voices) -> None:
    """Notes, releases, pedal, bend and morph at awkward frames (all before rendering starts)."""
    rng = np.random.default_rng(7)
    notes = [make_note(rng.integers(-20000, 20000, 3000), pitch=p) for p in (48, 55, 60, 67)]
    slots = {}
    for i, pitch in enumerate((48, 55, 60, 67, 72)):
        note = notes[i % 4]
        other = notes[(i + 1) % 4]
        slots[pitch] = voices.note_on(
            pitch,
            Layer(note, pitch_ratio=pitch_ratio(pitch - note.pitch) * 0.7),
            Layer(other, pitch_ratio=0.9),
            weight=0.3,
            attack_s=0.005,
            release_s=0.02,
            frame=i * 333,
        )
    voices.sustain(True, frame=1400)
    voices.note_off(55, frame=1500)
    voices.bend(1.37, frame=1601)
    voices.morph(slots[60], Layer(notes[2]), Layer(notes[3]), 0.8, frame=1777)
    voices.morph(slots[67], Layer(notes[0]), None, 0.0, frame=1990)
    voices.note_off(48, frame=2100)
    voices.sustain(False, frame=2600)
    voices.bend(-0.5, frame=2800)
    voices.all_notes_off(frame=3300)
    # One layer only while the two-layer voices' tails end: the one-layer fast path takes over.
    voices.note_on(84, Layer(notes[1], pitch_ratio=0.5), frame=3400)


@pytest.mark.parametrize("block", [1, 127, 128, 8193])
def test_rendering_in_blocks_equals_rendering_in_one_go(block):
    frames = 5000
    results = []
    for size in (frames, block):
        mixer, voices = engine(polyphony=4, max_block_frames=256)  # the 6th note steals
        scenario(mixer, voices)
        results.append(render(mixer, frames, size))
    whole, blocked = results
    assert np.abs(whole).max() > 0.1
    assert np.array_equal(whole, blocked)


# -- looping voices (a preset's loop: true) -------------------------------------------------------


def looping_scenario(mixer: Mixer, voices: Voices) -> None:
    """Looping voices with bend, morph, steal and release at awkward frames."""
    notes = [decaying_tone(1.0, pitch=p) for p in (55, 60, 64)]
    slot = voices.note_on(60, Layer(notes[1]), release_s=0.02, loop=True, frame=0)
    voices.note_on(55, Layer(notes[0], pitch_ratio=0.9), release_s=0.02, loop=True, frame=77)
    voices.bend(0.7, frame=1999)
    voices.morph(slot, Layer(notes[1]), Layer(notes[2], pitch_ratio=0.8), 0.4, frame=4321)
    voices.note_off(55, frame=6001)
    voices.note_off(60, frame=9999)
    voices.morph(slot, Layer(notes[2]), None, 0.0, frame=10003)
    voices.note_on(64, Layer(notes[2]), frame=10100)


@pytest.mark.parametrize("block", [1, 127, 1000])
def test_looping_voices_render_the_same_in_any_block_size(block):
    frames = 12000
    results = []
    for size in (frames, block):
        mixer, voices = engine(polyphony=4, max_block_frames=256)
        looping_scenario(mixer, voices)
        results.append(render(mixer, frames, size))
    whole, blocked = results
    assert np.abs(whole[9000:9999]).max() > 0.01  # looping past the 1 s notes
    assert np.array_equal(whole, blocked)
