"""MPE through a real player on the JACK dummy server (the bundled model, its timbre knobs), MIDI
from a JACK client, the output recorded by another; and an MPE MIDI file rendered twice.

Held notes loop (a looping copy of a shipped preset, its release shortened so one take's tail
has ended before the next take starts), so a held note's spectrum stays steady.
Two notes on two member channels are panned apart (CC10 on each member channel), so the left
side is one note and the right the other. Spectra are compared as shapes (each normalised to
its own energy), so a note's decay does not count as a change of timbre."""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from jackrig import MidiSender, Recorder, midi_input_port

from gansynth_instrument.live.config import CacheConfig, Sounds
from gansynth_instrument.live.midi import CLIENT_NAME
from gansynth_instrument.live.player import DEFAULT_RENDERER, PlayConfig, Player
from gansynth_instrument.model.runtime import load_model, model_path
from gansynth_instrument.notes.note_queue import Priority
from gansynth_instrument.offline.render_engine import RenderConfig, render_midi_engine
from gansynth_instrument.presets.ganspace import knob_directions
from gansynth_instrument.presets.preset_files import find_preset

RATE = 48000
AFTER_S, WINDOW_S = 2.1, 0.35  # after two_notes' sweep, from each note's onset
RELEASE_S = 0.25  # the held notes' release: each take waits this (and a little) for silence
WAIT_S = 120.0  # only bounds a hang: notes of the bundled model on the loaded machine
REPO = Path(__file__).resolve().parents[2]


def controller():
    """benchmarks/mpe_controller.py, the synthetic MPE controller, as a module."""
    spec = importlib.util.spec_from_file_location(
        "mpe_controller", REPO / "benchmarks" / "mpe_controller.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory):
    """The bundled model, its knob directions (found once), and the notes folder."""
    notes = tmp_path_factory.mktemp("mpe-notes")
    model = load_model(model_path())
    return model, knob_directions(model, cache_dir=notes / "knobs", progress=False), notes


@contextmanager
def mpe_player(bundled, mpe: str | None = None) -> Iterator[tuple[Player, MidiSender]]:
    model, knobs, notes = bundled
    port = f"mpe-{uuid.uuid4().hex[:6]}"
    player = Player(
        model,
        Sounds(pad()),
        PlayConfig(
            cache=CacheConfig(notes, DEFAULT_RENDERER),
            sample_rate=RATE,
            virtual_midi=port,
            mpe=mpe,
        ),
        knobs=knobs,
    )
    with player, MidiSender() as sender:
        sender.connect(midi_input_port(sender.client, f"{CLIENT_NAME}.*:{port}"))
        yield player, sender


def pad():
    """slow-pad looping (held notes sustain steadily), with a short release."""
    return find_preset("slow-pad").copy(loop=True, release_s=RELEASE_S)


def warm(player: Player, pitches: dict[int, bool]) -> None:
    """Make the notes ahead: each pitch's base timbre, and (True) every stop of knob 1."""
    line = player.with_engine(lambda e: e.space.turn(0, 64)[0])
    for pitch, stops in pitches.items():
        for timbre in line if stops else [player.engine.timbre]:
            player.cache.request(timbre.latent, [pitch], Priority.WAITING)
    for pitch, stops in pitches.items():
        for timbre in line if stops else [player.engine.timbre]:
            assert player.cache.wait(timbre.key, [pitch], WAIT_S)


def record(sender: MidiSender, script: list[tuple[float, list[int]]], seconds: float):
    """Send each message at its time (s after recording starts); [frames, 2] captured. The
    last take's release has ended before recording starts."""
    time.sleep(RELEASE_S + 0.15)
    with Recorder(seconds=seconds) as recorder:
        start = time.perf_counter()
        for at, msg in sorted(script, key=lambda s: s[0]):
            time.sleep(max(0.0, start + at - time.perf_counter()))
            sender.send(msg)
        return recorder.wait(timeout_s=seconds + 10).copy()


def clean_take(player: Player, sender: MidiSender, script, seconds: float, tries: int = 4):
    """``record`` again while the take had an xrun (a dropped block alone moves a 0.35 s
    piece's spectral shape by ~6 dB, as much as a slide), at most ``tries`` times; the last."""
    for _ in range(tries):
        before = player.audio.stats().xruns
        take = record(sender, script, seconds)
        if player.audio.stats().xruns == before:
            break
    return take


def two_notes(sweep: bool, slide_start: int = 0) -> list[tuple[float, list[int]]]:
    """Channel 2 (left) plays 60, channel 3 (right) 64; channel 2's CC74 sweeps 0→127 from 1 s
    to 2 s."""
    script = [(0.0, [0xB1, 10, 0]), (0.0, [0xB2, 10, 127]), (0.0, [0xB1, 74, slide_start])]
    script += [(0.05, [0x91, 60, 110]), (0.05, [0x92, 64, 110])]
    if sweep:
        script += [(1.0 + i / 50, [0xB1, 74, round(127 * i / 50)]) for i in range(51)]
    script += [(2.7, [0x81, 60, 0]), (2.7, [0x82, 64, 0])]
    return script


def shape(x: np.ndarray) -> np.ndarray:
    """Log power spectrum of ``x`` (Welch average), normalised to its own energy, 60 Hz-8 kHz."""
    n = 4096
    frames = [x[i : i + n] * np.hanning(n) for i in range(0, len(x) - n + 1, n // 2)]
    power = np.mean([np.abs(np.fft.rfft(f)) ** 2 for f in frames], axis=0)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    power = 10 * np.log10(power[(freqs > 60) & (freqs < 8000)] + 1e-20)
    power -= 10 * np.log10(np.sum(10 ** (power / 10)))
    return np.maximum(power, power.max() - 60)  # bins 60 dB down: noise, not timbre


def window(side: np.ndarray, start_s: float) -> np.ndarray:
    """``WINDOW_S`` of one side from ``start_s`` after its note's onset."""
    at = onset(side) + round(start_s * RATE)
    return side[at : at + round(WINDOW_S * RATE)]


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Log-spectral distance (dB) of two pieces' spectral shapes."""
    return float(np.sqrt(np.mean((shape(a) - shape(b)) ** 2)))


def against(take: np.ndarray, reference: np.ndarray, side: int) -> float:
    """A note after the sweep against the reference take's same note at the same time since its
    onset: its change, which its own drift (its loop, its attack) does not count in."""
    return distance(window(take[:, side], AFTER_S), window(reference[:, side], AFTER_S))


def onset(side: np.ndarray) -> int:
    return int(np.flatnonzero(np.abs(side) > 1e-4)[0])


def stretch(before: np.ndarray, after: np.ndarray) -> float:
    """The frequency factor that best maps ``before``'s spectrum onto ``after``'s."""
    n = 8192
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spec = [np.log(np.abs(np.fft.rfft(x[:n] * np.hanning(n))) + 1e-6) for x in (before, after)]
    band = (freqs > 80) & (freqs < 5000)
    scores = []
    factors = np.exp(np.linspace(np.log(0.7), np.log(2.5), 400))
    for s in factors:
        moved = np.interp(freqs[band] / s, freqs, spec[0])
        scores.append(np.corrcoef(moved, spec[1][band])[0, 1])
    return float(factors[int(np.argmax(scores))])


@pytest.fixture(scope="module")
def forced(jack_server, bundled) -> Iterator[tuple[Player, MidiSender]]:
    with mpe_player(bundled, mpe="lower") as rig:
        warm(rig[0], {60: True, 64: False})
        yield rig


def test_a_sliding_note_changes_and_the_held_one_does_not(forced):
    """Each note after the sweep against the same note in an untouched take. The noise is what
    untouched takes differ by in this run; takes with an xrun are taken again, and what an xrun
    left in the medians is allowed up to a twentieth of the slide's change."""
    player, sender = forced
    untouched = [clean_take(player, sender, two_notes(sweep=False), 2.8) for _ in range(3)]
    slid = [clean_take(player, sender, two_notes(sweep=True), 2.8) for _ in range(3)]
    reference = untouched[0]
    noise = max(against(take, reference, side) for take in untouched[1:] for side in (0, 1))
    sliding = float(np.median([against(take, reference, 0) for take in slid]))
    held = float(np.median([against(take, reference, 1) for take in slid]))
    print(f"change from untouched (dB): sliding {sliding:.2f}, held {held:.2f}, noise {noise:.2f}")
    assert held <= max(2 * noise, sliding / 20)  # within the noise of an untouched note
    assert sliding >= 5 * max(held, noise)  # the 5×


def test_a_per_note_bend_of_an_octave_moves_only_that_note(forced):
    _player, sender = forced
    script = two_notes(sweep=False, slide_start=64)
    script.append((0.8, [0xE1, 0, 0x50]))  # channel 2: 8192 + 2048 = +12 semitones of ±48
    script.append((2.75, [0xE1, 0, 0x40]))
    audio = record(sender, script, 2.8)
    a, b = round(0.3 * RATE), round(1.2 * RATE)
    left = stretch(audio[a : a + 8192, 0], audio[b : b + 8192, 0])
    right = stretch(audio[a : a + 8192, 1], audio[b : b + 8192, 1])
    print(f"frequency factors: bent {left:.3f}, other {right:.3f}")
    assert left == pytest.approx(2.0, rel=0.03)
    assert right == pytest.approx(1.0, rel=0.03)


def test_values_sent_before_the_note_on_apply_from_its_first_sample(forced):
    """Channel 4's CC74 (its knob 1's bottom or top stop) and a bend of -12 semitones, sent
    before its note-on: the note's first 85 ms are that stop's made note an octave down, from
    the note's own start (the model's attack), not the other stop's nor the unbent note."""
    player, sender = forced
    line = player.with_engine(lambda e: e.space.turn(0, 64)[0])
    first = 4096  # one of ``shape``'s frames

    def start(slide: int) -> np.ndarray:
        script = [(0.0, [0xB3, 10, 64]), (0.0, [0xB3, 74, slide]), (0.0, [0xE3, 0, 0x30])]
        script += [(0.05, [0x93, 60, 110]), (0.6, [0x83, 60, 0]), (0.6, [0xE3, 0, 0x40])]
        audio = record(sender, script, 0.7)[:, 0]
        return audio[onset(audio) :][:first]

    def made(timbre, octaves: int) -> np.ndarray:
        """The stop's note at 60 as the mixer plays it ``octaves`` down from its first frame:
        read by linear interpolation, under the preset's attack."""
        note = player.cache.lookup(timbre.key, 60)
        frames = np.arange(first)
        at = frames * note.sample_rate / RATE / 2**octaves
        rise = np.minimum(1.0, (frames + 1) / round(player.engine.timbre.attack_s * RATE))
        return rise * np.interp(at, np.arange(len(note.pcm)), note.to_float())

    for slide, stop, other in ((127, line[-1], line[0]), (0, line[0], line[-1])):
        heard = start(slide)
        right = distance(heard, made(stop, 1))
        wrong = [distance(heard, made(stop, 0)), distance(heard, made(other, 1))]
        print(
            f"CC74 {slide}: {right:.2f} dB from the stop an octave down; unbent, other stop: "
            f"{wrong[0]:.2f}, {wrong[1]:.2f}"
        )
        assert right <= min(wrong) / 3


def test_zero_members_returns_to_ordinary_channels(forced):
    player, sender = forced
    assert player.mpe.zones.active
    for msg in ([0xB0, 101, 0], [0xB0, 100, 6], [0xB0, 6, 0]):
        sender.send(msg)
    script = [(0.0, [0xB1, 10, 64]), (0.05, [0x91, 60, 110])]
    script += [(0.8, [0xE1, 0x7F, 0x7F]), (2.3, [0x81, 60, 0]), (2.3, [0xE1, 0, 0x40])]
    audio = record(sender, script, 2.4)[:, 0]
    assert not player.mpe.zones.active
    a, b = round(0.3 * RATE), round(1.2 * RATE)
    factor = stretch(audio[a : a + 8192], audio[b : b + 8192])
    print(f"a full bend on channel 2 after the zone ended: × {factor:.3f}")
    assert factor == pytest.approx(2 ** (2 / 12), rel=0.02)  # ±2, not ±48
    for msg in ([0xB0, 101, 0], [0xB0, 100, 6], [0xB0, 6, 15]):  # the zone back, for others
        sender.send(msg)


def test_an_mpe_file_renders_deterministically(bundled, tmp_path):
    model, knobs, notes = bundled
    song = controller().write_phrase(tmp_path / "mpe.mid", controller().phrase(1.0, steps=8))
    outs = []
    for name in ("a.wav", "b.wav"):
        result = render_midi_engine(
            model,
            song,
            tmp_path / name,
            Sounds(find_preset("slow-pad")),
            RenderConfig(cache=CacheConfig(notes), progress=False),
            knobs=knobs,
        )
        assert result.notes == 3
        # The samples, not the file's bytes: libsndfile stamps a float WAV's PEAK chunk with the
        # time of writing.
        outs.append(sf.read(tmp_path / name, dtype="float32")[0])
    assert np.array_equal(outs[0], outs[1]) and np.abs(outs[0]).max() > 0
