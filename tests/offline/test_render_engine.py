"""Engine-mode MIDI render (``render`` without --magenta): real tiny model, MIDI and WAV files.

Expected audio is rebuilt here from the cached notes and the documented envelope; the block-size
test renders one song (pedal, bend, program change, morph CC) three ways and compares exactly.
"""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
from midi_writer import write_midi

from gansynth_instrument import cli
from gansynth_instrument.commands import render as render_command
from gansynth_instrument.live.compiled_mixer import CHOICE_ENV, MIXER_ENV, load_core
from gansynth_instrument.live.config import CacheConfig, EngineConfig, Sounds
from gansynth_instrument.live.engine import Engine
from gansynth_instrument.live.instrument import assemble, build_engine
from gansynth_instrument.live.mixer import Mixer
from gansynth_instrument.live.voices import Voices
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.offline.midi_file import read_midi
from gansynth_instrument.offline.render_engine import (
    RenderConfig,
    render_events,
    render_midi_engine,
)
from gansynth_instrument.presets.bank_files import find_bank
from gansynth_instrument.presets.ganspace import knob_directions
from gansynth_instrument.presets.knobs import KNOB_CCS, KNOB_SPAN
from gansynth_instrument.presets.preset_files import find_preset

RATE = 16000  # the model's own rate: no resampling, so the test stays quick
WAIT_S = 300.0  # only bounds a hang
OPENMSX = Path("/usr/share/games/openttd/baseset/openmsx")  # Debian's openttd-openmsx


def on(pitch: int, velocity: int) -> mido.Message:
    return mido.Message("note_on", note=pitch, velocity=velocity)


def off(pitch: int) -> mido.Message:
    return mido.Message("note_off", note=pitch)


def envelope(frames: int, attack: int, release: int, released_at: int) -> np.ndarray:
    f = np.arange(frames, dtype=np.float64)
    a = np.minimum(1.0, (f + 1) / attack)
    return a * np.clip(1.0 - (f - released_at + 1) / release, 0.0, 1.0)


def test_each_note_is_its_cached_note_at_its_frame_with_envelope_and_velocity(model, tmp_path):
    midi = write_midi(
        tmp_path / "two.mid",
        [(0.25, on(60, 100)), (1.0, off(60)), (0.5, on(67, 64)), (0.75, off(67))],
    )
    preset = find_preset("felt-keys")
    out = tmp_path / "two.wav"
    config = RenderConfig(cache=CacheConfig(tmp_path / "notes"), sample_rate=RATE)
    result = render_midi_engine(model, midi, out, Sounds(preset), config)
    audio, rate = sf.read(out, dtype="float32")
    assert rate == RATE and result.notes == 2

    z = preset.latent_vector(model.latent_size)
    with NoteCache(model, RATE, cache_dir=tmp_path / "notes") as cache:
        timbre = cache.request(z, [60, 67])
        assert cache.wait(timbre, [60, 67], WAIT_S)
        notes = {p: cache.lookup(timbre, p).to_float() for p in (60, 67)}
    attack, release = round(preset.attack_s * RATE), round(preset.release_s * RATE)
    expected = np.zeros(2 * RATE)
    for pitch, velocity, start_s, end_s in ((60, 100, 0.25, 1.0), (67, 64, 0.5, 0.75)):
        start, held = round(start_s * RATE), round((end_s - start_s) * RATE)
        frames = held + release
        amp = (velocity / 127) ** 2 * 10 ** (preset.gain_db / 20)
        env = envelope(frames, attack, release, released_at=held)
        expected[start : start + frames] += amp * env * notes[pitch][:frames]
    assert len(audio) == np.flatnonzero(expected)[-1] + 1  # up to the last sample that sounds
    # Stereo; a channel at its General MIDI defaults (volume 100, centre) plays at unity each side.
    assert audio.shape == (len(audio), 2)
    for side in (0, 1):
        np.testing.assert_allclose(audio[:, side], expected[: len(audio)], atol=2e-6)


def song(path: Path) -> Path:
    """Chords, the pedal, a bend, a program change, volume and pan, and mod-wheel moves (the
    default bank's)."""
    messages = []
    for i, pitch in enumerate((48, 52, 55, 60, 64)):
        messages += [(0.1 * i, on(pitch, 70 + 10 * i)), (0.6 + 0.1 * i, off(pitch))]
    messages += [
        (0.3, mido.Message("control_change", control=64, value=127)),
        (0.9, mido.Message("control_change", control=64, value=0)),
        (0.45, mido.Message("pitchwheel", pitch=3000)),
        (1.05, mido.Message("pitchwheel", pitch=0)),
        (0.7, mido.Message("control_change", control=1, value=40)),
        (1.1, mido.Message("program_change", program=14)),
        (0.65, mido.Message("control_change", control=7, value=60)),  # glides on sounding notes
        (0.8, mido.Message("control_change", control=10, value=20)),
        (1.2, on(62, 90)),
        (1.4, mido.Message("control_change", control=1, value=127)),
        (1.7, off(62)),
    ]
    return write_midi(path, messages)


def test_engine_render_does_not_depend_on_the_block_size(model, tmp_path):
    events = read_midi(song(tmp_path / "song.mid"))
    results = []
    with NoteCache(model, RATE, cache_dir=None) as cache:
        for block in (1024, 128, 8193):
            mixer = Mixer(RATE, polyphony=16, channels=2, max_block_frames=block)
            engine = build_engine(
                cache,
                Voices(mixer),
                model.pitches,
                model.latent_size,
                Sounds(bank=find_bank("default")),
                EngineConfig(wait_s=WAIT_S),
            )
            results.append(render_events(engine, mixer, events, block_frames=block))
            assert engine.morph_position == len(engine.morph) - 1  # CC1 went to 127
            assert engine.timbre.name == "glass-bell"  # program 14 in the default bank
    assert np.abs(results[0]).max() > 0.01
    assert not np.array_equal(results[0][:, 0], results[0][:, 1])  # panned left from 0.8 s
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])


@pytest.mark.skipif(load_core()[0] is None, reason="the compiled mixer core is not built")
def test_render_sounds_the_same_with_the_compiled_and_the_numpy_mixer(
    model, tmp_path, monkeypatch, capsys
):
    """A real General MIDI song (OpenMSX's 5432gone_redfarn.mid: five melodic channels with their
    programs, volumes and pans from the default bank) rendered with the compiled mixer and with
    GANSYNTH_MIXER=numpy: the two files agree within 1e-6 of full scale."""
    midi = OPENMSX / "5432gone_redfarn.mid"
    if not midi.is_file():
        raise FileNotFoundError(f"{midi}: install Debian's openttd-openmsx (.ci/run does)")
    monkeypatch.delenv(MIXER_ENV, raising=False)  # CI's: the NumPy mixer is chosen here
    audio = {}
    for choice in ("compiled", "numpy"):
        monkeypatch.setenv(CHOICE_ENV, choice)
        out = tmp_path / f"{choice}.wav"
        config = RenderConfig(
            cache=CacheConfig(tmp_path / "notes"), sample_rate=RATE, subtype="FLOAT", progress=False
        )
        render_midi_engine(model, midi, out, Sounds(bank=find_bank("default")), config)
        notice = capsys.readouterr().err
        assert ("using the numpy mixer" in notice) == (choice == "numpy"), notice
        audio[choice], _ = sf.read(out, dtype="float32", always_2d=True)
    assert len(audio["compiled"]) == len(audio["numpy"]) > 50 * RATE
    assert np.abs(audio["numpy"]).max() > 0.1
    assert not np.array_equal(audio["numpy"][:, 0], audio["numpy"][:, 1])  # panned channels
    assert np.abs(audio["compiled"] - audio["numpy"]).max() <= 1e-6


def knob(value: int) -> mido.Message:
    return mido.Message("control_change", control=KNOB_CCS[0], value=value)


def test_knob_ccs_in_the_file_move_the_timbre_as_live_play_does(tiny_model, model, tmp_path):
    """Knob 1 swept up over a held note, then a later note at its top stop: the render differs from
    the same file without the sweep, and the later note is the note live play makes at that stop.
    The command finds the knob directions itself; --no-knobs ignores the knob CCs."""
    notes = [(0.1, on(60, 100)), (1.0, off(60)), (2.0, on(64, 90)), (2.5, off(64))]
    sweep = [(0.3 + 0.01 * i, knob(64 + i)) for i in range(64)]  # 64 (centre) → 127 in 0.63 s
    plain = write_midi(tmp_path / "plain.mid", notes)
    turned = write_midi(tmp_path / "turned.mid", notes + sweep)
    cache_dir = tmp_path / "notes"
    audio = {}
    for name, midi, extra in (
        ("plain", plain, []),
        ("turned", turned, []),
        ("ignored", turned, ["--no-knobs"]),
    ):
        out = tmp_path / f"{name}.wav"
        argv = ["render", midi, "-o", out, "--model", tiny_model, "--preset", "felt-keys"]
        argv.append("--no-normalize")  # the mix as live play makes it, compared with the engine's
        assert (
            cli.main(
                [str(a) for a in [*argv, "--sample-rate", RATE, "--cache-dir", cache_dir, *extra]]
            )
            == 0
        )
        audio[name] = sf.read(out, dtype="float32")[0][:, 0]
    assert len(list((cache_dir / "knobs").glob("*.npz"))) == 1  # found once, kept for play
    knobs = knob_directions(model, cache_dir=cache_dir / "knobs", progress=False)
    preset = find_preset("felt-keys")
    direct = tmp_path / "direct.wav"
    config = RenderConfig(cache=CacheConfig(cache_dir), sample_rate=RATE)
    render_midi_engine(model, turned, direct, Sounds(preset), config, knobs=knobs)
    assert np.array_equal(sf.read(direct, dtype="float32")[0][:, 0], audio["turned"])
    assert np.array_equal(audio["ignored"], audio["plain"])
    held = slice(round(0.4 * RATE), round(1.0 * RATE))
    change = np.abs(audio["turned"][held] - audio["plain"][held]).max()
    assert change > 0.1 * np.abs(audio["plain"][held]).max()  # the held note follows the knob

    # Live: the engine with knob 1 at 127 plays the timbre at the knob's top stop.
    memory_only = CacheConfig(cache_dir=None)
    live = assemble(model, Mixer(RATE, polyphony=4), Sounds(preset), cache=memory_only, knobs=knobs)
    live.engine.handle([0xB0, KNOB_CCS[0], 127])
    top = live.engine.current()
    z = preset.latent_vector(model.latent_size)
    assert np.array_equal(top.latent, knobs.move(z, [KNOB_SPAN]))
    with live.cache as cache:
        cache.request(top.latent, [64])
        assert cache.wait(top.key, [64], WAIT_S)
        note64 = cache.lookup(top.key, 64).to_float()
    start, held_frames = round(2.0 * RATE), round(0.5 * RATE)
    release = round(preset.release_s * RATE)
    env = envelope(held_frames + release, round(preset.attack_s * RATE), release, held_frames)
    expected = (90 / 127) ** 2 * 10 ** (top.gain_db / 20) * env * note64[: len(env)]
    np.testing.assert_allclose(
        audio["turned"][start:], expected[: len(audio["turned"]) - start], atol=2e-6
    )
    later = slice(start, start + held_frames)
    assert np.abs(audio["plain"][later] - audio["turned"][later]).max() > 0.01


def test_render_command_writes_the_wav_and_says_so(tiny_model, magenta_tiny, tmp_path, capsys):
    out = tmp_path / "song.wav"
    argv = ["render", magenta_tiny / "midi_input.mid", "-o", out, "--model", tiny_model]
    argv += ["--sample-rate", RATE, "--cache-dir", tmp_path / "notes"]
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.startswith(f"wrote {out}") and "14 notes" in captured.out
    audio, rate = sf.read(out, dtype="float32")
    assert rate == RATE and len(audio) >= 14 * RATE and np.abs(audio).max() > 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "song.wav"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"MThd garbage", "not a readable MIDI file"),
        (b"", "not a readable MIDI file"),
        (None, "no"),
    ],
)
def test_bad_or_empty_midi_is_one_line_and_writes_nothing(
    content, needle, tmp_path, capsys, tiny_model
):
    midi = tmp_path / "bad.mid"
    if content is None:
        write_midi(midi, [(0.0, mido.Message("program_change", program=3))])
    else:
        midi.write_bytes(content)
    argv = ["render", midi, "-o", tmp_path / "out.wav", "--model", tiny_model]
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and str(midi) in err and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mid"]


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(
    full_disk, tiny_model, tmp_path, capsys
):
    """Three seconds of stereo outgrow the 200 KiB filesystem: libsndfile's "System error." is
    said as what it is, and the half-written file goes."""
    on, off = mido.Message("note_on", note=60, velocity=100), mido.Message("note_off", note=60)
    midi = write_midi(tmp_path / "song.mid", [(0.0, on), (3.0, off)])
    out = full_disk / "song.wav"
    argv = ["render", midi, "-o", out, "--model", tiny_model, "--cache-dir", tmp_path / "notes"]
    assert cli.main([str(a) for a in [*argv, "--preset", "felt-keys"]]) == 1
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if "error" in line]  # no traceback
    assert line.endswith(f"render: error: {out}: cannot write (No space left on device)"), err
    assert list(full_disk.iterdir()) == []


def test_an_mpe_file_whose_pressure_turns_a_knob_has_the_knobs_found(tiny_model, tmp_path):
    """A bank sending MPE pressure to knob 2 and a file with pressure but no CC74 and no knob CC:
    the render finds the knob directions, and the held note's timbre follows the pressure
    (--no-knobs renders it unmoved)."""
    bank = tmp_path / "pressing.yaml"
    bank.write_text("name: pressing\nprograms: {0: felt-keys}\nmpe: {pressure: knob2}\n")
    config = [mido.Message("control_change", control=c, value=v) for c, v in MPE_LOWER_ZONE]
    notes = [(0.0, m) for m in config]
    notes += [(0.1, mido.Message("note_on", channel=1, note=60, velocity=100))]
    press = [mido.Message("aftertouch", channel=1, value=2 * i) for i in range(64)]
    notes += [(0.3 + 0.01 * i, m) for i, m in enumerate(press)]
    notes += [(1.2, mido.Message("note_off", channel=1, note=60))]
    midi = write_midi(tmp_path / "pressed.mid", notes)
    cache_dir = tmp_path / "notes"
    audio = {}
    for name, extra in (("pressed", []), ("ignored", ["--no-knobs"])):
        out = tmp_path / f"{name}.wav"
        argv = ["render", midi, "-o", out, "--model", tiny_model, "--bank", bank, "--no-normalize"]
        argv += ["--sample-rate", RATE, "--cache-dir", cache_dir, *extra]
        assert cli.main([str(a) for a in argv]) == 0
        audio[name] = sf.read(out, dtype="float32")[0][:, 0]
    assert len(list((cache_dir / "knobs").glob("*.npz"))) == 1
    held = slice(round(0.9 * RATE), round(1.2 * RATE))
    change = np.abs(audio["pressed"][held] - audio["ignored"][held]).max()
    assert change > 0.1 * np.abs(audio["ignored"][held]).max()


MPE_LOWER_ZONE = [(101, 0), (100, 6), (6, 15)]  # RPN 6 on channel 1: a lower zone of 15


def test_the_render_command_hands_its_config_to_the_engine(
    tiny_model, magenta_tiny, tmp_path, monkeypatch, capsys
):
    """``render`` through the real code: the settings ``render_config`` built from the
    arguments reach the engine whole (the same object the builder made), and it plays by them."""
    built: list[RenderConfig] = []
    engines: list[Engine] = []
    real_build, real_init = render_command.render_config, Engine.__init__

    def build(args):
        built.append(real_build(args))
        return built[-1]

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        engines.append(self)

    monkeypatch.setattr(render_command, "render_config", build)
    monkeypatch.setattr(Engine, "__init__", init)
    out = tmp_path / "song.wav"
    argv = ["render", magenta_tiny / "midi_input.mid", "-o", out, "--model", tiny_model]
    argv += ["--sample-rate", RATE, "--cache-dir", tmp_path / "notes", "--channels", "2-16"]
    argv += ["--velocity-curve", "linear", "--preset", "felt-keys"]
    assert cli.main([str(a) for a in argv]) == 0
    (config,), (engine,) = built, engines
    assert engine.config is config.engine
    assert config.engine.channels == frozenset(range(1, 16)) and engine.velocity_exponent == 1.0
    assert engine.listen == config.engine.channels  # channel 1, the file's, is not played
    assert "0 notes" in capsys.readouterr().out
