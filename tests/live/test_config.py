"""Typed settings (``config.py``, ``live.PlayConfig``, ``render_engine.RenderConfig``): built from
the real parser's arguments by the commands' builders, checked once when made (a one-line error
naming the option), and handed whole to the engine the command plays through."""

from __future__ import annotations

import dataclasses

import pytest

from gansynth_instrument.cli import build_parser
from gansynth_instrument.commands.play import play_config
from gansynth_instrument.commands.render import render_config
from gansynth_instrument.errors import GansynthError
from gansynth_instrument.live.config import CacheConfig, EngineConfig, Sounds
from gansynth_instrument.live.player import PlayConfig
from gansynth_instrument.notes import levels
from gansynth_instrument.offline.render_engine import ENGINE_WAIT_S, RenderConfig
from gansynth_instrument.presets.bank_files import find_bank
from gansynth_instrument.presets.preset_files import find_preset


def play_args(*options: str):
    return build_parser().parse_args(["play", *options])


def render_args(*options: str):
    return build_parser().parse_args(["render", "song.mid", "-o", "out.wav", *options])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--polyphony", "0"], "--polyphony must be at least 1, got 0"),
        (["--blocksize", "15"], "--blocksize must be 16..2048 frames, got 15"),
        (["--blocksize", "0"], "--blocksize must be 16..2048 frames, got 0"),
        (["--blocksize", "2049"], "--blocksize must be 16..2048 frames, got 2049"),
        (["--sample-rate", "100"], "--sample-rate 100 Hz is not an output rate"),
        (["--gain-db", "30"], "--gain-db must be -60..24 dB, got 30"),
        (["--bend-range", "49"], "--bend-range must be 0..48 semitones, got 49"),
        (["--max-memory-mb", "0"], "note cache memory cap (--max-memory-mb) must be above 0"),
        (["--learn-knob", "9"], "--learn-knob must be 1..8, got 9"),
        (["--learn-knob", "1", "--no-knobs"], "--learn-knob binds a timbre knob"),
        (["--velocity-curve", "loud"], "--velocity-curve: unknown curve 'loud'"),
        (["--channel", "17"], "--channel 17: MIDI channel 17 does not exist"),
    ],
)
def test_bad_play_arguments_fail_as_the_config_is_built(options, message):
    with pytest.raises(GansynthError) as err:
        play_config(play_args(*options))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sample-rate", "0"], "--sample-rate 0 Hz is not an output rate"),
        (["--gain-db", "-61"], "--gain-db must be -60..24 dB, got -61"),
        (["--loudness", "0"], "--loudness"),
        (["--channels", "0"], "--channels 0: MIDI channel 0 does not exist"),
    ],
)
def test_bad_render_arguments_fail_as_the_config_is_built(options, message):
    with pytest.raises(GansynthError) as err:
        render_config(render_args(*options))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_each_setting_is_checked_once_on_its_way_to_the_engine(monkeypatch):
    """The master gain's rule runs once as the config is built: copying the config's parts into
    the flow below (``Sounds``, the engine's and cache's configs held, not rebuilt) runs no
    check again."""
    calls = []
    real = levels.master_gain

    def counted(gain_db: float) -> float:
        calls.append(gain_db)
        return real(gain_db)

    monkeypatch.setattr(levels, "master_gain", counted)
    monkeypatch.setattr("gansynth_instrument.live.config.master_gain", counted)
    config = play_config(play_args("--gain-db", "-6", "--channel", "1-4"))
    assert calls == [-6.0]
    assert config.engine.channels == frozenset(range(4))
    assert config.cache.renderer == "process"  # live play's worker by default
    levels.MasterBus(48000, gain_db=config.gain_db)  # what the audio process builds from it
    assert calls == [-6.0]


def test_the_configs_are_frozen_and_hold_what_the_arguments_said():
    config = render_config(render_args("--velocity-curve", "linear", "--channels", "1,10"))
    assert config.engine == EngineConfig(
        channels=frozenset({0, 9}), velocity_exponent=1.0, wait_s=ENGINE_WAIT_S
    )
    assert config.loudness == -16.0 and config.sample_rate == 48000
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.gain_db = 3.0  # type: ignore[misc]


def test_python_callers_get_the_same_checks():
    with pytest.raises(GansynthError, match=r"^--polyphony must be at least 1, got 0$"):
        PlayConfig(polyphony=0)
    with pytest.raises(GansynthError, match="a render waits for every exact note"):
        RenderConfig(engine=EngineConfig())
    with pytest.raises(GansynthError, match=r"MIDI channels are 0\.\.15"):
        EngineConfig(channels=frozenset({16}))
    with pytest.raises(GansynthError, match="--renderer gpu: choose one of thread, process"):
        CacheConfig(renderer="gpu")
    with pytest.raises(GansynthError, match=r"^nothing to play"):
        Sounds()


def test_learn_needs_a_bank_with_a_morph_path():
    config = play_config(play_args("--learn"))
    config.check_sounds(Sounds(bank=find_bank("default")))
    with pytest.raises(GansynthError, match="--learn binds a knob to the morph") as err:
        config.check_sounds(Sounds(find_preset("felt-keys")))
    assert "--bank" in str(err.value)
