"""Knob stops and --knob specs; the XY pad's grid and edges; random and saved timbres."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tonemodel import ToneModel

from gansynth_instrument.errors import GansynthError, PresetError
from gansynth_instrument.live.config import Sounds
from gansynth_instrument.live.instrument import build_engine
from gansynth_instrument.live.mixer import Mixer
from gansynth_instrument.live.voices import Voices
from gansynth_instrument.model.latent import random_latent, slerp
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets import knobs, pad
from gansynth_instrument.presets.bank import Bank
from gansynth_instrument.presets.bank_files import find_bank, save_knob_cc
from gansynth_instrument.presets.explore import found_name, random_timbre, save_found
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_files import find_preset
from gansynth_instrument.presets.preset_saving import save_preset

# -- knobs ------------------------------------------------------------------------------------


def test_stops_cover_the_controller_with_an_exact_centre() -> None:
    stops = knobs.KNOB_STOPS
    assert knobs.nearest_stop(0) == 0 and knobs.nearest_stop(127) == stops - 1
    assert knobs.nearest_stop(64) == (stops - 1) // 2 and knobs.position(64) == (stops - 1) // 2
    assert knobs.stop_offset((stops - 1) // 2) == 0.0
    assert knobs.stop_offset(0) == -knobs.KNOB_SPAN
    assert knobs.stop_offset(stops - 1) == knobs.KNOB_SPAN
    offsets = [knobs.stop_offset(s) for s in range(stops)]
    assert np.allclose(np.diff(offsets), 2 * knobs.KNOB_SPAN / (stops - 1))
    positions = [knobs.position(v) for v in range(128)]
    assert positions == sorted(positions) and positions[-1] == stops - 1
    with pytest.raises(PresetError, match=r"controller value must be 0\.\.127, got 128"):
        knobs.position(128)
    with pytest.raises(PresetError, match=r"knob stop must be 0\.\.16, got 17"):
        knobs.stop_offset(17)
    for bad in (4, 1, True):
        with pytest.raises(PresetError, match="odd number"):
            knobs.check_stops(bad)


def test_knob_specs() -> None:
    assert knobs.parse_knob("1=+2.5", 8) == (0, 2.5)
    assert knobs.parse_knob(" 3 = -1 ", 8) == (2, -1.0)
    assert knobs.parse_knobs(["1=+2.5", "3=-1"], 8) == (2.5, 0.0, -1.0, 0, 0, 0, 0, 0)
    assert knobs.describe((2.5, 0.0, -1.0)) == "knobs 1=+2.5 3=-1"
    assert knobs.describe((0.0, 0.0)) == ""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("9=1", r"--knob '9=1': knob 9 is beyond this model's knobs \(1..8\)"),
        ("0=1", r"knob 0 is beyond"),
        ("1=nan", r"--knob '1=nan': offset 'nan' is not a finite number"),
        ("1=inf", r"offset 'inf' is not a finite number"),
        ("1=-1e999", r"offset '-1e999' is not a finite number"),
        ("1=loud", r"offset 'loud' is not a number"),
        ("one=1", r"knob 'one' is not a number 1..8"),
        ("1", r"expected KNOB=OFFSET"),
    ],
)
def test_bad_knob_specs_name_the_value(spec: str, message: str) -> None:
    with pytest.raises(PresetError, match=message):
        knobs.parse_knob(spec, 8)


def test_a_knob_given_twice_is_an_error() -> None:
    with pytest.raises(PresetError, match="knob 2 is given more than once"):
        knobs.parse_knobs(["2=1", "2=-1"], 8)


# -- pad ----------------------------------------------------------------------------------------


def test_pad_grid_is_the_bilinear_slerp_of_the_corners() -> None:
    corners = [random_latent(s) for s in (1, 2, 3, 4)]
    grid = pad.grid_latents(corners, 5)
    assert grid.shape == (5, 5, 256) and grid.dtype == np.float32
    # Corners exactly; edges are the slerp between their two corners.
    assert np.array_equal(grid[0, 0], corners[0]) and np.array_equal(grid[0, 4], corners[1])
    assert np.array_equal(grid[4, 0], corners[2]) and np.array_equal(grid[4, 4], corners[3])
    assert np.allclose(grid[0, 2], slerp(corners[0], corners[1], 0.5), atol=1e-6)
    assert np.allclose(grid[2, 0], slerp(corners[0], corners[2], 0.5), atol=1e-6)
    middle = slerp(slerp(corners[0], corners[1], 0.25), slerp(corners[2], corners[3], 0.25), 0.75)
    assert np.allclose(grid[3, 1], middle, atol=1e-6)
    with pytest.raises(PresetError, match="outside the 5×5 grid"):
        pad.point_latent(corners, (5, 0), 5)
    with pytest.raises(PresetError, match="needs 4 corner timbres, got 3"):
        pad.point_latent(corners[:3], (0, 0), 5)


def test_pad_edges_glide_between_neighbouring_points() -> None:
    assert pad.edge(2.0, 3.0) == ((2, 3), (2, 3), 0.0)  # on a point
    a, b, w = pad.edge(2.25, 3.0)  # on a row: along x
    assert (a, b) == ((2, 3), (3, 3)) and w == pytest.approx(0.25)
    a, b, w = pad.edge(4.0, 0.6)  # on a column: along y
    assert (a, b) == ((4, 0), (4, 1)) and w == pytest.approx(0.6)
    a, b, w = pad.edge(1.4, 5.1)  # nearer the row y=5 than the column x=1
    assert (a, b) == ((1, 5), (2, 5)) and w == pytest.approx(0.4)
    assert pad.edge(8.0, 8.0) == ((8, 8), (8, 8), 0.0)  # the far corner
    # Small moves never jump by more than a neighbour: a sweep along a diagonal stays on edges
    # whose ends are grid neighbours, and the mix moves continuously along each.
    for gx in np.linspace(0, 8, 97):
        a, b, w = pad.edge(gx, gx * 0.5)
        assert abs(a[0] - b[0]) + abs(a[1] - b[1]) <= 1 and 0.0 <= w < 1.0
    assert pad.grid_position(0, 127) == (0.0, 8.0)
    assert pad.grid_position(64, 32) == pytest.approx((64 * 8 / 127, 32 * 8 / 127))


def test_pad_controllers_must_not_collide() -> None:
    taken = {64: "the sustain pedal", 1: "the morph controller"}
    assert pad.check_ccs(16, 17, taken) == (16, 17)
    with pytest.raises(PresetError, match="pad y controller CC64 is already the sustain pedal"):
        pad.check_ccs(16, 64, taken)
    with pytest.raises(PresetError, match="pad x controller CC1 is already the morph controller"):
        pad.check_ccs(1, 17, taken)
    with pytest.raises(PresetError, match="pad x and y controllers are both CC16"):
        pad.check_ccs(16, 16, taken)
    with pytest.raises(PresetError, match=r"pad x controller must be CC0\.\.119, got 120"):
        pad.check_ccs(120, 17, taken)
    with pytest.raises(PresetError, match=r"pad size must be 2\.\.33"):
        pad.check_size(1)


# -- random and saved timbres -------------------------------------------------------------------

TEMPLATE = Timbre("start", random_latent(7), gain_db=-3.0, attack_s=0.02, loop=True)


def test_random_timbre_keeps_level_and_envelope() -> None:
    drawn = [random_timbre(TEMPLATE) for _ in range(3)]
    assert len({t.name for t in drawn}) == 3
    for t in drawn:
        seed = int(t.name.removeprefix("random-"))
        assert np.array_equal(t.latent, random_latent(seed))
        assert (t.gain_db, t.attack_s, t.release_s, t.loop) == (-3.0, 0.02, 0.3, True)


def test_saved_timbre_reloads_to_the_same_latent(tmp_path: Path) -> None:
    when = datetime.datetime(2026, 12, 3, 15, 4, 5)
    moved = (random_latent(7).astype(np.float64) + 1e-3 * np.arange(256)).astype(np.float32)
    found = Timbre("start knobs 1=+2.5", moved, gain_db=-3.0, attack_s=0.02)
    preset, path = save_found(found, note="knobs 1=+2.5", user_dir=tmp_path, now=when)
    assert preset.name == "found-20261203-150405" and path == tmp_path / f"{preset.name}.yaml"
    loaded = find_preset(preset.name, user_dir=tmp_path)
    assert np.array_equal(loaded.latent_vector(), moved)  # bit for bit
    assert loaded.description == "from start knobs 1=+2.5, knobs 1=+2.5"
    assert (loaded.gain_db, loaded.attack_s, loaded.program) == (-3.0, 0.02, None)
    # The same second again: a new name, the first file untouched.
    again, _ = save_found(TEMPLATE, user_dir=tmp_path, now=when)
    assert again.name == "found-20261203-150405-2" and again.loop
    assert find_preset(preset.name, user_dir=tmp_path) == loaded
    assert found_name(tmp_path, when) == "found-20261203-150405-3"


def _lock(directory: Path, locked: bool) -> None:
    """Make ``directory`` refuse new files for real: mode 0555, or immutable for root."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if locked else "-i", str(directory)], check=True)
    else:
        directory.chmod(0o555 if locked else 0o755)


def test_saving_into_a_read_only_folder_says_so_and_loses_nothing(tmp_path: Path) -> None:
    kept, _ = save_found(TEMPLATE, user_dir=tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    _lock(tmp_path, True)
    try:
        with pytest.raises(GansynthError, match=rf"{tmp_path}/found-.*cannot write") as err:
            save_found(TEMPLATE, user_dir=tmp_path)
    finally:
        _lock(tmp_path, False)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert find_preset(kept.name, user_dir=tmp_path) is not None


_FULL_FOLDER_SCRIPT = """
import resource, signal, sys
from pathlib import Path
from gansynth_instrument.errors import GansynthError
from gansynth_instrument.notes.cache import NoteCache
from gansynth_instrument.presets.explore import save_found
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.notes.timbre import Timbre

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-size write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))  # < one latent preset
try:
    save_found(Timbre("start", random_latent(1)), user_dir=Path(sys.argv[1]))
except GansynthError as err:
    print(err)
"""


def test_saving_into_a_full_folder_says_so_and_loses_nothing(tmp_path: Path) -> None:
    """A real write failure (file size limit → EFBIG), in a child process to spare pytest."""
    run = subprocess.run(
        [sys.executable, "-c", _FULL_FOLDER_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "cannot write (File too large)" in run.stdout and str(tmp_path) in run.stdout
    assert list(tmp_path.iterdir()) == []  # no half-written preset or temporary file


# -- a bank's pad ---------------------------------------------------------------------------------

_PAD_BANK = """name: padded
programs: {0: felt-keys}
morph: {path: [felt-keys, slow-pad], cc: 1}
pad:
  corners: [felt-keys, glass-bell, slow-pad, reed-organ]
"""


def test_a_bank_names_its_pad_corners(tmp_path: Path) -> None:
    path = tmp_path / "padded.yaml"
    path.write_text(_PAD_BANK + "  cc: [20, 21]\n  size: 5\n")
    bank = find_bank(str(path), user_dir=tmp_path)
    assert bank.pad_corners == ("felt-keys", "glass-bell", "slow-pad", "reed-organ")
    assert bank.pad_ccs == (20, 21) and bank.pad_size == 5
    assert "reed-organ" in bank.preset_names()
    again = Bank.from_dict(bank.to_dict(), "again")
    assert (again.pad_corners, again.pad_ccs, again.pad_size) == (bank.pad_corners, (20, 21), 5)
    path.write_text(_PAD_BANK)
    assert find_bank(str(path), user_dir=tmp_path).pad_ccs == pad.PAD_CCS


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  cc: [16, 64]\n", r"field 'pad': pad y controller CC64 is already the sustain pedal"),
        ("  cc: [1, 17]\n", r"field 'pad': pad x controller CC1 is already the morph controller"),
        ("  cc: [70, 17]\n", r"field 'pad': pad x controller CC70 is already knob 1"),
        ("  cc: [16, 80]\n", r"CC80 is already the random-timbre button"),
        ("  size: 1\n", r"pad size must be 2\.\.33 points per side, got 1"),
        ("  colour: red\n", r"unknown field 'pad\.colour'"),
    ],
)
def test_bad_pad_fields_name_the_value(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "padded.yaml"
    path.write_text(_PAD_BANK + extra)
    with pytest.raises(PresetError, match=message) as err:
        find_bank(str(path), user_dir=tmp_path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_pad_corners_must_be_four_known_presets(tmp_path: Path) -> None:
    path = tmp_path / "padded.yaml"
    path.write_text(_PAD_BANK.replace(", reed-organ", ""))
    with pytest.raises(
        PresetError, match=r"field 'pad.corners': needs 4 presets \(A B C D\), got 3"
    ):
        find_bank(str(path), user_dir=tmp_path)
    path.write_text(_PAD_BANK.replace("reed-organ", "no-such-preset"))
    with pytest.raises(PresetError, match=r"field 'pad.corners': unknown preset 'no-such-preset'"):
        find_bank(str(path), user_dir=tmp_path)


def test_a_bank_can_move_the_knobs_and_a_learned_knob_is_saved(tmp_path: Path) -> None:
    user = tmp_path / "user"
    path = tmp_path / "padded.yaml"
    path.write_text(_PAD_BANK + "knobs:\n  cc: [21, 22, 23, 24, 25, 26, 27, 28]\n")
    bank = find_bank(str(path), user_dir=user)
    assert bank.knob_ccs == (21, 22, 23, 24, 25, 26, 27, 28)
    # A shipped bank: the learned knob goes into the user copy; the shipped file is untouched.
    shipped = find_bank("default", user_dir=user)
    shipped_text = shipped.path.read_text()
    saved = save_knob_cc(shipped, 2, 30, user_dir=user)
    assert saved == user / "banks" / "default.yaml"
    copy = find_bank("default", user_dir=user)
    assert copy.knob_ccs == (70, 71, 30, 73, 74, 75, 76, 77)
    assert copy.programs == shipped.programs and copy.morph_path == shipped.morph_path
    assert "programs: presets" in saved.read_text() and shipped.path.read_text() == shipped_text
    # The copy, now a user bank, is edited in place.
    assert save_knob_cc(copy, 0, 31, user_dir=user) == saved
    assert find_bank("default", user_dir=user).knob_ccs[:3] == (31, 71, 30)


@pytest.mark.parametrize(
    ("ccs", "message"),
    [
        ("[21, 22, 23]", r"field 'knobs.cc': needs 8 controllers, got 3"),
        ("[64, 22, 23, 24, 25, 26, 27, 28]", r"knob 1's CC64 is the sustain pedal"),
        ("[21, 80, 23, 24, 25, 26, 27, 28]", r"knob 2's CC80 is the random-timbre button"),
        ("[21, 21, 23, 24, 25, 26, 27, 28]", r"knob 2's CC21 is knob 1's too"),
        ("[21, 22, 23, 24, 25, 26, 27, 16]", r"pad x controller CC16 is already knob 8"),
    ],
)
def test_bad_knob_controllers_name_the_value(tmp_path: Path, ccs: str, message: str) -> None:
    path = tmp_path / "padded.yaml"
    path.write_text(_PAD_BANK + f"knobs:\n  cc: {ccs}\n")
    with pytest.raises(PresetError, match=message) as err:
        find_bank(str(path), user_dir=tmp_path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_learned_knob_that_collides_is_not_saved(tmp_path: Path) -> None:
    bank = find_bank("default", user_dir=tmp_path)
    with pytest.raises(PresetError, match="knob 1's CC64 is the sustain pedal"):
        save_knob_cc(bank, 0, 64, user_dir=tmp_path)
    assert not (tmp_path / "banks").exists()


def test_pad_corners_from_a_model_of_another_latent_size_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    user = tmp_path / "gansynth-instrument" / "presets"
    user.mkdir(parents=True)
    wide = Preset(name="wide", seed=None, latent=tuple(random_latent(1).tolist()))
    save_preset(wide, user)
    path = tmp_path / "bank.yaml"
    path.write_text(_PAD_BANK.replace("reed-organ", "wide"))
    bank = find_bank(str(path))
    model = ToneModel()  # latent size 8
    with NoteCache(model, model.sample_rate, cache_dir=None) as cache:
        voices = Voices(Mixer(model.sample_rate, polyphony=2, channels=1))
        with pytest.raises(PresetError) as err:
            build_engine(cache, voices, model.pitches, model.latent_size, Sounds(bank=bank))
    message = str(err.value)
    assert "wide.yaml" in message and "256 values, but the model expects 8" in message
    assert "\n" not in message
