"""Presets belong to their model (issue 16): a model's own timbres (from its metadata) make the
default bank with the seed presets; presets made for another model are marked in the listing,
skipped in a bank with one notice, and refused in one line when asked for. A model with a 64-value
latent (random weights, exported here) plays and renders with no --preset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mido
import numpy as np
import onnx
import pytest
import soundfile as sf
import yaml
from jackrig import JackServer
from live.test_multitimbral import write_midi
from live.test_player import match, note, onset, playing, record

from gansynth_instrument import cli
from gansynth_instrument.errors import PresetError
from gansynth_instrument.export.checkpoint import Checkpoint
from gansynth_instrument.export.graph import GeneratorConfig, random_weights
from gansynth_instrument.export.onnx_model import export_model
from gansynth_instrument.model.metadata import ModelInfo, ModelTimbre
from gansynth_instrument.model.runtime import load_model, model_path, read_info
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.bank_files import find_bank, load_bank_file
from gansynth_instrument.presets.explore import save_found
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_files import find_preset, shipped_presets_dir
from gansynth_instrument.presets.preset_saving import create_preset, save_copy

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
LATENT = 64
FAMILY = "test-m64"
RATE = 16000
SHIPPED_FOR_BUNDLED = 16  # the shipped fluid-* presets, made for the bundled model


def _latent(seed: int) -> tuple[float, ...]:
    return tuple(np.random.default_rng(seed).standard_normal(LATENT).astype(np.float32).tolist())


OWN = (
    ModelTimbre("m64-keys", "program000-v100", _latent(1), program=0, description="keys"),
    ModelTimbre("m64-keys-soft", "program000-v075", _latent(2), program=0, bank=1),
    ModelTimbre("m64-strings", "program040-v100", _latent(3), program=40),
)


@pytest.fixture(scope="module")
def model64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights in small shapes with a 64-value latent, every pitch 24-84, three timbres
    of its own and a family."""
    config = GeneratorConfig(
        latent_size=LATENT, pitches=tuple(range(24, 85)), start_height=2, start_width=16,
        filters=(6, 6, 5, 5, 4, 4, 3),
    )  # fmt: skip
    path = tmp_path_factory.mktemp("model64") / "m64.onnx"
    checkpoint = Checkpoint(config, random_weights(config, 64), 6.0, 0, "test: latent 64")
    export_model(checkpoint, path, OWN, FAMILY)
    return path


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user presets folder, where the CLI finds it too."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data" / "gansynth-instrument" / "presets"


def _render(model: Path | None, midi: Path, out: Path, *extra: str) -> int:
    argv = ["render", str(midi), "-o", str(out), "--sample-rate", str(RATE)]
    argv += ["--cache-dir", str(out.parent / "notes"), *extra]
    return cli.main(argv + (["--model", str(model)] if model is not None else []))


def test_render_without_a_preset_on_a_64_latent_model_plays_its_own_timbres(
    model64: Path, user_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Magenta's MIDI fixture (program 0, 14 notes) through the engine: the default bank's
    program 0 is the model's own m64-keys, exactly as --preset m64-keys plays it; the presets
    made for the bundled model and keys-to-bell (256 values) are skipped in one notice."""
    midi = FIXTURES / "magenta-tiny" / "midi_input.mid"
    out, alone = tmp_path / "song.wav", tmp_path / "alone.wav"
    assert _render(model64, midi, out) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    # ... and the default bank's drums, gm-kit, made of them.
    assert f"skipped {SHIPPED_FOR_BUNDLED + 2} presets that do not suit this model" in captured.err
    assert "channel  1: m64-keys (14 notes)" in captured.out
    assert _render(model64, midi, alone, "--preset", "m64-keys") == 0
    assert "skipped" not in capsys.readouterr().err
    audio, rate = sf.read(out, dtype="float32")
    assert rate == RATE and audio.shape[1] == 2 and np.isfinite(audio).all()
    assert np.sqrt(np.mean(audio**2)) > 1e-3  # it sounds
    np.testing.assert_array_equal(audio, sf.read(alone, dtype="float32")[0])


def test_bank_select_reaches_the_models_soft_timbre(
    model64: Path, user_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model's timbres keep their General MIDI programs and banks: CC0 = 1 then program 0
    plays m64-keys-soft, program 40 m64-strings; program 41 (viola) the same family's
    m64-strings, a stand-in. The summary shows each program and what played it."""
    messages = [
        (0.0, mido.Message("control_change", channel=0, control=0, value=1)),
        (0.0, mido.Message("program_change", channel=0, program=0)),
        (0.0, mido.Message("program_change", channel=1, program=40)),
        (0.0, mido.Message("program_change", channel=2, program=41)),
    ]
    for channel in (0, 1, 2):
        messages += [(0.1, mido.Message("note_on", channel=channel, note=60, velocity=100))]
        messages += [(0.6, mido.Message("note_off", channel=channel, note=60))]
    midi = write_midi(tmp_path / "banks.mid", messages)
    assert _render(model64, midi, tmp_path / "banks.wav") == 0
    out = capsys.readouterr().out
    assert "channel  1: m64-keys-soft (1 notes); bank 1 program 0 (piano) → m64-keys-soft" in out
    assert "channel  2: m64-strings (1 notes); program 40 (strings) → m64-strings\n" in out
    assert "channel  3: m64-strings (1 notes); program 41 (strings) → m64-strings (stand-in)" in out


def test_presets_list_shows_the_models_timbres_and_marks_the_others(
    model64: Path, user_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["presets", "list", "--model", str(model64)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert f"family {FAMILY}: 3 timbres of its own" in rows["model"]
    assert "latent[64]" in rows["m64-keys"] and " model " in rows["m64-keys"]
    assert "1:0" in rows["m64-keys-soft"] and "40" in rows["m64-strings"]
    assert "not for" not in rows["felt-keys"] and "seed 7" in rows["felt-keys"]
    assert "[not for this model: made for model 'bundled-fluidr3'" in rows["fluid-piano"]
    assert "256 latent values, but the model expects 64" in rows["keys-to-bell"]
    # show: the model's own timbre as the file 'presets save' would write; any file as stored.
    assert cli.main(["presets", "show", "m64-keys", "--model", str(model64)]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert (shown["model"], shown["program"]) == (FAMILY, 0)
    np.testing.assert_array_equal(np.float32(shown["latent"]), np.float32(OWN[0].latent))
    assert cli.main(["presets", "show", "fluid-piano", "--model", str(model64)]) == 0
    assert "model: bundled-fluidr3" in capsys.readouterr().out


def test_a_preset_for_another_model_is_one_line_naming_the_file(
    model64: Path, user_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    midi = write_midi(tmp_path / "s.mid", [(0.0, mido.Message("note_on", note=60, velocity=90))])
    out = tmp_path / "out.wav"
    shipped = shipped_presets_dir() / "fluid-piano.yaml"
    for argv in (
        ["render", str(midi), "-o", str(out), "--preset", "fluid-piano"],
        ["play", "--preset", "fluid-piano"],  # before any audio or MIDI opens
        ["generate", "-o", str(tmp_path / "notes"), "--preset", "fluid-piano"],
        ["interpolate", "felt-keys", "fluid-piano", "-o", str(tmp_path / "notes")],
    ):
        assert cli.main([*argv, "--model", str(model64)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(shipped) in err, err
        assert f"made for model 'bundled-fluidr3', not this model ('{FAMILY}')" in err
    assert not out.exists() and not (tmp_path / "notes").exists()


def test_a_bank_skips_presets_for_another_model_with_one_notice(
    model64: Path, tmp_path: Path
) -> None:
    """Skipped everywhere a bank names them: a program, the drums, a morph path left with one
    preset (it goes), a pad corner (the pad goes); the rest stays, the model's own among it."""
    bank_path = tmp_path / "mixed.yaml"
    bank_path.write_text(
        "name: mixed\n"
        "programs: {0: fluid-piano, 1: felt-keys, 40: m64-strings}\n"
        "variations: {1: {0: m64-keys-soft}}\n"
        "drums: fluid-flute\n"
        "morph: {path: [fluid-violin, glass-bell], cc: 1, steps: 5}\n"
        "pad: {corners: [felt-keys, glass-bell, slow-pad, fluid-trumpet]}\n"
    )
    info = read_info(model64)
    bank = load_bank_file(bank_path, user_dir=tmp_path / "user", model=info)
    assert bank.programs == {1: "felt-keys", 40: "m64-strings"}
    assert bank.variations == {1: {0: "m64-keys-soft"}}
    assert (bank.drums, bank.morph_path, bank.pad_corners) == (None, (), ())
    assert bank.notice.count("\n") == 0 and str(bank_path) in bank.notice
    assert "skipped 4 presets" in bank.notice and "fluid-flute" in bank.notice
    assert bank.presets["m64-strings"].latent == OWN[2].latent
    assert bank.presets["m64-strings"].model == FAMILY
    # Without a model (the files alone) nothing is skipped, and the model's names are unknown.
    with pytest.raises(PresetError, match=r"field 'programs.40': unknown preset 'm64-strings'"):
        load_bank_file(bank_path, user_dir=tmp_path / "user")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t[0].update(bank=300), "timbre 'm64-keys': bank 300 is not 0..127"),
        (lambda t: t[0].update(name="two words"), "timbre 0: 'two words' is not a preset name"),
        (lambda t: t[1].update(latent=[float("nan")] * LATENT), "holds NaN or infinity"),
        (lambda t: t.append("piano"), "timbre 3:"),
        (lambda t: t[1].update(bank=0), "'m64-keys' and 'm64-keys-soft' are both bank 0 program 0"),
    ],
)
def test_malformed_timbre_metadata_is_one_line_and_writes_nothing(
    model64: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change, problem: str
) -> None:
    bad = tmp_path / "bad.onnx"
    shutil.copy(model64, bad)
    proto = onnx.load(str(bad))
    props = {p.key: p.value for p in proto.metadata_props}
    timbres = json.loads(props["gansynth.timbres"])
    change(timbres)
    onnx.helper.set_model_props(proto, {**props, "gansynth.timbres": json.dumps(timbres)})
    onnx.save_model(proto, str(bad))
    midi = write_midi(tmp_path / "s.mid", [(0.0, mido.Message("note_on", note=60, velocity=90))])
    out = tmp_path / "out.wav"
    assert _render(bad, midi, out) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "malformed timbre metadata" in err, err
    assert problem in err, err
    assert not out.exists() and not (tmp_path / "notes").exists()


def test_a_bad_family_is_one_line(model64: Path, tmp_path: Path) -> None:
    proto = onnx.load(str(model64))
    props = {p.key: p.value for p in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**props, "gansynth.family": json.dumps("a b")})
    bad = tmp_path / "bad.onnx"
    onnx.save_model(proto, str(bad))
    with pytest.raises(Exception, match=r"bad.onnx: malformed gansynth metadata: family 'a b'"):
        read_info(bad)


def test_saved_presets_record_the_model_they_were_made_for(model64: Path, tmp_path: Path) -> None:
    """presets save (a copy of the model's own timbre), presets new --between / --from with a
    knob move, and the save button record the model; a seed records none."""
    info = read_info(model64)
    user = tmp_path / "user"
    copy, path = save_copy("m64-keys", new_name="mine", user_dir=user, model=info)
    assert copy.model == FAMILY and f"model: {FAMILY}" in path.read_text()
    assert find_preset("mine", user_dir=user, model=info).latent == OWN[0].latent
    between, _ = create_preset("half", between=("m64-keys", "felt-keys"), user_dir=user, model=info)
    assert between.model == FAMILY and len(between.latent or ()) == LATENT
    moved, _ = create_preset(
        "moved", from_preset="felt-keys", move=lambda z: z * 0.5, user_dir=user, model=info
    )
    assert moved.model == FAMILY and moved.seed is None
    seeded, _ = create_preset("seeded", seed=5, user_dir=user, model=info)
    assert seeded.model is None and "model" not in seeded.to_yaml()
    timbre = Timbre.from_preset(find_preset("m64-strings", model=info), LATENT)
    found, found_path = save_found(timbre, user_dir=user, model=info.preset_model)
    assert found.model == FAMILY and find_preset(found_path, model=info) == found
    with pytest.raises(PresetError, match=r"field 'model': a seed suits every model"):
        Preset("s", seed=1, latent=None, model=FAMILY)
    with pytest.raises(PresetError, match=r"field 'model': 'no way' is not a model"):
        Preset("s", seed=None, latent=(1.0,), model="no way")


def test_a_model_without_a_family_is_known_by_its_digest(tmp_path: Path, model64: Path) -> None:
    """Presets made for a model of no family record its digest, and suit only it."""
    info = read_info(model64)
    plain = ModelInfo(latent_size=LATENT, pitches=info.pitches, digest="0123abcd", timbres=OWN)
    assert plain.preset_model == "0123abcd"
    own = find_preset("m64-keys", model=plain)
    assert own.model == "0123abcd" and own.misfit(FAMILY, LATENT) is not None
    save_copy("m64-keys", new_name="k", user_dir=tmp_path, model=info)
    with pytest.raises(PresetError, match=r"made for model 'test-m64', not this model"):
        find_preset("k", user_dir=tmp_path, model=plain)


def test_the_bundled_models_default_bank_holds_its_own_timbres_on_their_programs() -> None:
    info = read_info(model_path())
    assert info.family == "bundled-fluidr3" and len(info.timbres) == 16
    bank = find_bank("default", user_dir=Path("/nonexistent"), model=info)
    assert bank.notice == ""
    assert bank.programs[0] == "fluid-piano" and bank.variations[1][0] == "fluid-piano-soft"
    assert bank.programs[1] == "felt-keys" and bank.programs[15] == "keys-to-bell"
    assert bank.presets["fluid-piano"].path is None  # the model's own, not the shipped file
    assert bank.presets["fluid-piano"].latent == info.timbres[1].latent


def test_render_without_a_preset_on_the_bundled_model(
    user_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = [(0.0, mido.Message("program_change", program=40))]
    messages += [(0.0, mido.Message("note_on", note=60, velocity=100))]
    messages += [(0.5, mido.Message("note_off", note=60))]
    midi = write_midi(tmp_path / "violin.mid", messages)
    out = tmp_path / "violin.wav"
    assert _render(None, midi, out) == 0
    captured = capsys.readouterr()
    assert "skipped" not in captured.err and "channel  1: fluid-violin (1 notes)" in captured.out
    audio, _ = sf.read(out, dtype="float32")
    assert np.sqrt(np.mean(audio**2)) > 1e-3


def test_play_without_a_preset_on_a_64_latent_model(
    jack_server: JackServer, model64: Path, tmp_path: Path
) -> None:
    """Through the JACK rig: the default bank on the 64-latent model plays its own program 0."""
    info = read_info(model64)
    bank = find_bank("default", user_dir=tmp_path / "user", model=info)
    model = load_model(model64)
    with playing(model, tmp_path / "notes", bank=bank) as (player, sender):
        timbre = player.engine.timbre
        assert timbre.name == "m64-keys"
        expected = note(player, timbre, 60)
        captured = record(sender, [(0.05, [0x90, 60, 110]), (0.45, [0x80, 60, 0])], seconds=1.0)
        start = onset(captured)
        body = captured[start + round(0.02 * 48000) : start + round(0.3 * 48000)]
        score, _ = match(body, expected[: round(0.5 * 48000)])
        assert score > 0.9, score


def test_cache_warm_takes_the_models_own_timbres_by_name(
    model64: Path, user_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["cache", "warm", "--model", str(model64), "--cache-dir", str(tmp_path / "notes")]
    assert cli.main([*argv, "--sample-rate", str(RATE), "m64-strings"]) == 0
    out = capsys.readouterr().out
    assert "m64-strings" in out, out
    assert cli.main([*argv, "fluid-violin"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fluid-violin.yaml: made for model 'bundled-fluidr3'" in err
