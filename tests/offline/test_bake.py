"""Sample packs (issue 17), played by a real third-party SFZ player (sfizz, through pysfizz) and
compared key by key with the instrument's own ``render`` of the same key, velocity and preset."""

from __future__ import annotations

import io
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import pysfizz
import pytest
import soundfile as sf
from midi_writer import write_midi
from sfzen import SFZ

from gansynth_instrument import cli
from gansynth_instrument.live.config import DEFAULT_MAX_SHIFT_SEMITONES, CacheConfig, Sounds
from gansynth_instrument.model.runtime import BUNDLED_MODEL, Model, load_model
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.offline.bake import bake as bake_pack
from gansynth_instrument.offline.bake_plan import velocity_curve
from gansynth_instrument.offline.render_engine import RenderConfig, render_midi_engine
from gansynth_instrument.offline.sampler_formats import ds_velocity_layers
from gansynth_instrument.presets.bank import Bank
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_files import find_preset

RATE = 48000
HOLD_S = 1.0
WINDOW_S = (0.3, 0.9)  # past every test preset's attack, before its release
LONG_HOLD_S = 5.0  # past the 4 s a note lasts: only a loop still sounds
LONG_WINDOW_S = (4.3, 4.9)
LEVEL_DB = 1.0
PITCH_CENTS = 5.0
RETRIES = 6  # sfizz streams from disk in a thread: a busy machine can give a short render
RETRY_PAUSE_S = 0.5  # lets its loader catch up

PLAIN = Preset(name="plain", seed=3, latent=None, gain_db=-3.0, attack_s=0.01, release_s=0.3)
# The same timbre (its notes are made once), looped, with another level and envelope.
HELD = Preset(
    name="held", seed=3, latent=None, gain_db=2.0, attack_s=0.05, release_s=0.2, loop=True
)
BANK = Bank(name="duo", programs={}, morph_path=("felt-keys", "glass-bell"), morph_steps=3)


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> Model:
    return load_model(tiny_model)


@dataclass(frozen=True)
class Pack:
    path: Path
    cache: Path


@pytest.fixture(scope="module")
def pack(model: Model, tmp_path_factory: pytest.TempPathFactory) -> Pack:
    root = tmp_path_factory.mktemp("bake")
    result = bake_pack(
        model, root / "pack", [PLAIN, HELD], BANK, cache_dir=root / "notes", progress=False
    )
    assert len(result.files) == 2 * 5  # plain, held, felt-keys, glass-bell, duo-morph
    return Pack(root / "pack", root / "notes")


# --- measuring ------------------------------------------------------------------------------------


def level_db(audio: np.ndarray, window_s: tuple[float, float] = WINDOW_S) -> float:
    part = audio[round(window_s[0] * RATE) : round(window_s[1] * RATE)]
    return 20 * math.log10(max(float(np.sqrt(np.mean(np.square(part, dtype=np.float64)))), 1e-12))


def cents_apart(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How many cents ``b`` sounds above ``a``, and how alike they are (0..1): the lag that best
    lines up their log-magnitude spectra on a 1-cent grid (a pitch shift is a translation there),
    so it needs no clear fundamental."""
    lo, hi = round(WINDOW_S[0] * RATE), round(WINDOW_S[1] * RATE)
    grid = 60.0 * 2.0 ** (np.arange(round(1200 * math.log2(7000 / 60))) / 1200)
    freqs = np.fft.rfftfreq(hi - lo, 1 / RATE)
    curves = []
    for x in (a, b):
        spectrum = np.abs(np.fft.rfft(x[lo:hi] * np.hanning(hi - lo)))
        if not spectrum.any():
            return math.nan, 0.0  # silence: nothing to compare
        db = 20 * np.log10(np.maximum(np.interp(grid, freqs, spectrum), spectrum.max() * 1e-3))
        curves.append((db - db.mean()) / db.std())
    reach = 150  # cents either way
    scores = []
    for lag in range(-reach, reach + 1):  # b[i + lag] against a[i]
        first, stop = max(0, -lag), min(len(grid), len(grid) - lag)
        scores.append(float(np.mean(curves[0][first:stop] * curves[1][first + lag : stop + lag])))
    best = int(np.argmax(scores))
    shift = float(best - reach)
    if 0 < best < len(scores) - 1:  # parabolic interpolation between grid steps
        y0, y1, y2 = scores[best - 1 : best + 2]
        shift += 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return shift, float(scores[best])


class Sfizz:
    """A sfizz synth with one file loaded, and what it printed while loading (its warnings)."""

    def __init__(self, path: Path) -> None:
        self.synth = pysfizz.Synth(sample_rate=RATE, block_size=1024)
        with tempfile.TemporaryFile() as err:
            saved = os.dup(2)
            os.dup2(err.fileno(), 2)
            try:
                self.loaded = self.synth.load_sfz_file(str(path), quiet=False)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            err.seek(0)
            self.warnings = err.read().decode(errors="replace")

    def note(self, key: int, velocity: int, hold_s: float = HOLD_S) -> np.ndarray:
        return self.synth.render_note(key, velocity, hold_s, hold_s + 0.5)[0]

    def checked_note(
        self, key: int, velocity: int, good: Callable[[np.ndarray], bool], hold_s: float = HOLD_S
    ) -> np.ndarray:
        """A note rendered again (up to ``RETRIES`` times) while ``good`` says it is not: sfizz
        streams samples in a thread, and a busy machine can make a render come out short."""
        for attempt in range(RETRIES):
            if attempt:
                time.sleep(RETRY_PAUSE_S)
            audio = self.note(key, velocity, hold_s)
            if good(audio):
                break
        return audio


def engine_notes(
    model: Model,
    preset: Preset,
    keys: list[int],
    velocity: int,
    cache: Path,
    tmp: Path,
    hold_s: float = HOLD_S,
) -> dict[int, np.ndarray]:
    """Each key as the instrument's ``render`` plays it: one MIDI file, notes far apart."""
    spacing = hold_s + preset.release_s + 0.2
    messages = []
    for i, key in enumerate(keys):
        messages.append((i * spacing, mido.Message("note_on", note=key, velocity=velocity)))
        messages.append((i * spacing + hold_s, mido.Message("note_off", note=key)))
    midi_path = write_midi(tmp / f"{preset.name}-{velocity}.mid", messages)
    wav = tmp / f"{preset.name}-{velocity}.wav"
    config = RenderConfig(cache=CacheConfig(cache), sample_rate=RATE, progress=False)
    render_midi_engine(model, midi_path, wav, Sounds(preset), config)
    stereo, rate = sf.read(wav, dtype="float32")
    assert rate == RATE and np.array_equal(stereo[:, 0], stereo[:, 1])  # a centred channel
    audio = stereo[:, 0]
    step = round(spacing * RATE)
    padded = np.concatenate([audio, np.zeros(step * len(keys))])
    return {key: padded[i * step : (i + 1) * step] for i, key in enumerate(keys)}


def playable_keys(model: Model) -> list[int]:
    """Keys the engine plays: within its shift limit of a model pitch."""
    return [
        k
        for k in range(128)
        if min(abs(k - p) for p in model.pitches) <= DEFAULT_MAX_SHIFT_SEMITONES
    ]


@pytest.fixture(scope="module")
def sfizz_gain_db(tmp_path_factory: pytest.TempPathFactory) -> float:
    """sfizz's own constant gain, measured: a reference region plays a known sine."""
    root = tmp_path_factory.mktemp("reference")
    t = np.arange(3 * RATE) / RATE
    sf.write(root / "sine.wav", 0.25 * np.sin(2 * np.pi * 440 * t), RATE, subtype="PCM_24")
    (root / "reference.sfz").write_text("<region> sample=sine.wav pitch_keycenter=69 key=69\n")
    player = Sfizz(root / "reference.sfz")
    assert player.loaded and player.warnings == ""
    # A render that streamed short is quieter, never louder: the loudest of a few is the level.
    played = max(level_db(player.note(69, 127)) for _ in range(RETRIES))
    return played - 20 * math.log10(0.25 / math.sqrt(2))


# --- tests ----------------------------------------------------------------------------------------


def test_sfizz_warnings_are_caught(tmp_path: Path) -> None:
    """The warning check itself: sfizz does print what it does not understand."""
    (tmp_path / "bad.sfz").write_text("<regoin> sample=nothing.wav\n")
    assert "regoin" in Sfizz(tmp_path / "bad.sfz").warnings


def test_every_file_loads_without_a_warning_and_plays_every_key(model: Model, pack: Pack) -> None:
    names = ["plain", "held", "felt-keys", "glass-bell", "duo-morph"]
    assert sorted(p.name for p in pack.path.iterdir()) == sorted(
        [*names, *(f"{n}.sfz" for n in names), *(f"{n}.dspreset" for n in names)]
    )
    keys = playable_keys(model)
    for name in names:
        player = Sfizz(pack.path / f"{name}.sfz")
        assert player.loaded and player.warnings == "", (name, player.warnings)
        assert player.synth.playable_keys == keys
        layers = BANK.morph_steps if name == "duo-morph" else 1
        for key in keys:  # the sample nearest the key, as the engine picks it (ties go down)
            regions = player.synth.get_note_info(key)
            assert len(regions) == layers  # every region's sample loaded
            centres = {info["pitch_keycenter"] for info in regions}
            assert centres == {min(model.pitches, key=lambda p: (abs(p - key), p))}


def _check_keys(
    model: Model,
    pack: Pack,
    preset: Preset,
    velocity: int,
    gain_db: float,
    tmp: Path,
    keys: list[int] | None = None,
    hold_s: float = HOLD_S,
    window_s: tuple[float, float] = WINDOW_S,
) -> dict[int, float]:
    """sfizz against the engine, per key: pitch within 5 cents, level within 1 dB (sfizz's
    constant aside). A key that fails is rendered again before it counts. Returns sfizz levels."""
    keys = keys if keys is not None else playable_keys(model)
    expected = engine_notes(model, preset, keys, velocity, pack.cache, tmp, hold_s)
    player = Sfizz(pack.path / f"{preset.name}.sfz")
    levels = {}
    for key in keys:
        want = level_db(expected[key], window_s)

        def good(audio: np.ndarray, key: int = key, want: float = want) -> bool:
            cents, alike = cents_apart(expected[key], audio)
            error = level_db(audio, window_s) - gain_db - want
            return abs(error) <= LEVEL_DB and abs(cents) <= PITCH_CENTS and alike > 0.8

        got = player.checked_note(key, velocity, good, hold_s)
        error = level_db(got, window_s) - gain_db - want
        cents, alike = cents_apart(expected[key], got)
        assert abs(error) <= LEVEL_DB, (preset.name, key, velocity, error)
        assert abs(cents) <= PITCH_CENTS and alike > 0.8, (preset.name, key, cents, alike)
        levels[key] = level_db(got, window_s) - gain_db
    return levels


@pytest.mark.parametrize("preset", [PLAIN, HELD], ids=lambda p: p.name)
def test_every_key_matches_the_instruments_pitch_level_and_velocity(
    model: Model, pack: Pack, sfizz_gain_db: float, preset: Preset, tmp_path: Path
) -> None:
    loud = _check_keys(model, pack, preset, 127, sfizz_gain_db, tmp_path)
    soft = _check_keys(model, pack, preset, 64, sfizz_gain_db, tmp_path)
    instrument = 40 * math.log10(64 / 127)  # the engine's curve, (velocity/127)^2
    for key in loud:
        assert abs((soft[key] - loud[key]) - instrument) <= LEVEL_DB


def test_a_looping_preset_sustains_past_the_note_as_live_play_does(
    model: Model, pack: Pack, sfizz_gain_db: float, tmp_path: Path
) -> None:
    keys = [model.pitches[0] - 3, 60, model.pitches[-1]]
    _check_keys(model, pack, HELD, 127, sfizz_gain_db, tmp_path, keys, LONG_HOLD_S, LONG_WINDOW_S)
    plain = Sfizz(pack.path / "plain.sfz").checked_note(
        60, 127, lambda audio: level_db(audio) > -80, LONG_HOLD_S
    )
    assert level_db(plain) > -80  # it played,
    assert level_db(plain, LONG_WINDOW_S) < -200  # and without a loop it is over by then


def test_a_shipped_preset_matches_too(
    model: Model, pack: Pack, sfizz_gain_db: float, tmp_path: Path
) -> None:
    _check_keys(
        model,
        pack,
        find_preset("felt-keys"),
        127,
        sfizz_gain_db,
        tmp_path,
        [model.pitches[0] - 12, 47, 48, 72, model.pitches[-1] + 12],
    )


def test_the_morph_layer_covers_cc1_and_its_ends_are_the_path_presets(
    model: Model, pack: Pack, sfizz_gain_db: float, tmp_path: Path
) -> None:
    groups = list(SFZ(str(pack.path / "duo-morph.sfz")).groups())
    assert len(groups) == BANK.morph_steps
    fades = []
    for group in groups:
        ops = {
            name: float(op.value)
            for name, op in group.inherited_opcodes().items()
            if name.startswith(("xfin_", "xfout_"))
        }
        fades.append(ops)
    for value in range(128):  # SFZ's linear crossfade, each group's gain at this CC value
        gains = []
        for ops in fades:
            gain = 1.0
            if "xfin_locc1" in ops:
                lo, hi = ops["xfin_locc1"], ops["xfin_hicc1"]
                gain *= min(1.0, max(0.0, (value - lo) / (hi - lo)))
            if "xfout_locc1" in ops:
                lo, hi = ops["xfout_locc1"], ops["xfout_hicc1"]
                gain *= min(1.0, max(0.0, (hi - value) / (hi - lo)))
            gains.append(gain)
        assert math.isclose(sum(gains), 1.0), (value, gains)
        assert sum(g > 0 for g in gains) <= 2  # only neighbouring steps sound together
    assert fades[0] == {"xfout_locc1": 0, "xfout_hicc1": 64}
    assert fades[-1] == {"xfin_locc1": 64, "xfin_hicc1": 127}
    # The ends, played by sfizz with the knob set, are the path's presets as the engine plays them.
    keys = [48, 60, 72]
    for cc, name in ((0, "felt-keys"), (127, "glass-bell")):
        at = pack.path / f"at-{cc}.sfz"
        at.write_text(f'<control> set_cc1={cc}\n#include "duo-morph.sfz"\n')
        player = Sfizz(at)
        assert player.loaded and player.warnings == ""
        expected = engine_notes(model, find_preset(name), keys, 127, pack.cache, tmp_path)
        for key in keys:
            want = level_db(expected[key]) + sfizz_gain_db
            audio = player.checked_note(
                key, 127, lambda audio, want=want: abs(level_db(audio) - want) <= LEVEL_DB
            )
            assert abs(level_db(audio) - want) <= LEVEL_DB, (cc, key, level_db(audio) - want)
        at.unlink()


def test_the_bundled_model_bakes_too(sfizz_gain_db: float, tmp_path: Path) -> None:
    """The shipped model, a few keys: its notes are as loud and in tune in sfizz as in render."""
    model = load_model(BUNDLED_MODEL)
    preset = find_preset("fluid-flute")
    bake_pack(
        model,
        tmp_path / "pack",
        [preset],
        formats=["sfz"],
        cache_dir=tmp_path / "notes",
        progress=False,
    )
    _check_keys(
        model,
        Pack(tmp_path / "pack", tmp_path / "notes"),
        preset,
        127,
        sfizz_gain_db,
        tmp_path,
        [36, 60, 84],
    )


def test_decentsampler_files_are_xml_naming_existing_samples(model: Model, pack: Pack) -> None:
    for name in ("plain", "held", "duo-morph"):
        root = ET.parse(pack.path / f"{name}.dspreset").getroot()
        assert root.tag == "DecentSampler"
        groups = root.findall("./groups/group")
        assert len(groups) == (BANK.morph_steps if name == "duo-morph" else 1)
        for group in groups:
            by_root: dict[int, list[tuple[int, int]]] = {}
            for sample in group.findall("sample"):
                assert (pack.path / sample.get("path")).is_file()
                assert sf.info(pack.path / sample.get("path")).samplerate == RATE
                assert (sample.get("loopEnabled") == "true") == (name == "held")
                by_root.setdefault(int(sample.get("rootNote")), []).append(
                    (int(sample.get("loVel")), int(sample.get("hiVel")))
                )
            assert sorted(by_root) == list(model.pitches)
            for spans in by_root.values():  # velocity layers cover 1..127 without gaps
                assert sorted(v for lo, hi in spans for v in range(lo, hi + 1)) == list(
                    range(1, 128)
                )
    morph = ET.parse(pack.path / "duo-morph.dspreset").getroot()
    bindings = morph.findall("./midi/cc[@number='1']/binding")
    assert [int(b.get("position")) for b in bindings] == list(range(BANK.morph_steps))


def _sfz_cover(path: Path) -> list[set[tuple[int, int, int]]]:
    """Per SFZ group: the (pitch, key, velocity) its regions play (SFZ's lovel/hivel: 1, 127)."""
    groups: list[set[tuple[int, int, int]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("<group>"):
            groups.append(set())
        elif line.startswith("<region>"):
            ops = dict(op.split("=") for op in line.split()[1:])
            keys = range(int(ops["lokey"]), int(ops["hikey"]) + 1)
            velocities = range(int(ops.get("lovel", 1)), int(ops.get("hivel", 127)) + 1)
            groups[-1] |= {(int(ops["pitch_keycenter"]), k, v) for k in keys for v in velocities}
    return groups


def test_multisample_files_hold_every_sample_they_name_and_cover_what_the_sfz_does(
    model: Model, pack: Pack, plain_yaml: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "ms"
    formats = ("sfz", "multisample")
    bake_pack(
        model, out, [PLAIN, HELD], BANK, formats=formats, cache_dir=pack.cache, progress=False
    )
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no staging
    for name in ("plain", "held", "duo-morph"):
        with zipfile.ZipFile(out / f"{name}.multisample") as archive:
            infos = {i.filename: i for i in archive.infolist()}
            assert all(i.compress_type == zipfile.ZIP_STORED for i in infos.values())
            root = ET.fromstring(archive.read("multisample.xml"))
            assert root.tag == "multisample" and root.get("name") == name
            groups = root.findall("group")
            cover: list[set[tuple[int, int, int]]] = [set() for _ in groups]
            for sample in root.findall("sample"):
                inside = archive.read(sample.get("file"))  # KeyError if it is not in the ZIP
                assert inside == (out / sample.get("file")).read_bytes()
                key, velocity = sample.find("key"), sample.find("velocity")
                keys = range(int(key.get("low")), int(key.get("high")) + 1)
                velocities = range(int(velocity.get("low")), int(velocity.get("high")) + 1)
                pitch = int(key.get("root"))
                cover[int(sample.get("group"))] |= {(pitch, k, v) for k in keys for v in velocities}
                assert (sample.find("loop") is not None) == (name == "held")
        assert cover == _sfz_cover(out / f"{name}.sfz")
        assert len(groups) == (BANK.morph_steps if name == "duo-morph" else 1)
    # The morph's steps fade over the select range as the SFZ's groups fade over CC1.
    morph = ET.parse(
        io.BytesIO(zipfile.ZipFile(out / "duo-morph.multisample").read("multisample.xml"))
    )
    selects = {(s.get("group"), tuple(s.find("select").items())) for s in morph.iterfind("sample")}
    assert len(selects) == BANK.morph_steps
    first = dict(next(items for group, items in selects if group == "0"))
    assert (first["low"], first["low-fade"], first["high"], first["high-fade"]) == (
        "0",
        "0",
        "64",
        "64",
    )
    # Through the command, as a user asks for it.
    code, stdout, err = run_cli(
        [
            "bake",
            plain_yaml,
            "-o",
            out,
            "--format",
            "multisample",
            "--cache-dir",
            pack.cache,
            "--model",
            model.path,
        ],
        capsys,
    )
    assert code == 0 and f"wrote {out / 'plain.multisample'}" in stdout, err


def test_decentsampler_velocity_layers_follow_the_curve() -> None:
    """Linear velocity tracking (DecentSampler's) times each layer's gain stays within 0.5 dB of
    the instrument's curve at every velocity."""
    curve = velocity_curve(Timbre.from_preset(PLAIN, 256), 2.0)
    for lo, hi, gain in ds_velocity_layers(curve):
        for v in range(lo, hi + 1):
            assert abs(20 * math.log10(v / 127 * gain / curve[v])) <= 0.5 + 1e-9


def test_sixteen_bit_and_44k_packs(model: Model, pack: Pack, tmp_path: Path) -> None:
    bake_pack(
        model,
        tmp_path / "p",
        [PLAIN],
        rate=44100,
        bit_depth=16,
        formats=["sfz"],
        cache_dir=pack.cache,
        progress=False,
    )
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["plain", "plain.sfz"]
    info = sf.info(tmp_path / "p" / "plain" / "060.wav")
    assert (info.samplerate, info.subtype, info.frames) == (44100, "PCM_16", 4 * 44100)
    player = Sfizz(tmp_path / "p" / "plain.sfz")
    assert player.loaded and player.warnings == ""


# --- bad input, and nothing half-written ---------------------------------------------------------


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"/"
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def plain_yaml(tmp_path: Path) -> Path:
    """``PLAIN`` as a preset file, the way a user names one on the command line."""
    path = tmp_path / "plain.yaml"
    path.write_text(PLAIN.to_yaml())
    return path


@pytest.fixture
def earlier(tmp_path: Path, pack: Pack) -> Path:
    """An output folder holding an earlier pack and a file of the user's."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "plain").mkdir()
    (out / "plain" / "060.wav").write_bytes((pack.path / "plain" / "060.wav").read_bytes())
    (out / "plain.sfz").write_text("<region> sample=plain/060.wav\n")
    return out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nosuch"], "unknown preset 'nosuch'"),
        (["--bank", "nosuch"], "unknown bank 'nosuch'"),
        (["felt-keys", "--rate", "22050"], "--rate 22050 is not offered"),
        (["felt-keys", "--bit-depth", "8"], "--bit-depth 8 is not offered"),
        (["felt-keys", "--format", "wav"], "--format wav"),
        (["felt-keys", "--velocity-curve", "loud"], "unknown curve 'loud'; choose one of gm,"),
        (["felt-keys", "--velocity-curve", "2"], "unknown curve '2'"),
        ([], "nothing to bake"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    args: list[str],
    needle: str,
    earlier: Path,
    tiny_model: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = snapshot(earlier)
    code, _, err = run_cli(["bake", *args, "-o", earlier, "--model", tiny_model], capsys)
    assert code == 1 and err.count("\n") == 1 and needle in err, err
    assert snapshot(earlier) == before


def test_an_output_folder_that_is_a_file_or_not_makeable(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out, needle in ((blocker, "is a file"), (blocker / "pack", "cannot create")):
        code, _, err = run_cli(["bake", "felt-keys", "-o", out, "--model", tiny_model], capsys)
        assert code == 1 and err.count("\n") == 1 and needle in err, err
    assert blocker.read_text() == "x"


def test_bake_command_replaces_an_earlier_pack_and_keeps_the_rest(
    earlier: Path,
    tiny_model: Path,
    pack: Pack,
    plain_yaml: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "bake",
        plain_yaml,
        "-o",
        earlier,
        "--format",
        "sfz",
        "--model",
        tiny_model,
        "--cache-dir",
        pack.cache,
    ]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert out.splitlines()[0] == f"wrote {earlier / 'plain.sfz'}"
    assert sorted(p.name for p in earlier.iterdir()) == ["notes.txt", "plain", "plain.sfz"]
    assert (earlier / "notes.txt").read_text() == "mine"
    assert (earlier / "plain.sfz").read_text() == (pack.path / "plain.sfz").read_text()
    assert len(list((earlier / "plain").iterdir())) == len(load_model(tiny_model).pitches)


@pytest.mark.parametrize(("curve", "exponent"), [("linear", 1.0), ("fixed", 0.0)])
def test_bake_takes_the_velocity_curve_names_play_takes(
    curve: str,
    exponent: float,
    tiny_model: Path,
    pack: Pack,
    plain_yaml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "pack"
    argv = ["bake", plain_yaml, "-o", out, "--format", "sfz", "--velocity-curve", curve]
    code, _, err = run_cli([*argv, "--model", tiny_model, "--cache-dir", pack.cache], capsys)
    assert code == 0, err
    text = (out / "plain.sfz").read_text()
    points = {int(v): float(a) for v, a in re.findall(r"amp_velcurve_(\d+)=(\S+)", text)}
    assert sorted(points) == list(range(1, 128))
    for velocity, baked in points.items():
        assert baked == pytest.approx((velocity / 127) ** exponent, rel=1e-5), velocity


_FULL_DISK = """
import resource, signal, sys
from gansynth_instrument import cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-size write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, resource.RLIM_INFINITY))  # < one sample
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_disk_that_fills_mid_bake_is_one_line_and_leaves_the_earlier_pack(
    earlier: Path, tiny_model: Path, pack: Pack, plain_yaml: Path
) -> None:
    """A real write failure (file size limit → EFBIG), in a child process to spare pytest."""
    before = snapshot(earlier)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            _FULL_DISK,
            "bake",
            str(plain_yaml),
            "-o",
            str(earlier),
            "--model",
            str(tiny_model),
            "--cache-dir",
            str(pack.cache),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    error = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and "cannot write the pack" in error[0], run.stderr
    assert snapshot(earlier) == before


def test_a_full_disk_is_one_line_saying_so_and_leaves_nothing(
    full_disk: Path, tiny_model: Path, pack: Pack, plain_yaml: Path, capsys
) -> None:
    argv = ["bake", plain_yaml, "-o", full_disk, "--model", tiny_model, "--cache-dir", pack.cache]
    code, _, err = run_cli(argv, capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert f"{full_disk}: cannot write the pack (No space left on device)" in err
    assert list(full_disk.iterdir()) == []


def test_an_interrupted_bake_leaves_nothing(
    earlier: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """Ctrl-C while the samples are being written: no staging folder, no pack, the rest kept."""
    before = snapshot(earlier)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gansynth_instrument",
            "bake",
            "--bank",
            "default",
            "-o",
            str(earlier),
            "--model",
            str(tiny_model),
            "--cache-dir",
            str(tmp_path / "notes"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(earlier.glob(".bake-*/*/*.wav")):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert snapshot(earlier) == before


def test_progress_shows_on_captured_stderr_and_notices_start_their_own_line(
    tiny_model: Path, plain_yaml: Path, tmp_path: Path
) -> None:
    """A bake into a pipe (as a script or a log sees it) shows its progress; a cache notice that
    arrives while the bar is drawn starts a line of its own rather than running on from the bar."""
    cache = tmp_path / "notes"

    def bake_into(out: str) -> str:
        argv = ["bake", plain_yaml, "-o", tmp_path / out, "--format", "sfz"]
        argv += ["--model", tiny_model, "--cache-dir", cache]
        command = [sys.executable, "-m", "gansynth_instrument", *map(str, argv)]
        run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stderr
        return run.stderr

    pitches = len(load_model(tiny_model).pitches)
    # The bar counts the notes as they come (its last state may be cleared before it is drawn).
    assert re.search(rf"bake: +\d+%.*\d+/{pitches} \[", bake_into("first"))
    damaged = sorted(cache.rglob("*.note"))
    assert len(damaged) == pitches
    for path in damaged:  # one flipped bit each: the cache warns and makes them again
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x40
        path.write_bytes(bytes(data))
    err = bake_into("second")
    before = [err[m.start() - 1] if m.start() else "\n" for m in re.finditer("note cache: ", err)]
    assert len(before) == pitches and "bake: " in err, err
    assert set(before) <= {"\n", "\r"}, err
