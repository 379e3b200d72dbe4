"""Multi-timbral General MIDI through the engine and the render: channels are independent.

Engine tests render MIDI files built here with mido (exact timing) through a real NoteCache on
``ToneModel`` (tests/tonemodel.py: a tone whose brightness follows the latent), a real Mixer and
the offline renderer, and compare channels sounding together with each rendered alone. Command
tests use the tiny exported model, and one real third-party General MIDI song (OpenMSX, Debian's
openttd-openmsx package, which .ci/run installs).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
from midi_writer import write_midi
from tonemodel import ToneModel

from gansynth_instrument import cli
from gansynth_instrument.live.config import EngineConfig
from gansynth_instrument.live.engine import Engine
from gansynth_instrument.live.mixer import Mixer
from gansynth_instrument.live.voices import Voices
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.offline.midi_file import read_midi
from gansynth_instrument.offline.render_engine import render_events

RATE = ToneModel.sample_rate
WAIT_S = 60.0
OPENMSX = Path("/usr/share/games/openttd/baseset/openmsx")


def timbre(name: str, brightness: float, release_s: float = 0.05) -> Timbre:
    z = np.zeros(ToneModel.latent_size, dtype=np.float32)
    z[0], z[1] = brightness, 1.0
    return Timbre(name, z, attack_s=0.005, release_s=release_s)


DARK, BRIGHT, MID = timbre("dark", -3.0), timbre("bright", 3.0), timbre("mid", 0.0)


@pytest.fixture(scope="module")
def cache() -> Iterator[NoteCache]:
    with NoteCache(ToneModel(), RATE, cache_dir=None, batch_size=8) as c:
        yield c


def engine(
    cache: NoteCache, polyphony: int = 32, channels: set[int] | None = None, **kw
) -> tuple[Engine, Mixer]:
    mixer = Mixer(RATE, polyphony=polyphony, channels=2)
    kw.setdefault("programs", {0: DARK, 40: BRIGHT, 73: MID})
    config = EngineConfig(channels=channels, wait_s=WAIT_S)
    made = Engine(cache, Voices(mixer), ToneModel.pitches, DARK, config=config, **kw)
    return made, mixer


def cc(channel: int, control: int, value: int) -> mido.Message:
    return mido.Message("control_change", channel=channel, control=control, value=value)


def note(channel: int, pitch: int, start: float, end: float, velocity: int = 100) -> list:
    return [
        (start, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)),
        (end, mido.Message("note_off", channel=channel, note=pitch)),
    ]


def render(cache: NoteCache, path: Path, **kw) -> np.ndarray:
    made, mixer = engine(cache, **kw)
    return render_events(made, mixer, read_midi(path))


def energy(x: np.ndarray) -> float:
    return float(np.sum(np.asarray(x, dtype=np.float64) ** 2))


def padded(*arrays: np.ndarray) -> list[np.ndarray]:
    frames = max(len(a) for a in arrays)
    return [np.pad(a, ((0, frames - len(a)), (0, 0))) for a in arrays]


def two_channel_song(path: Path) -> Path:
    """Channel 1: program 40, bent up, volume 80, panned left, pedal. Channel 2: program 73,
    bent down with a 7-semitone range (RPN 0), expression 90, panned right."""
    messages = [
        (0.0, mido.Message("program_change", channel=0, program=40)),
        (0.0, mido.Message("program_change", channel=1, program=73)),
        (0.0, cc(0, 7, 80)),
        (0.0, cc(0, 10, 20)),
        (0.0, cc(1, 11, 90)),
        (0.0, cc(1, 10, 110)),
        (0.0, cc(1, 101, 0)),
        (0.0, cc(1, 100, 0)),
        (0.0, cc(1, 6, 7)),
        (0.3, mido.Message("pitchwheel", channel=0, pitch=4000)),
        (0.4, mido.Message("pitchwheel", channel=1, pitch=-6000)),
        (0.5, cc(0, 64, 127)),
        (0.9, cc(0, 7, 40)),  # a volume change while notes sound: it glides
        (1.2, cc(0, 64, 0)),
    ]
    messages += note(0, 60, 0.1, 0.6) + note(0, 64, 0.2, 0.7)
    messages += note(1, 55, 0.15, 0.8) + note(1, 67, 0.5, 1.0)
    return write_midi(path, messages)


def test_two_channels_together_equal_the_sum_of_each_alone(cache, tmp_path):
    song = two_channel_song(tmp_path / "two.mid")
    together = render(cache, song)
    first, second = render(cache, song, channels={0}), render(cache, song, channels={1})
    together, first, second = padded(together, first, second)
    assert energy(first) > 0.01 * energy(together) and energy(second) > 0.01 * energy(together)
    residual = energy(together - first - second) / energy(together)
    assert residual < 0.01, residual
    # Pan: channel 1 sits left, channel 2 right.
    assert energy(first[:, 0]) > 5 * energy(first[:, 1])
    assert energy(second[:, 1]) > 5 * energy(second[:, 0])


def test_each_channel_plays_its_own_program_and_bend(cache, tmp_path):
    song = two_channel_song(tmp_path / "two.mid")
    made, mixer = engine(cache)
    render_events(made, mixer, read_midi(song))
    reports = {r.channel: r.played for r in made.report()}
    assert reports == {0: {"bright": 2}, 1: {"mid": 2}}
    assert made.channels[0].bend_range == 2.0 and made.channels[1].bend_range == 7.0
    assert made.channels[0].volume == 40 and made.channels[1].expression == 90


def bent_pitch_hz(cache: NoteCache, tmp_path: Path, messages: list) -> tuple[float, float]:
    """Dominant frequency of channel 1's and channel 2's held A (pitch 57) after the bends."""
    path = write_midi(
        tmp_path / "bend.mid", messages + note(0, 57, 0.0, 1.0) + note(1, 57, 0.0, 1.0)
    )
    hz = []
    for channel in (0, 1):
        audio = render(cache, path, channels={channel})[round(0.6 * RATE) : round(0.9 * RATE), 0]
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n=32 * len(audio)))
        hz.append(float(np.argmax(spectrum) * RATE / (32 * len(audio))))
    return hz[0], hz[1]


def test_pitch_bend_and_its_range_act_on_their_own_channel(cache, tmp_path):
    base = 440 * 2 ** ((57 - 69) / 12)
    messages = [
        (0.0, cc(1, 101, 0)),
        (0.0, cc(1, 100, 0)),
        (0.0, cc(1, 6, 12)),
        (0.5, mido.Message("pitchwheel", channel=1, pitch=8191)),
    ]
    first, second = bent_pitch_hz(cache, tmp_path, messages)
    assert first == pytest.approx(base, rel=0.004)  # channel 1 never bent
    assert second == pytest.approx(2 * base, rel=0.004)  # +12 semitones (RPN 0 = 12)


def test_sustain_pedal_holds_only_its_channel(cache, tmp_path):
    messages = [(0.0, cc(0, 64, 127)), *note(0, 60, 0.0, 0.2), *note(1, 64, 0.0, 0.2)]
    song = write_midi(tmp_path / "pedal.mid", [*messages, (1.5, cc(1, 1, 0))])
    pedalled, free = render(cache, song, channels={0}), render(cache, song, channels={1})
    late = slice(round(0.6 * RATE), round(0.7 * RATE))
    assert np.abs(pedalled[late]).max() > 0.01  # channel 1's pedal holds its note
    assert not free[late].any()  # channel 2's ended at its note-off


def test_all_notes_off_and_all_sound_off_act_per_channel(cache, tmp_path):
    made, mixer = engine(cache)
    for channel, pitch in ((0, 60), (1, 64), (2, 67)):
        made.handle([0x90 | channel, pitch, 100])
    block = np.empty((256, 2), dtype=np.float32)
    mixer.mix(block, 256)
    assert made.voices.in_use() == 3
    made.handle([0xB1, 120, 0])  # all sound off, channel 2: gone at once
    made.handle([0xB0, 123, 0])  # all notes off, channel 1: released
    mixer.mix(block, 256)
    assert sorted(key for _, key in made.voices.sounding()) == [(0, 60), (2, 67)]
    for _ in range(20):
        mixer.mix(block, 256)
    assert [key for _, key in made.voices.sounding()] == [(2, 67)]


def test_volume_scales_its_channel_by_gm2s_curve(cache, tmp_path):
    base = write_midi(tmp_path / "a.mid", note(0, 60, 0.0, 0.5) + note(1, 62, 0.0, 0.5))
    quiet = write_midi(
        tmp_path / "b.mid", [(0.0, cc(0, 7, 50)), *note(0, 60, 0.0, 0.5), *note(1, 62, 0.0, 0.5)]
    )
    loud_alone = render(cache, base, channels={0})
    quiet_alone = render(cache, quiet, channels={0})
    expected = (50 / 100) ** 2  # 40·log10(50/127) − 40·log10(100/127) dB
    np.testing.assert_allclose(quiet_alone, loud_alone * expected, atol=1e-6)
    np.testing.assert_array_equal(
        render(cache, quiet, channels={1}), render(cache, base, channels={1})
    )


def test_reset_all_controllers_recentres_bend_and_expression(cache, tmp_path):
    made, _mixer = engine(cache)
    for msg in ([0xB0, 11, 20], [0xE0, 0, 0x7F], [0xB0, 64, 127], [0xB0, 7, 30]):
        made.handle(msg)
    made.handle([0xB0, 121, 0])
    state = made.channels[0]
    assert (state.expression, state.bend, state.sustain, state.volume) == (127, 8192, False, 30)


def test_stealing_crosses_channels_in_one_shared_pool(cache):
    made, mixer = engine(cache, polyphony=4)
    block = np.empty((64, 2), dtype=np.float32)
    for i, channel in enumerate((0, 1, 2, 3, 4, 5)):
        made.handle([0x90 | channel, 50 + i, 100])
        mixer.mix(block, 64)
    sounding = sorted(key for _, key in made.voices.sounding())
    assert len(sounding) == 4 and sounding == [(2, 52), (3, 53), (4, 54), (5, 55)]


def test_drums_only_file_renders_silence_with_one_notice(cache, tmp_path, caplog):
    hits = [m for i in range(20) for m in note(9, 36 + i % 12, 0.05 * i, 0.05 * i + 0.04)]
    song = write_midi(tmp_path / "drums.mid", hits)
    made, mixer = engine(cache)
    with caplog.at_level(logging.WARNING, logger="gansynth_instrument.live.engine"):
        audio = render_events(made, mixer, read_midi(song))
    assert not audio.any()
    assert caplog.text.count("channel 10 is General MIDI percussion") == 1, caplog.text
    assert made.report()[0].skipped == {next(iter(made.report()[0].skipped)): 20}
    # A drums preset plays them.
    played, mixer = engine(cache, drums=MID)
    assert np.abs(render_events(played, mixer, read_midi(song))).max() > 0.01


def test_missing_bank_and_program_play_stand_ins_with_one_notice_each(cache, tmp_path, caplog):
    messages = [(0.0, cc(0, 0, 5)), (0.0, mido.Message("program_change", channel=0, program=41))]
    messages += [(0.0, mido.Message("program_change", channel=1, program=75))]
    messages += note(0, 60, 0.0, 0.1) + note(0, 62, 0.1, 0.2) + note(1, 60, 0.0, 0.1)
    made, mixer = engine(cache)
    with caplog.at_level(logging.WARNING, logger="gansynth_instrument.live.engine"):
        render_events(made, mixer, read_midi(write_midi(tmp_path / "s.mid", messages)))
    assert caplog.text.count("bank 5 does not exist") == 1
    assert "program 41 (strings) has no preset: playing program 40 bright" in caplog.text
    assert "program 75 (pipe) has no preset: playing program 73 mid" in caplog.text
    assert {r.channel: r.played for r in made.report()} == {0: {"bright": 2}, 1: {"mid": 1}}


def test_bend_range_over_24_is_clamped_with_a_notice(cache, tmp_path, caplog):
    made, _ = engine(cache)
    with caplog.at_level(logging.WARNING, logger="gansynth_instrument.live.engine"):
        for msg in ([0xB2, 101, 0], [0xB2, 100, 0], [0xB2, 6, 60]):
            made.handle(msg)
    assert made.channels[2].bend_range == 24.0
    assert "channel 3: pitch-bend range 60 semitones" in caplog.text


# --- the render command (tiny exported model) ---------------------------------------------------

CMD_RATE = 16000


def run_render(tiny_model: Path, tmp_path: Path, midi: Path, out: Path, *extra) -> int:
    argv = ["render", midi, "-o", out, "--model", tiny_model, "--sample-rate", CMD_RATE]
    argv += ["--cache-dir", tmp_path / "notes", *extra]
    return cli.main([str(a) for a in argv])


def every_channel_song(path: Path) -> Path:
    messages = []
    for channel in range(16):
        messages += [(0.0, mido.Message("program_change", channel=channel, program=channel * 8))]
        messages += note(channel, 60, 0.05 * channel, 0.05 * channel + 0.1)
    return write_midi(path, messages)


def test_render_of_all_16_channels_reports_each_once(tiny_model, tmp_path, capsys, caplog):
    midi = every_channel_song(tmp_path / "all.mid")
    out = tmp_path / "all.wav"
    assert run_render(tiny_model, tmp_path, midi, out) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"wrote {out}") and "15 notes" in lines[0] and "stereo" in lines[0]
    channel_lines = [line for line in lines if line.strip().startswith("channel")]
    assert len(channel_lines) == 16
    assert lines[1] == "drums   channel 10: not played"  # the default kit suits no tiny model
    assert "channel 10: nothing played; skipped 1 drum notes" in channel_lines[9]
    assert caplog.text.count("channel 10 is General MIDI percussion") == 1  # the notice, once
    audio, rate = sf.read(out, dtype="float32")
    assert rate == CMD_RATE and audio.shape[1] == 2 and np.abs(audio).max() > 0.001


@pytest.mark.parametrize(
    ("name", "extra", "subtype"),
    [
        ("song.flac", (), "PCM_24"),
        ("song.ogg", (), "VORBIS"),
        ("song.wav", ("--subtype", "PCM_16"), "PCM_16"),
        ("song.wav", (), "FLOAT"),
    ],
)
def test_render_writes_the_format_its_extension_names(tiny_model, tmp_path, name, extra, subtype):
    midi = write_midi(tmp_path / "s.mid", note(0, 60, 0.0, 0.3) + note(1, 64, 0.1, 0.4))
    out = tmp_path / name
    assert run_render(tiny_model, tmp_path, midi, out, *extra) == 0
    info = sf.info(out)
    assert info.subtype == subtype and info.channels == 2 and info.samplerate == CMD_RATE
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["notes", "s.mid", name])


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("-o", "song.mp3"), "unknown audio file extension '.mp3'"),
        (("--channels", "0"), "--channels 0: MIDI channel 0 does not exist"),
        (("--channels", "1,17"), "--channels 1,17: MIDI channel 17 does not exist"),
        (("--subtype", "FLOAT", "-o", "song.flac"), ".flac files take subtype"),
    ],
)
def test_bad_render_options_are_one_line_and_write_nothing(
    tiny_model, tmp_path, capsys, extra, needle
):
    midi = write_midi(tmp_path / "s.mid", note(0, 60, 0.0, 0.3))
    out = tmp_path / "song.wav"
    extra = tuple(str(tmp_path / e) if e.startswith("song.") else e for e in extra)
    argv = ["render", midi, "-o", out, "--model", tiny_model, *extra]
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mid"]


def openmsx(name: str) -> Path:
    path = OPENMSX / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: install Debian's openttd-openmsx (.ci/run does)")
    return path


def test_real_gm_song_drum_channel_alone_renders_silence(tiny_model, tmp_path, capsys, caplog):
    """5432gone_redfarn.mid (OpenMSX): six tracks, drums on channel 10 (336 hits), programs 53,
    23, 1, 33, 53 on channels 1-5."""
    out = tmp_path / "drums.wav"
    midi = openmsx("5432gone_redfarn.mid")
    assert run_render(tiny_model, tmp_path, midi, out, "--channels", "10") == 0
    captured = capsys.readouterr()
    assert "channel 10: nothing played; skipped 336 drum notes" in captured.out
    assert caplog.text.count("channel 10 is General MIDI percussion") == 1
    audio, _ = sf.read(out, dtype="float32")
    assert not audio.any() and math.isclose(len(audio) / CMD_RATE, 60.0, abs_tol=1.0)


def test_real_gm_song_plays_each_channel_with_its_program(tiny_model, tmp_path, capsys, caplog):
    out = tmp_path / "song.wav"
    midi = openmsx("5432gone_redfarn.mid")
    assert run_render(tiny_model, tmp_path, midi, out, "--channels", "1,2") == 0
    captured = capsys.readouterr()
    # The tiny model is not the bundled one: the fluid-* presets made for that, and the default
    # kit made of them, are skipped in one notice. Programs 53 (ensemble: no preset in the
    # family) and 23 (organ: 20 is).
    # (The CLI's notices reach stderr through tqdm, each on a line of its own.)
    assert captured.err.count("skipped 17 presets") == 1
    assert "program 53 (ensemble) has no preset: playing program 61 mellow-brass" in caplog.text
    assert "program 23 (organ) has no preset: playing program 20 reed-organ" in caplog.text
    assert "channel  1: mellow-brass (56 notes)" in captured.out
    assert "channel  2: reed-organ (336 notes)" in captured.out
    assert (
        "skipped 336 drum notes" not in captured.out
        and "336 notes on channels not chosen" in captured.out
    )
