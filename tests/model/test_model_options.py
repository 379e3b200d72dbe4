"""The model options every model-loading command shares (--model, --backend, --threads,
--precision, $GANSYNTH_MODEL), through the real CLI on the exported magenta-tiny model."""

from __future__ import annotations

import argparse
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile
from midi_writer import write_midi

from gansynth_instrument.cli import build_parser, main
from gansynth_instrument.commands import load_model_from_args
from gansynth_instrument.model import runtime as model
from gansynth_instrument.model.runtime import BACKENDS, MODEL_ENV, PRECISIONS

COMMANDS = {
    "generate": ["generate"],
    "hallucinate": ["hallucinate", "-o", "out.wav"],
    "interpolate": ["interpolate", "1", "2"],
    "render": ["render", "song.mid", "-o", "out.wav"],
    "play": ["play"],
    "cache warm": ["cache", "warm", "--seed", "1"],
}
HOW_TO_GET_ONE = "gansynth-instrument export all_instruments.zip -o all_instruments.onnx"


def _model_options(args: argparse.Namespace) -> tuple:
    return args.model, args.backend, args.threads, args.precision


@pytest.mark.parametrize("argv", COMMANDS.values(), ids=COMMANDS.keys())
def test_every_model_command_takes_the_model_options(argv: list[str]) -> None:
    parser = build_parser()
    assert _model_options(parser.parse_args(argv)) == (None, "auto", None, "f32")
    for backend in BACKENDS:
        for precision in PRECISIONS:
            options = ["--model", "m.onnx", "--backend", backend, "--threads", "2"]
            args = parser.parse_args([*argv, *options, "--precision", precision])
            assert _model_options(args) == (Path("m.onnx"), backend, 2, precision)


def test_bf16_help_states_its_quality_cost(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "spectral SNR vs f32 about 10 dB mean / 7 dB worst on a full-size model" in text


@pytest.mark.parametrize(
    "argv", [["generate", "--pitch", "60"], ["cache", "warm", "--seed", "1"]], ids=str
)
def test_no_model_at_all_is_one_line_saying_how_to_get_one(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setattr(model, "BUNDLED_MODEL", tmp_path / "not-installed.onnx")
    out = tmp_path / "out"
    where = ["-o", str(out)] if argv[0] == "generate" else ["--cache-dir", str(out)]
    assert main([*argv, *where]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--model" in err and MODEL_ENV in err and HOW_TO_GET_ONE in err
    assert not out.exists()


def _generate(extra: list[str], out: Path) -> np.ndarray:
    argv = ["generate", "--pitch", "60", "--seed", "3", "-o", str(out), *extra]
    assert main(argv) == 0
    (wav,) = out.glob("*.wav")
    return soundfile.read(wav, dtype="float32")[0]


def test_gansynth_model_is_the_default_and_model_overrides_it(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODEL_ENV, str(tiny_model))
    from_env = _generate(["--backend", "cpu", "--threads", "1"], tmp_path / "env")
    assert np.abs(from_env).max() > 0
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "missing.onnx"))
    from_flag = _generate(["--model", str(tiny_model), "--backend", "cpu"], tmp_path / "flag")
    np.testing.assert_allclose(from_flag, from_env, atol=1e-5)


def test_the_bundled_model_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 6: with neither --model nor $GANSYNTH_MODEL, commands play the package's own model."""
    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert model.BUNDLED_MODEL.stat().st_size <= 20 * 2**20
    audio = _generate(["--backend", "cpu"], tmp_path / "bundled")
    assert len(audio) == 4 * 16000 and np.abs(audio).max() > 1e-3  # 4 s at the model rate


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--threads", "0"], "threads must be at least 1, got 0"),
        (["--backend", "cpu", "--precision", "bf16"], "bf16 needs the openvino backend, not 'cpu'"),
    ],
)
def test_options_reach_the_loader(
    options: list[str],
    message: str,
    tiny_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["generate", "--model", str(tiny_model), "--pitch", "60", "-o", str(tmp_path / "o")]
    assert main([*argv, *options]) == 1
    assert message in capsys.readouterr().err


def test_load_model_from_args_uses_each_option(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODEL_ENV, str(tiny_model))
    options = argparse.Namespace(model=None, backend="cpu", threads=1, precision="f32")
    model = load_model_from_args(options)
    assert (model.path, model.backend, model.precision) == (tiny_model, "cpu", "f32")


def _song(tmp_path: Path) -> Path:
    on, off = mido.Message("note_on", note=60, velocity=100), mido.Message("note_off", note=60)
    return write_midi(tmp_path / "song.mid", [(0.0, on), (0.2, off)])


@pytest.mark.parametrize("rate", ["0", "100", "7999", "192001", "1000000"])
@pytest.mark.parametrize("command", ["render", "play", "cache warm"])
def test_an_output_rate_outside_8k_to_192k_is_one_line_naming_the_range(
    command: str, rate: str, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [_song(tmp_path).name] if command == "render" else []
    where = {"render": [str(tmp_path / "song.mid"), "-o", str(tmp_path / "out.wav")]}
    argv = [*command.split(), *where.get(command, []), "--cache-dir", str(tmp_path / "cache")]
    argv += ["--model", str(tiny_model), "--sample-rate", rate]
    assert main(argv if command != "play" else [a for a in argv if "cache" not in a]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--sample-rate {rate} Hz" in err and "8000..192000" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == files


@pytest.mark.parametrize("rate", [8000, 192000])
def test_render_takes_the_ends_of_the_output_rates(
    rate: int, tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.wav"
    argv = ["render", str(_song(tmp_path)), "-o", str(out), "--model", str(tiny_model)]
    assert main([*argv, "--sample-rate", str(rate), "--cache-dir", str(tmp_path / "c")]) == 0
    assert soundfile.info(out).samplerate == rate
