"""``gansynth-instrument export`` on bad input: one line naming file + problem, exit 1, no file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from bundle_writer import write_bundle

from gansynth_instrument.cli import main
from gansynth_instrument.export.bundle import TensorBundle
from gansynth_instrument.live.compiled_mixer import mixer_in_use
from gansynth_instrument.model.metadata import ModelInfo

STAGE = "stage_00012"
EMA = "/ExponentialMovingAverage"
BLOCK3_CONV1 = "Generator/progressive_gan_generator/progressive_gan_block_3/conv1/conv2d/kernel"


@pytest.fixture
def model_dir(tmp_path: Path, magenta_tiny: Path) -> Path:
    """A writable copy of magenta-tiny with only stage_00012."""
    dest = tmp_path / "ckpt"
    dest.mkdir()
    shutil.copyfile(magenta_tiny / "experiment.json", dest / "experiment.json")
    shutil.copytree(magenta_tiny / STAGE, dest / STAGE, copy_function=shutil.copyfile)
    return dest


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    rc = main(["export", *args])
    return rc, capsys.readouterr().err.strip().splitlines()


def _rewrite_bundle(model_dir: Path, edit: Callable[[dict[str, np.ndarray]], None]) -> None:
    """Read every tensor of the stage's bundle, let ``edit`` change the dict, write it back."""
    prefix = model_dir / STAGE / "model.ckpt-54"
    bundle = TensorBundle(prefix)
    tensors = {n: bundle.read(n) for n in bundle.entries}
    edit(tensors)
    write_bundle(prefix, tensors)


def _drop_block3_ema(t: dict) -> None:
    del t[BLOCK3_CONV1 + EMA]


def _drop_all_ema(t: dict) -> None:
    for name in [n for n in t if n.startswith("Generator/") and n.endswith(EMA)]:
        del t[name]


def _misname_kernels(t: dict) -> None:
    for name in [n for n in t if n.startswith("Generator/") and "/conv2d/kernel" in n]:
        t[name.replace("/conv2d/kernel", "/conv2d/weights")] = t.pop(name)


def _widen_block3(t: dict) -> None:
    t[BLOCK3_CONV1 + EMA] = np.zeros((3, 3, 8, 9), np.float32)


def _truncate_data(model_dir: Path) -> None:
    data = model_dir / STAGE / "model.ckpt-54.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def _flip_weight_byte(model_dir: Path) -> None:
    """One bit flipped inside an EMA kernel: sizes stay right, only the checksum can tell."""
    prefix = model_dir / STAGE / "model.ckpt-54"
    entry = TensorBundle(prefix).entries[BLOCK3_CONV1 + EMA]
    data = prefix.with_name(prefix.name + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[entry.offset + entry.size // 2] ^= 0x10
    data.write_bytes(bytes(raw))


def _garbage_index(model_dir: Path) -> None:
    (model_dir / STAGE / "model.ckpt-54.index").write_bytes(os.urandom(4000))


def _empty_stage(model_dir: Path) -> None:
    shutil.rmtree(model_dir / STAGE)
    (model_dir / STAGE).mkdir()


@pytest.mark.parametrize(
    ("damage", "where", "problem"),
    [
        (_truncate_data, "model.ckpt-54.data-00000-of-00001", "truncated or corrupt"),
        (_garbage_index, "model.ckpt-54.index", "not a checkpoint index"),
        (_flip_weight_byte, "model.ckpt-54.data-00000-of-00001", "fails its CRC32C checksum"),
        (_empty_stage, STAGE, "no model.ckpt-N.index checkpoint"),
        (lambda d: _rewrite_bundle(d, _drop_block3_ema), "model.ckpt-54.index", "missing variable"),
        (lambda d: _rewrite_bundle(d, _drop_all_ema), "model.ckpt-54.index", "only the raw"),
        (lambda d: _rewrite_bundle(d, _misname_kernels), "model.ckpt-54.index", "missing variable"),
        (lambda d: _rewrite_bundle(d, _widen_block3), "model.ckpt-54.index", "[3, 3, 8, 9]"),
        (lambda d: (d / "experiment.json").write_text('{"data_type": "mel",'), "experiment.json",
         "not valid JSON"),
        (lambda d: (d / "experiment.json").write_text("[1, 2]"), "experiment.json",
         "expected a JSON object"),
        (lambda d: (d / "experiment.json").write_text('{"latent_vector_size": "256"}'),
         "experiment.json", "'latent_vector_size' should be int"),
        (lambda d: (d / "experiment.json").unlink(), "ckpt", "no experiment.json"),
    ],
)  # fmt: skip
def test_bad_checkpoint_is_one_line_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    out_dir: Path,
    damage: Callable[[Path], None],
    where: str,
    problem: str,
) -> None:
    damage(model_dir)
    rc, err = _export(capsys, str(model_dir), "-o", str(out_dir / "model.onnx"))
    assert rc == 1
    assert len(err) == 1, err
    assert err[0].startswith("gansynth-instrument export: error: ")
    assert where in err[0] and problem in err[0], err[0]
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("make", ["empty dir", "text file", "missing", "json but no stages"])
def test_not_a_checkpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out_dir: Path, make: str
) -> None:
    target = tmp_path / "thing"
    if make == "empty dir":
        target.mkdir()
    elif make == "text file":
        target.write_text("hello\n")
    elif make == "json but no stages":
        target.mkdir()
        (target / "experiment.json").write_text(json.dumps({"data_type": "mel"}))
    rc, err = _export(capsys, str(target), "-o", str(out_dir / "m.onnx"))
    assert rc == 1 and len(err) == 1, err
    assert f"{target}: " in err[0]
    assert list(out_dir.iterdir()) == []


def test_output_in_missing_directory(capsys: pytest.CaptureFixture[str], model_dir: Path) -> None:
    output = model_dir / "no" / "such" / "dir" / "m.onnx"
    rc, err = _export(capsys, str(model_dir), "-o", str(output))
    assert rc == 1 and len(err) == 1
    assert f"{output.parent}: output directory does not exist" in err[0]


def test_output_is_a_directory(
    capsys: pytest.CaptureFixture[str], model_dir: Path, out_dir: Path
) -> None:
    rc, err = _export(capsys, str(model_dir), "-o", str(out_dir))
    assert rc == 1 and len(err) == 1
    assert f"{out_dir}: is a directory" in err[0]
    assert list(out_dir.iterdir()) == []


def _lock(directory: Path, locked: bool) -> None:
    """Make ``directory`` refuse new files for real: mode 0555, or immutable for root."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if locked else "-i", str(directory)], check=True)
    else:
        directory.chmod(0o555 if locked else 0o755)


def test_unwritable_output_dir(model_dir: Path, out_dir: Path) -> None:
    """Through the real entry point (a subprocess), into a directory that refuses files."""
    _lock(out_dir, True)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "gansynth_instrument",
                "export",
                str(model_dir),
                "-o",
                str(out_dir / "m.onnx"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        _lock(out_dir, False)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1, proc.stderr
    assert f"{out_dir}: output directory is not writable" in err[0]
    assert list(out_dir.iterdir()) == []


def test_checkpoint_and_random_are_exclusive(
    capsys: pytest.CaptureFixture[str], model_dir: Path, out_dir: Path
) -> None:
    for args in ([str(model_dir), "--random"], []):
        rc, err = _export(capsys, *args, "-o", str(out_dir / "m.onnx"))
        assert rc == 1 and len(err) == 1 and "--random" in err[0]
    assert list(out_dir.iterdir()) == []


def test_export_overwrites_atomically_and_reports(
    capsys: pytest.CaptureFixture[str], model_dir: Path, out_dir: Path
) -> None:
    output = out_dir / "m.onnx"
    output.write_bytes(b"old")
    assert main(["export", str(model_dir), "-o", str(output)]) == 0
    printed = capsys.readouterr().out
    info = ModelInfo.from_props({p.key: p.value for p in onnx.load(str(output)).metadata_props})
    assert info.digest in printed and info.source_step == 54
    assert [p.name for p in out_dir.iterdir()] == ["m.onnx"]  # no temporary left behind


def test_timbre_metadata_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model's timbres (export writes a regression run's) are parsed or refused in one line
    naming the file: wrong latent length, duplicate names, a bad program, not a list."""
    path = tmp_path / "m.onnx"
    assert main(["export", "--random", "-o", str(path)]) == 0
    good = {"name": "piano", "instrument": "program000-v100", "latent": [0.5] * 256, "program": 1}
    for timbres, message in (
        ([good], None),
        ([{**good, "latent": [0.5] * 64}], "64 latent values, the model's latent has 256"),
        ([good, good], "two timbres named 'piano'"),
        ([{**good, "program": 200}], "program 200 is not 0..127"),
        ({"piano": good}, "is not a list"),
        ([{**good, "colour": "red"}], "timbre 0"),
    ):
        model = onnx.load(str(path))
        onnx.helper.set_model_props(
            model,
            {
                **{p.key: p.value for p in model.metadata_props},
                "gansynth.timbres": json.dumps(timbres),
            },
        )
        onnx.save_model(model, str(path))
        capsys.readouterr()
        if message is None:
            assert main(["info", str(path)]) == 0
            assert "timbres         1: piano (1)" in capsys.readouterr().out
            continue
        assert main(["info", str(path)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and message in err, err
        assert "malformed timbre metadata" in err


def test_info_without_a_path_describes_the_model_commands_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.onnx"
    assert main(["export", "--random", "--seed", "3", "-o", str(path)]) == 0
    digest = ModelInfo.from_props({p.key: p.value for p in onnx.load(str(path)).metadata_props})
    monkeypatch.setenv("GANSYNTH_MODEL", str(path))
    capsys.readouterr()
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert str(path) in out and "$GANSYNTH_MODEL" in out and digest.digest in out
    monkeypatch.delenv("GANSYNTH_MODEL")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "the bundled model" in out
    # Which mixer play and render would use here (the compiled core where it was built).
    assert mixer_in_use() in out and out.count("mixer here") == 1
