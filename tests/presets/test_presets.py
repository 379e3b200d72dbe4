"""Presets and banks: validation with file+field errors, lookup order, atomic saves, the CLI."""

from __future__ import annotations

import datetime
from pathlib import Path

import mido
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gansynth_instrument import cli
from gansynth_instrument.errors import OutputError, PresetError
from gansynth_instrument.model.latent import random_latent, slerp
from gansynth_instrument.model.metadata import ModelTimbre
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets import explore, preset_saving
from gansynth_instrument.presets.bank import BANK_HEADER, Bank, bank_text
from gansynth_instrument.presets.bank_files import (
    find_bank,
    list_banks,
    save_knob_cc,
    save_morph_cc,
)
from gansynth_instrument.presets.kit import Kit
from gansynth_instrument.presets.preset import Preset, preset_between
from gansynth_instrument.presets.preset_files import (
    find_preset,
    is_shipped,
    list_presets,
    load_preset_file,
    shipped_presets_dir,
    timbre_preset,
)
from gansynth_instrument.presets.preset_saving import (
    check_free,
    create_preset,
    delete_preset,
    name_holder,
    save_copy,
    save_preset,
)


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    return tmp_path / "user-presets"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_presets_and_default_bank_are_valid() -> None:
    presets = list_presets(user_dir=Path("/nonexistent"))
    assert len(presets) >= 8
    assert all(is_shipped(p) for p in presets)
    programs = [(p.bank, p.program) for p in presets]
    assert all(p is not None and 0 <= p <= 127 for _, p in programs)
    assert len(set(programs)) == len(programs), "two shipped presets share a bank and program"
    bank = find_bank("default")
    assert bank.morph_cc == 1 and bank.morph_steps == 17 and len(bank.morph_path) >= 2
    assert {find_preset(n).name for n in bank.preset_names()} == set(bank.preset_names())
    # The bank maps each shipped preset on its own program number.
    assert {prog: find_preset(name).program for prog, name in bank.programs.items()} == {
        prog: prog for prog in bank.programs
    }
    # The bundled model's trained presets on their General MIDI programs; soft ones in bank 1.
    gm = {0: "piano", 4: "electric-piano", 19: "church-organ", 24: "nylon-guitar"}
    gm |= {32: "acoustic-bass", 40: "violin", 56: "trumpet", 73: "flute"}
    assert {p: bank.programs[p] for p in gm} == {p: f"fluid-{n}" for p, n in gm.items()}
    assert bank.variations == {1: {p: f"fluid-{n}-soft" for p, n in gm.items()}}
    assert [b.name for b in list_banks()] == ["default"]


def test_seed_preset_is_random_latent_of_its_seed() -> None:
    preset = find_preset("felt-keys")
    assert preset.seed is not None
    np.testing.assert_array_equal(preset.latent_vector(256), random_latent(preset.seed, 256))


@pytest.mark.parametrize(
    "preset",
    [
        Preset("seeded", seed=123, latent=None, gain_db=-3.5, program=7, description="x: y"),
        Preset("vector", seed=None, latent=tuple(random_latent(9, 16).tolist()), release_s=2.0),
    ],
)
def test_yaml_round_trip_is_exact(preset: Preset, user_dir: Path) -> None:
    path = save_preset(preset, user_dir)
    assert path == user_dir / f"{preset.name}.yaml"
    loaded = load_preset_file(path)
    assert loaded == preset
    if preset.latent is not None:
        np.testing.assert_array_equal(loaded.latent_vector(16), np.float32(preset.latent))
    assert [p.name for p in user_dir.iterdir()] == [path.name]  # no temporary left behind


_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}", fullmatch=True)
_floats = st.floats(allow_nan=False, allow_infinity=False, width=32)
_presets = st.builds(
    Preset,
    name=_names,
    seed=st.none(),
    latent=st.lists(_floats, min_size=1, max_size=40).filter(any).map(tuple),
    gain_db=st.floats(-60, 24),
    attack_s=st.floats(0, 4),
    release_s=st.floats(0, 10),
    program=st.none() | st.integers(0, 127),
    description=st.text(max_size=30),
    loop=st.booleans(),
) | st.builds(Preset, name=_names, seed=st.integers(0, 2**32 - 1), latent=st.none())


@settings(max_examples=60, deadline=None)
@given(preset=_presets)
def test_any_valid_preset_survives_save_and_load(preset: Preset, tmp_path_factory) -> None:
    path = save_preset(preset, tmp_path_factory.mktemp("roundtrip"))
    assert load_preset_file(path) == preset


GOOD = "name: bad\nseed: 1\n"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("seed: 1\n", "'name'"),
        ("name: bad\n", "'seed' and 'latent'"),
        ("name: bad\nseed: 1\nlatent: [1.0, 2.0]\n", "'seed' and 'latent'"),
        ("name: bad\nlatent: [1.0, .nan]\n", "'latent'"),
        ("name: bad\nlatent: [1.0, high]\n", "'latent'"),
        ("name: bad\nlatent: [0.0, 0.0]\n", "'latent'"),
        ("name: bad\nseed: -1\n", "'seed'"),
        ("name: bad\nseed: 1.5\n", "'seed'"),
        (GOOD + "gain_db: 40\n", "'gain_db'"),
        (GOOD + "gain_db: loud\n", "'gain_db'"),
        (GOOD + "attack_s: -0.1\n", "'attack_s'"),
        (GOOD + "release_s: .inf\n", "'release_s'"),
        (GOOD + "program: 128\n", "'program'"),
        (GOOD + "program: true\n", "'program'"),
        (GOOD + "gain: 3\n", "'gain'"),
        (GOOD + "loop: 1\n", "'loop'"),
        (GOOD + "loop: sometimes\n", "'loop'"),
        ("name: other\nseed: 1\n", "'name'"),
        ("name: bad\nseed: [1\n", "not valid YAML"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_bad_preset_file_names_file_and_field(text: str, field: str, user_dir: Path) -> None:
    path = _write(user_dir / "bad.yaml", text)
    with pytest.raises(PresetError) as err:
        find_preset("bad", user_dir=user_dir)
    message = str(err.value)
    assert str(path) in message and field in message
    assert "\n" not in message


def test_latent_length_must_match_model(user_dir: Path) -> None:
    path = _write(user_dir / "short.yaml", "name: short\nlatent: [1.0, 2.0, 3.0]\n")
    preset = find_preset("short", user_dir=user_dir)
    np.testing.assert_array_equal(preset.latent_vector(3), np.float32([1, 2, 3]))
    with pytest.raises(PresetError, match=r"short\.yaml: field 'latent': 3 values.*expects 256"):
        preset.latent_vector(256)
    assert path.is_file()


def test_lookup_order_path_then_user_then_shipped(user_dir: Path, tmp_path: Path) -> None:
    shipped = find_preset("glass-bell", user_dir=user_dir)
    assert is_shipped(shipped)
    save_preset(shipped.copy(gain_db=-12.0), user_dir)
    mine = find_preset("glass-bell", user_dir=user_dir)
    assert mine.gain_db == -12.0 and not is_shipped(mine)
    assert [p.gain_db for p in list_presets(user_dir=user_dir) if p.name == "glass-bell"] == [-12.0]
    elsewhere = _write(tmp_path / "x" / "loose.yaml", "name: whatever\nseed: 5\n")
    assert find_preset(str(elsewhere), user_dir=user_dir).seed == 5
    with pytest.raises(PresetError, match=r"unknown preset 'nope' \(known: .*felt-keys"):
        find_preset("nope", user_dir=user_dir)
    with pytest.raises(PresetError, match="no such file"):
        find_preset(tmp_path / "missing.yaml", user_dir=user_dir)


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(user_dir: Path) -> None:
    save_preset(Preset("keep", seed=1, latent=None), user_dir)
    before = (user_dir / "keep.yaml").read_bytes()
    blocker = user_dir / "blocked.yaml"
    blocker.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OutputError, match=r"blocked\.yaml"):
        save_preset(Preset("blocked", seed=2, latent=None), user_dir)
    assert (user_dir / "keep.yaml").read_bytes() == before
    assert sorted(p.name for p in user_dir.iterdir()) == ["blocked.yaml", "keep.yaml"]


def test_shipped_presets_are_read_only(user_dir: Path) -> None:
    with pytest.raises(PresetError, match="read-only"):
        save_preset(find_preset("felt-keys"), shipped_presets_dir())
    with pytest.raises(PresetError, match=r"shipped preset.*read-only"):
        delete_preset("felt-keys", user_dir=user_dir)
    assert (shipped_presets_dir() / "felt-keys.yaml").is_file()
    save_copy("felt-keys", changes={"release_s": 1.0}, user_dir=user_dir)
    assert delete_preset("felt-keys", user_dir=user_dir) == user_dir / "felt-keys.yaml"
    assert is_shipped(find_preset("felt-keys", user_dir=user_dir))  # the shipped one is back


def test_between_follows_the_slerp_path() -> None:
    a, b = find_preset("felt-keys"), find_preset("slow-pad")
    mid = preset_between("mid", a, b, 0.25, 256)
    expected = slerp(a.latent_vector(256), b.latent_vector(256), 0.25)
    np.testing.assert_allclose(mid.latent_vector(256), expected, rtol=0, atol=1e-6)
    assert mid.gain_db == pytest.approx(a.gain_db + 0.25 * (b.gain_db - a.gain_db))
    np.testing.assert_array_equal(
        preset_between("start", a, b, 0.0, 256).latent_vector(256), a.latent_vector(256)
    )
    with pytest.raises(PresetError, match="between 0 and 1"):
        preset_between("far", a, b, 1.5, 256)


def test_create_refuses_to_overwrite_without_force(user_dir: Path) -> None:
    create_preset("mine", seed=5, user_dir=user_dir)
    with pytest.raises(PresetError, match="exists"):
        create_preset("mine", seed=6, user_dir=user_dir)
    create_preset("mine", seed=6, force=True, user_dir=user_dir)
    assert find_preset("mine", user_dir=user_dir).seed == 6
    with pytest.raises(PresetError, match="exactly one"):
        create_preset("two", seed=1, random=True, user_dir=user_dir)


def test_new_with_a_shipped_name_refuses_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    user = tmp_path / "gansynth-instrument" / "presets"
    assert cli.main(["presets", "new", "fluid-piano", "--seed", "3"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'fluid-piano' is a shipped preset" in err and "--force" in err
    assert not user.exists() and find_preset("fluid-piano").latent is not None
    assert cli.main(["presets", "new", "fluid-piano", "--seed", "3", "--force"]) == 0
    assert find_preset("fluid-piano").seed == 3 and (user / "fluid-piano.yaml").is_file()


def test_every_save_by_a_new_name_asks_the_one_rule(
    user_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``presets new``, ``presets save``, the browser and OSC (``check_free("save")``) and the
    save button's generated names refuse the same taken names, in the same words."""
    create_preset("mine", seed=5, user_dir=user_dir)
    mine = user_dir / "mine.yaml"
    shipped = shipped_presets_dir() / "felt-keys.yaml"
    assert name_holder("mine", user_dir=user_dir) == mine
    assert name_holder("felt-keys", user_dir=user_dir) == shipped
    assert name_holder("felt-keys", user_dir=user_dir, shipped=False) is None
    assert name_holder("free", user_dir=user_dir) is None
    taken = f"{mine}: a user preset 'mine' exists already"
    with pytest.raises(PresetError) as new:
        create_preset("mine", seed=6, user_dir=user_dir)
    assert str(new.value) == f"presets new: {taken} (--force to replace it, or choose another name)"
    with pytest.raises(PresetError) as copy:
        save_copy("felt-keys", new_name="mine", user_dir=user_dir)
    assert (
        str(copy.value) == f"presets save: {taken} (--force to replace it, or choose another name)"
    )
    with pytest.raises(PresetError) as page:
        check_free("save", "mine", user_dir=user_dir)
    assert str(page.value) == f"save: {taken} (choose another name)"
    shadowing = "'felt-keys' is a shipped preset; a new one of that name would take its place"
    for where, refuse in (
        ("presets new", lambda: create_preset("felt-keys", seed=1, user_dir=user_dir)),
        ("save", lambda: check_free("save", "felt-keys", user_dir=user_dir)),
    ):
        with pytest.raises(PresetError, match=f"^{where}: {shadowing}"):
            refuse()
    with pytest.raises(PresetError, match=r"^save: field 'name': '\.\./x' is not a valid name"):
        check_free("save", "../x", user_dir=user_dir)
    assert find_preset("mine", user_dir=user_dir).seed == 5  # nothing was overwritten
    # The save button's generated name passes over a shipped one as over the user's.
    fake_shipped = _write(tmp_path / "shipped" / "found-20260101-120000.yaml", "")
    monkeypatch.setattr(preset_saving, "shipped_presets_dir", lambda: fake_shipped.parent)
    when = datetime.datetime(2026, 1, 1, 12, 0, 0)
    assert explore.found_name(user_dir, when) == "found-20260101-120000-2"


def test_one_builder_makes_presets_of_what_plays_and_of_a_model_timbre(user_dir: Path) -> None:
    latent = (random_latent(7) * np.float32(1.1)).astype(np.float32)
    playing = Timbre("random-7", latent, gain_db=-2.0, attack_s=0.05, release_s=0.5, loop=True)
    kept = timbre_preset(playing, "kept", note="knobs 1=+1", model="fam")
    assert (kept.name, kept.seed, kept.model) == ("kept", None, "fam")
    assert kept.description == "from random-7, knobs 1=+1"
    assert (kept.gain_db, kept.attack_s, kept.release_s, kept.loop) == (-2.0, 0.05, 0.5, True)
    save_preset(kept, user_dir)
    assert np.array_equal(find_preset("kept", user_dir=user_dir).latent_vector(), latent)
    own = ModelTimbre("m-strings", "strings", tuple(latent.tolist()), 48, "strings, trained", 1)
    assert timbre_preset(own, model="fam") == Preset(
        "m-strings",
        None,
        own.latent,
        program=48,
        bank=1,
        description="strings, trained",
        model="fam",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: p\nseed: 1\ncolour: red\n",
            "unknown field 'colour' (known: name, description, seed,",
        ),
        ("name: b\nprograms: {}\ncolour: red\n", "unknown field 'colour' (known: name, desc"),
        ("name: b\nmorph: {path: [a, b], speed: 2}\n", "unknown field 'morph.speed' (known: pa"),
        ("name: b\nmorph: [a, b]\n", "field 'morph': expected a mapping (path:, cc:, steps:)"),
        ("name: b\npad: 3\n", "field 'pad': expected a mapping (corners:, cc:, size:)"),
        ("name: b\nknobs: {cc: [], size: 2}\n", "unknown field 'knobs.size' (known: cc)"),
        ("name: b\nknobs: [70]\n", "field 'knobs': expected a mapping (cc:)"),
        ("name: k\nkit: {}\ncolour: red\n", "unknown field 'colour' (known: name, descrip"),
        (
            "name: k\nkit: {36: {preset: felt-keys, pitch: 36, decay_ms: 9, x: 1}}\n",
            "unknown field 'kit.36.x' (known: preset, pitch, hold_ms, decay_ms, gain_db)",
        ),
    ],
)
def test_each_file_names_its_unknown_or_misshapen_field_alike(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path / "f.yaml", text)
    kind = {"p": Preset, "b": Bank, "k": Kit}[text.split("\n")[0].removeprefix("name: ")]
    with pytest.raises(PresetError) as err:
        kind.from_dict(yaml.safe_load(text), str(path), path)
    assert str(err.value).startswith(f"{path}: {message}")


def test_bank_variations_and_drums_round_trip_and_resolve(user_dir: Path) -> None:
    bank = Bank("gm", {0: "felt-keys"}, variations={1: {0: "glass-bell"}}, drums="slow-pad")
    _write(user_dir / "banks" / "gm.yaml", bank.to_yaml())
    assert find_bank("gm", user_dir=user_dir) == bank
    assert bank.preset_names() == ["felt-keys", "glass-bell", "slow-pad"]
    _write(user_dir / "banks" / "bad.yaml", "name: bad\nprograms: {}\ndrums: no-such\n")
    with pytest.raises(PresetError, match="field 'drums'"):
        find_bank("bad", user_dir=user_dir)
    _write(user_dir / "banks" / "bad2.yaml", "name: bad2\nprograms: {}\nvariations: {0: {}}\n")
    with pytest.raises(PresetError, match="field 'variations'"):
        find_bank("bad2", user_dir=user_dir)


@pytest.mark.parametrize(
    ("morph", "field"),
    [
        ("morph: {path: [felt-keys]}\n", "'morph.path'"),
        ("morph: {path: [felt-keys, nope]}\n", "'morph.path'"),
        ("morph: {path: [felt-keys, slow-pad], cc: 64}\n", "'morph.cc'"),
        ("morph: {path: [felt-keys, slow-pad], steps: 1}\n", "'morph.steps'"),
        ("morph: {path: [felt-keys, slow-pad], speed: 1}\n", "'morph.speed'"),
        ("programs: {5: nope}\n", "'programs.5'"),
        ("programs: {200: felt-keys}\n", "'programs'"),
    ],
)
def test_bad_bank_names_file_and_field(morph: str, field: str, user_dir: Path) -> None:
    path = _write(user_dir / "banks" / "b.yaml", "name: b\n" + morph)
    with pytest.raises(PresetError) as err:
        find_bank("b", user_dir=user_dir)
    assert str(path) in str(err.value) and field in str(err.value)


def test_default_bank_takes_programs_from_the_presets(user_dir: Path) -> None:
    shipped = find_bank("default", user_dir=user_dir).programs
    assert shipped[0] == "fluid-piano" and 5 not in shipped
    create_preset("mine", seed=1, changes={"program": 5}, user_dir=user_dir)
    create_preset("my-keys", seed=2, changes={"program": 0}, user_dir=user_dir)
    programs = find_bank("default", user_dir=user_dir).programs
    assert programs == {**shipped, 5: "mine", 0: "my-keys"}
    create_preset("clash", seed=3, changes={"program": 5}, user_dir=user_dir)
    with pytest.raises(
        PresetError, match=r"(clash|mine)\.yaml: field 'program': bank 0 program 5 is also"
    ):
        find_bank("default", user_dir=user_dir)


def test_bank_programs_must_be_a_mapping(user_dir: Path) -> None:
    path = _write(user_dir / "banks" / "b.yaml", "name: b\nprograms: [felt-keys, slow-pad]\n")
    with pytest.raises(PresetError, match=rf"{path}: field 'programs'"):
        find_bank("b", user_dir=user_dir)


def test_bank_round_trip(user_dir: Path) -> None:
    bank = Bank("live", {0: "felt-keys", 1: "slow-pad"}, ("felt-keys", "slow-pad"), 11, 9)
    path = _write(user_dir / "banks" / "live.yaml", bank.to_yaml())
    assert find_bank("live", user_dir=user_dir) == bank
    assert yaml.safe_load(path.read_text())["morph"] == {
        "path": ["felt-keys", "slow-pad"],
        "cc": 11,
        "steps": 9,
    }


def test_cli_presets_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    user = tmp_path / "gansynth-instrument" / "presets"
    assert cli.main(["presets", "new", "warm", "--seed", "11", "--gain-db", "-2"]) == 0
    assert (
        cli.main(["presets", "new", "half", "--between", "warm", "felt-keys", "--at", "0.5"]) == 0
    )
    assert cli.main(["presets", "new", "dice", "--random", "--program", "9"]) == 0
    assert cli.main(["presets", "save", "half", "--as", "half2", "--release-s", "1.25"]) == 0
    assert cli.main(["presets", "new", "pad", "--seed", "3", "--loop"]) == 0
    assert cli.main(["presets", "save", "pad", "--as", "pad2", "--no-loop"]) == 0
    out = capsys.readouterr().out
    assert find_preset("pad").loop and not find_preset("pad2").loop
    assert f"wrote {user / 'warm.yaml'} (seed 11)" in out
    assert find_preset("half2").release_s == 1.25 and find_preset("half2").latent is not None
    assert 0 <= find_preset("dice").seed < 2**32 and find_preset("dice").program == 9

    assert cli.main(["presets", "list"]) == 0
    listing = capsys.readouterr().out
    assert "warm" in listing and "felt-keys" in listing and "default" in listing

    assert cli.main(["presets", "show", "warm"]) == 0
    shown = capsys.readouterr().out
    assert yaml.safe_load(shown)["seed"] == 11

    assert cli.main(["presets", "rm", "warm"]) == 0
    assert not (user / "warm.yaml").exists()
    capsys.readouterr()
    for argv in (["presets", "rm", "felt-keys"], ["presets", "show", "warm"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("gansynth-instrument presets: error:") and err.count("\n") == 1


def test_loop_is_off_unless_set_and_written_only_when_on(user_dir: Path) -> None:
    assert not find_preset("felt-keys", user_dir=user_dir).loop
    path = _write(user_dir / "pad.yaml", "name: pad\nseed: 4\nloop: true\n")
    assert find_preset("pad", user_dir=user_dir).loop
    assert "loop: true" in save_preset(find_preset(path), user_dir).read_text()
    assert "loop" not in Preset("plain", seed=4, latent=None).to_yaml()


def test_learned_cc_of_a_shipped_bank_goes_to_a_user_copy_that_is_found_first(
    user_dir: Path,
) -> None:
    shipped = find_bank("default", user_dir=user_dir)
    shipped_bytes = shipped.path.read_bytes()
    path = save_morph_cc(shipped, 74, user_dir=user_dir)
    assert path == user_dir / "banks" / "default.yaml"
    assert shipped.path.read_bytes() == shipped_bytes  # the shipped file is never modified
    mine = find_bank("default", user_dir=user_dir)
    assert mine.path == path and not is_shipped(mine) and mine.morph_cc == 74
    assert (mine.morph_path, mine.programs) == (shipped.morph_path, shipped.programs)
    text = path.read_text()
    assert "programs: presets" in text and "# Program change N" in text  # its own text, kept
    # Learning again edits the user copy in place; the user's presets still join in.
    assert save_morph_cc(mine, 21, user_dir=user_dir) == path
    create_preset("mine", seed=1, changes={"program": 5}, user_dir=user_dir)
    again = find_bank("default", user_dir=user_dir)
    assert again.morph_cc == 21 and again.programs[5] == "mine"
    assert shipped.path.read_bytes() == shipped_bytes


def test_every_bank_save_goes_through_one_writer_under_one_header(
    tmp_path: Path, user_dir: Path
) -> None:
    made = Bank("made", {0: "felt-keys"}, morph_path=("felt-keys", "slow-pad"))
    assert made.to_yaml() == bank_text(made.to_dict()) and made.to_yaml().startswith(BANK_HEADER)
    # A bank built in code: a learned morph controller, then a knob, go to the user copy.
    path = save_morph_cc(made, 7, user_dir=user_dir)
    assert save_knob_cc(find_bank("made", user_dir=user_dir), 0, 30, user_dir=user_dir) == path
    assert path == user_dir / "banks" / "made.yaml"
    text = path.read_text(encoding="utf-8")
    assert text == bank_text(yaml.safe_load(text))
    saved = find_bank("made", user_dir=user_dir)
    assert (saved.morph_cc, saved.knob_ccs[0], saved.programs) == (7, 30, made.programs)
    # A file whose one "cc:" line is all that changes keeps its text, comments included...
    own = "# my set\nname: gig\nprograms: presets\nmorph:\n  path: [felt-keys, slow-pad]\n  cc: 1\n"
    flow = _write(tmp_path / "gig.yaml", own)
    save_morph_cc(find_bank(str(flow), user_dir=user_dir), 11, user_dir=user_dir)
    assert flow.read_text(encoding="utf-8") == own.replace("cc: 1", "cc: 11")
    # ...and a knob learned on it writes its fields anew, under the header, its own kept.
    save_knob_cc(find_bank(str(flow), user_dir=user_dir), 7, 20, user_dir=user_dir)
    text = flow.read_text(encoding="utf-8")
    assert text.startswith(BANK_HEADER) and "programs: presets" in text and "# my set" not in text
    again = find_bank(str(flow), user_dir=user_dir)
    assert (again.morph_cc, again.knob_ccs[7]) == (11, 20)


def test_learned_cc_is_written_in_place_for_a_bank_read_from_a_path(
    tmp_path: Path, user_dir: Path
) -> None:
    flow = _write(
        tmp_path / "gig.yaml",
        "name: gig  # my set\nprograms: {0: felt-keys}\nmorph: {path: [felt-keys, slow-pad]}\n",
    )
    path = save_morph_cc(find_bank(str(flow), user_dir=user_dir), 7, user_dir=user_dir)
    assert path == flow and not (user_dir / "banks").exists()
    bank = find_bank(str(flow), user_dir=user_dir)  # no "cc:" line to edit: written anew
    assert bank.morph_cc == 7 and bank.programs == {0: "felt-keys"}
    assert bank.morph_path == ("felt-keys", "slow-pad")
    with pytest.raises(PresetError, match=r"'morph\.cc': CC64 is the sustain pedal"):
        save_morph_cc(bank, 64, user_dir=user_dir)
    no_morph = Bank("plain", {0: "felt-keys"})
    with pytest.raises(PresetError, match="no morph path"):
        save_morph_cc(no_morph, 7, user_dir=user_dir)


@pytest.mark.parametrize("text", ["\x85", "a\u2028b", "end\u2029", "line\nbreak"])
def test_descriptions_with_unicode_line_breaks_survive_save_and_load(text, tmp_path) -> None:
    # PyYAML reads a raw U+0085/U+2028/U+2029 back as a line break (hypothesis found '\x85').
    preset = Preset(name="nel", seed=1, latent=None, description=text)
    assert load_preset_file(save_preset(preset, tmp_path)).description == text


def _bad_user_files(user: Path) -> dict[str, Path]:
    """A user folder with one file of each kind that used to stop every command, and a good one."""
    create_preset("good", seed=4, changes={"program": 5}, user_dir=user)
    return {
        "huge": _write(user / "huge.yaml", "name: huge\ndescription: " + "x" * 1_100_000 + "\n"),
        "torn": _write(user / "torn.yaml", "name: torn\nseed: [1, 2\n"),
        "felt-keys": _write(user / "felt-keys.yaml", "name: other-name\nseed: 3\n"),
        "mine": _write(user / "banks" / "mine.yaml", "name: mine\nprograms: {0: [\n"),
    }


def test_a_broken_user_file_costs_that_file_alone(user_dir: Path) -> None:
    bad = _bad_user_files(user_dir)
    bank = find_bank("default", user_dir=user_dir)
    assert bank.programs[5] == "good" and "felt-keys" not in bank.preset_names()
    warnings = bank.notice.splitlines()
    assert len(warnings) == 3, warnings  # one per broken preset the bank would have read
    for name in ("huge", "torn", "felt-keys"):
        (line,) = [w for w in warnings if str(bad[name]) in w]
        assert line.startswith("warning: skipped a broken file: ")
    names = [p.name for p in list_presets(user_dir=user_dir)]
    assert "good" in names and "glass-bell" in names and "huge" not in names
    assert [b.name for b in list_banks(user_dir=user_dir)] == ["default"]
    for name in ("huge", "torn", "felt-keys"):  # naming a broken preset is the one failure
        with pytest.raises(PresetError, match=str(bad[name])):
            find_preset(name, user_dir=user_dir)
    with pytest.raises(PresetError, match=str(bad["mine"])):
        find_bank("mine", user_dir=user_dir)


def test_a_broken_user_bank_gives_way_to_the_shipped_one_it_hides(user_dir: Path) -> None:
    path = _write(user_dir / "banks" / "default.yaml", "name: default\nmorph: 3\n")
    bank = find_bank("default", user_dir=user_dir)
    assert is_shipped(bank) and bank.programs[0] == "fluid-piano"
    assert bank.notice.startswith(f"warning: skipped a broken file: {path}: field 'morph'")


def test_cli_lists_broken_files_and_renders_past_them(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from midi_writer import write_midi

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    bad = _bad_user_files(tmp_path / "gansynth-instrument" / "presets")
    assert cli.main(["presets", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    for name, path in bad.items():
        (line,) = [line for line in listing if line.startswith(f"{name} ") and "broken" in line]
        assert str(path) in line
    assert any(line.startswith("good ") for line in listing)

    on, off = mido.Message("note_on", note=60, velocity=100), mido.Message("note_off", note=60)
    midi = write_midi(tmp_path / "song.mid", [(0.0, on), (0.3, off)])
    out = tmp_path / "song.wav"
    argv = ["render", str(midi), "-o", str(out), "--model", str(tiny_model)]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert out.is_file()
    assert sum("warning: skipped a broken file" in line for line in err.splitlines()) == 3, err
    assert cli.main([*argv, "--preset", "torn"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad["torn"]) in err
