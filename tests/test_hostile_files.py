"""Hostile files: presets, banks and MIDI files are shared, so every one is untrusted input.

Crafted files (alias bombs, deep nesting, oversize, absurd MIDI timing) must fail with one clear
line, quickly; fuzzed files (bytes of real files mutated by hypothesis) must either load as valid
data or raise the boundary's own error, never crash or hang. Checkpoint indexes are fuzzed in
tests/export/test_export_bundle.py, a checkpoint's experiment.json here. Runs are bounded
(``max_examples``) and each example has a deadline, so a hang fails the test instead of stalling CI.
"""

from __future__ import annotations

import math
import shutil
from datetime import timedelta
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gansynth_instrument import cli
from gansynth_instrument.errors import CheckpointError, MidiFileError, PresetError
from gansynth_instrument.offline.midi_file import MAX_MIDI_DURATION_S, midi_notes, read_midi
from gansynth_instrument.presets.bank import Bank
from gansynth_instrument.presets.bank_files import find_bank, load_bank_file
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_files import load_preset_file, shipped_presets_dir
from gansynth_instrument.presets.preset_yaml import MAX_FILE_BYTES

FUZZ = settings(
    max_examples=120,
    deadline=timedelta(seconds=5),  # generous for a shared machine; a hang never finishes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _laughs(levels: int, key: str = "gain_db") -> str:
    """A "billion laughs" preset: ``levels`` of 9 aliases each, in one field's value."""
    lines = ["name: bomb", "seed: 1", 'x0: &l0 ["lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    lines.append(f"{key}: *l{levels - 1}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (_laughs(10), "aliases"),  # 9**9 items: expanding it (even in a repr) never ends
        ("name: deep\nseed: 1\ngain_db: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested"),
        ("name: big\nseed: 1\n#" + "x" * MAX_FILE_BYTES + "\n", "larger than"),
        ("name: obj\nseed: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ],
)
def test_crafted_preset_files_fail_in_one_line(text: str, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(text)
    with pytest.raises(PresetError) as err:
        load_preset_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("gain_db", "1.0e+308", "outside"),
        ("gain_db", ".inf", "expected a number"),
        ("release_s", ".nan", "expected a number"),
        ("latent", "[1.0, 1.0e+39]", "not a finite float32"),
        ("latent", "[.nan]", "not a finite float32"),
        ("program", "99999999999999999999999", "outside"),
    ],
)
def test_absurd_preset_values_name_the_field(
    field: str, value: str, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / "odd.yaml"
    timbre = "" if field == "latent" else "seed: 1\n"
    path.write_text(f"name: odd\n{timbre}{field}: {value}\n")
    with pytest.raises(PresetError, match=f"field '{field}'.*{problem}"):
        load_preset_file(path)


def test_a_bank_with_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bank.yaml"
    path.write_text(_laughs(10, key="programs").replace("seed: 1\n", ""))
    with pytest.raises(PresetError, match="aliases"):
        find_bank(path)


def _mutated(data: bytes, draw: st.DrawFn) -> bytes:
    """Random byte damage: overwrite, insert or delete a few bytes, maybe truncate."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        action = draw(st.sampled_from(["set", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if action == "set" and out:
            out[at] = byte
        elif action == "insert":
            out.insert(at, byte)
        elif out:
            del out[at]
    if draw(st.booleans()):
        out = out[: draw(st.integers(0, len(out)))]
    return bytes(out)


_PRESET_SOURCES = sorted(shipped_presets_dir().glob("*.yaml"))
_LATENT_PRESET = Preset("between", seed=None, latent=(0.5, -1.25, 3.0e-3, 2.0), gain_db=-3.0)


@FUZZ
@given(data=st.data())
def test_mutated_presets_load_or_raise_preset_error(tmp_path: Path, data: st.DataObject) -> None:
    sources = [p.read_bytes() for p in _PRESET_SOURCES] + [_LATENT_PRESET.to_yaml().encode()]
    original = data.draw(st.sampled_from(sources))
    path = tmp_path / "fuzzed.yaml"
    path.write_bytes(_mutated(original, data.draw))
    try:
        preset = load_preset_file(path)
    except PresetError as err:
        assert "\n" not in str(err)
        return
    assert math.isfinite(preset.gain_db) and math.isfinite(preset.release_s)


@FUZZ
@given(data=st.data())
def test_mutated_banks_load_or_raise_preset_error(tmp_path: Path, data: st.DataObject) -> None:
    original = (shipped_presets_dir() / "banks" / "default.yaml").read_bytes()
    path = tmp_path / "fuzzed.yaml"
    path.write_bytes(_mutated(original, data.draw))
    try:
        bank = load_bank_file(path, user_dir=tmp_path / "no-user-presets")
    except PresetError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(bank, Bank) and all(0 <= p <= 127 for p in bank.programs)


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.dates(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(["name", "seed", "latent", "gain_db", "attack_s", "release_s", "program"]),
        _yaml_values,
    )
)
def test_any_parsed_values_make_a_preset_or_a_preset_error(fields: dict) -> None:
    """Whatever types a safe YAML load can produce, in any field: a Preset or a PresetError."""
    try:
        Preset.from_dict(fields, "fuzz.yaml", Path("fuzz.yaml"))
    except PresetError as err:
        assert str(err).startswith("fuzz.yaml: ") and "\n" not in str(err)


# --- MIDI files ---------------------------------------------------------------------------------


def _midi(path: Path, messages: list[mido.Message], *, ticks_per_beat: int = 480) -> Path:
    """A type-0 file; the time division is patched into the header (mido writes it signed)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack(messages))
    mid.save(path)
    data = bytearray(path.read_bytes())
    data[12:14] = ticks_per_beat.to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return path


_ON = mido.Message("note_on", note=60, velocity=100)
_OFF = mido.Message("note_off", note=60, time=480)
_MAX_DELTA = 0x0FFFFFFF  # the largest variable-length quantity a delta time can hold


@pytest.mark.parametrize(
    ("messages", "ticks_per_beat", "problem"),
    [
        ([mido.MetaMessage("set_tempo", tempo=0), _ON, _OFF], 480, "tempo 0"),
        ([_ON, _OFF.copy(time=_MAX_DELTA)], 480, "files longer than"),
        ([mido.MetaMessage("set_tempo", tempo=0xFFFFFF), _ON, _OFF], 480, None),  # slow, short
        (
            [mido.MetaMessage("set_tempo", tempo=0xFFFFFF), _ON, _OFF.copy(time=_MAX_DELTA)],
            1,
            "files longer than",
        ),
        ([_ON, _OFF], 0, "time division 0"),
        ([_ON, _OFF], 0xE728, "time division"),  # SMPTE: 25 fps, 40 ticks per frame
    ],
)
@pytest.mark.parametrize("magenta", [False, True], ids=["engine", "magenta"])
def test_absurd_midi_timing_is_one_line_for_both_renderers(
    messages: list[mido.Message],
    ticks_per_beat: int,
    problem: str | None,
    magenta: bool,
    tiny_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    midi = _midi(tmp_path / "song.mid", messages, ticks_per_beat=ticks_per_beat)
    if problem is None:  # the slowest legal tempo is music, not an attack
        assert read_midi(midi)[-1].time_s == pytest.approx(0xFFFFFF / 1e6)  # one beat
        return
    out = tmp_path / "out.wav"
    argv = ["render", midi, "-o", out, "--model", tiny_model, "--cache-dir", tmp_path / "c"]
    code = cli.main([str(a) for a in argv] + (["--magenta"] if magenta else []))
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert f"render: error: {midi}: " in err and problem in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mid"]


@FUZZ
@given(data=st.data())
def test_mutated_midi_files_read_or_raise_midi_file_error(
    magenta_tiny: Path, tmp_path: Path, data: st.DataObject
) -> None:
    original = (magenta_tiny / "midi_input.mid").read_bytes()
    path = tmp_path / "fuzzed.mid"
    path.write_bytes(_mutated(original, data.draw))
    try:
        events = read_midi(path)
    except MidiFileError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err)
        return
    assert all(0.0 <= e.time_s <= MAX_MIDI_DURATION_S for e in events)
    for note in midi_notes(events):
        assert 0 <= note.pitch <= 127 and note.start_s < note.end_s


# --- checkpoint JSON --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_copy(tmp_path_factory: pytest.TempPathFactory, magenta_tiny: Path) -> Path:
    dest = tmp_path_factory.mktemp("ckpt") / "magenta-tiny"
    shutil.copytree(magenta_tiny, dest, ignore=shutil.ignore_patterns("*.npz", "*.wav", "*.mid"))
    shutil.rmtree(dest / "stage_00011")
    return dest


def test_deeply_nested_experiment_json_is_one_line(checkpoint_copy: Path) -> None:
    from gansynth_instrument.export.checkpoint import read_checkpoint

    flags = checkpoint_copy / "experiment.json"
    original = flags.read_bytes()
    try:
        flags.write_text('{"fmap_base": ' + "[" * 100_000 + "]" * 100_000 + "}")
        with pytest.raises(CheckpointError, match=r"experiment\.json: JSON nested too deeply"):
            read_checkpoint(checkpoint_copy)
    finally:
        flags.write_bytes(original)


@FUZZ
@given(data=st.data())
def test_mutated_experiment_json_reads_or_raises_checkpoint_error(
    checkpoint_copy: Path, data: st.DataObject
) -> None:
    from gansynth_instrument.export.checkpoint import read_checkpoint

    flags = checkpoint_copy / "experiment.json"
    original = flags.read_bytes()
    flags.write_bytes(_mutated(original, data.draw))
    try:
        read_checkpoint(checkpoint_copy)
    except CheckpointError as err:
        assert "\n" not in str(err)
    finally:
        flags.write_bytes(original)
