"""Find and read a Magenta GANSynth checkpoint: hyperparameters, pitch list, EMA generator weights.

Accepted layouts (Magenta's ``Model.load_from_path`` semantics, minus its pitfalls):
  * a model dir: ``experiment.json`` + ``stage_*/`` (released zips unpacked, or a training dir:
    the numerically last ``stage_*`` is used), optionally ``meta.json`` (course models);
  * one ``stage_*`` dir (``experiment.json`` is then read from its parent);
  * a ``.zip`` holding exactly one such model dir;
  * a ``gansynth-instrument train`` dir: ``experiment.json``, ``meta.json`` and
    ``generator_ema.npz`` (the EMA generator weights under Magenta's full variable names).
Inside the stage dir the ``checkpoint`` file names the bundle; a stale absolute path there (the
training machine's) falls back to the file of that name next to it, then to the highest
``model.ckpt-N.index``.

Hyperparameters are experiment.json over Magenta's ``set_flags`` defaults (not mel_prog_hires),
and every generator variable's shape is checked against them: a mismatch is an error.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from gansynth_instrument.errors import CheckpointError
from gansynth_instrument.export.bundle import TensorBundle
from gansynth_instrument.export.graph import GeneratorConfig, expected_shapes
from gansynth_instrument.export.hparams import (
    NSYNTH_PITCHES,
    SET_FLAGS_DEFAULTS,
    SUPPORTED_RESOLUTION,
    check_supported,
    config_from_hparams,
    magenta_progress,
)

EXPERIMENT_JSON = "experiment.json"
META_JSON = "meta.json"
TRAINED_NPZ = "generator_ema.npz"  # written by gansynth-instrument train
TIMBRES_JSON = "timbres.json"  # a regression run's instruments: dataset name → latent
EMA_SUFFIX = "/ExponentialMovingAverage"
GENERATOR_SCOPE = "Generator/"
_STAGE_RE = re.compile(r"stage_(\d+)$")
_CKPT_RE = re.compile(r"model\.ckpt-(\d+)\.index$")
_BLOCK_RE = re.compile(r"^Generator/progressive_gan_generator/progressive_gan_block_(\d+)/")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's generator, ready for ``graph.build_generator``."""

    config: GeneratorConfig
    weights: dict[str, np.ndarray]  # EMA values by Magenta name (no Generator/, no EMA suffix)
    progress: float
    step: int
    source: str  # short description: <model dir>/<stage>/<bundle> (no absolute paths)
    timbres: dict[str, tuple[float, ...]] = field(default_factory=dict)  # instrument → latent


def _stage_dirs(path: Path) -> list[Path]:
    stages = [p for p in path.iterdir() if _STAGE_RE.match(p.name) and p.is_dir()]
    return sorted(stages, key=lambda p: int(_STAGE_RE.match(p.name).group(1)))  # type: ignore[union-attr]


def _locate(path: Path) -> tuple[Path, Path]:
    """(model dir holding experiment.json, stage dir) for a model dir or a stage dir."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint folder or .zip file")
    stages = _stage_dirs(path)
    if stages:
        return path, stages[-1]
    if _STAGE_RE.match(path.name) or any(path.glob("model.ckpt-*.index")):
        return path.parent, path
    raise CheckpointError(
        f"{path}: not a GANSynth checkpoint (no stage_* folders and no model.ckpt-*.index files)"
    )


def _bundle_prefix(stage: Path) -> Path:
    """The bundle the stage's ``checkpoint`` file names, else the highest ``model.ckpt-N``."""
    state = stage / "checkpoint"
    if state.is_file():
        text = state.read_text(encoding="utf-8", errors="replace")
        match = re.search(r'^model_checkpoint_path:\s*"([^"]*)"', text, re.MULTILINE)
        if match:
            named = Path(match.group(1))
            # Next to the checkpoint file first: an absolute path is the training machine's.
            for prefix in (stage / named.name, named if named.is_absolute() else stage / named):
                if prefix.with_name(prefix.name + ".index").is_file():
                    return prefix
    indexes = [p for p in stage.glob("model.ckpt-*.index") if _CKPT_RE.match(p.name)]
    if not indexes:
        raise CheckpointError(f"{stage}: no model.ckpt-N.index checkpoint in this stage folder")
    newest = max(indexes, key=lambda p: int(_CKPT_RE.match(p.name).group(1)))  # type: ignore[union-attr]
    return newest.with_name(newest.name[: -len(".index")])


def _extract_zip(archive: Path, into: Path) -> Path:
    """Copy the one model dir's json files and last stage's bundle out of ``archive``.

    Destination names are built here (never taken from the archive), so member paths cannot
    escape ``into``. Returns the extracted model dir.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"{archive}: not a readable zip file ({err})") from None
    with zf:
        names = [PurePosixPath(n) for n in zf.namelist() if not n.endswith("/")]
        roots = sorted({n.parent for n in names if n.name == EXPERIMENT_JSON})
        if len(roots) != 1:
            found = ", ".join(f"'{r}/'" for r in roots) or "none"
            raise CheckpointError(
                f"{archive}: expected one model folder with {EXPERIMENT_JSON} inside, found "
                f"{found}; unpack it and pass the folder you mean"
            )
        root = roots[0]
        stages = {
            int(m.group(1)): n.parent.name
            for n in names
            if n.parent.parent == root and (m := _STAGE_RE.match(n.parent.name))
        }
        if not stages:
            raise CheckpointError(
                f"{archive}: no stage_* folder next to '{root}/{EXPERIMENT_JSON}'"
            )
        stage_name = stages[max(stages)]
        model_dir = into / (root.name or archive.stem)
        stage = model_dir / stage_name
        stage.mkdir(parents=True)

        def copy(members: list[PurePosixPath], dest: Path) -> None:
            for member in members:
                try:
                    with zf.open(str(member)) as src, (dest / member.name).open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                except (zipfile.BadZipFile, OSError, EOFError) as err:
                    raise CheckpointError(f"{archive}: cannot extract '{member}' ({err})") from None

        copy(
            [n for n in names if n.parent == root and n.name in (EXPERIMENT_JSON, META_JSON)],
            model_dir,
        )
        in_stage = [n for n in names if n.parent == root / stage_name]
        copy([n for n in in_stage if n.name == "checkpoint" or n.name.endswith(".index")], stage)
        prefix = _bundle_prefix(stage).name
        copy([n for n in in_stage if n.name.startswith(prefix + ".data-")], stage)
    return model_dir


MAX_JSON_BYTES = 16 * 1024**2  # experiment.json is ~2 kB, meta.json tens of kB; shared files


def _read_json(path: Path) -> object:
    """A JSON file of a (possibly downloaded, so untrusted) checkpoint, size and depth bounded."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
        if len(data) > MAX_JSON_BYTES:
            raise CheckpointError(f"{path}: larger than {MAX_JSON_BYTES} bytes; not a Magenta file")
        return json.loads(data.decode("utf-8"))
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
    except RecursionError:  # json's decoder recurses per nesting level
        raise CheckpointError(f"{path}: JSON nested too deeply") from None


def read_hparams(model_dir: Path) -> dict[str, object]:
    """experiment.json over Magenta's set_flags defaults (a null value counts as missing)."""
    path = model_dir / EXPERIMENT_JSON
    if not path.is_file():
        raise CheckpointError(
            f"{model_dir}: no {EXPERIMENT_JSON} (the training flags Magenta writes next to the "
            "stage_* folders; the model's hyperparameters are in it)"
        )
    flags = _read_json(path)
    if not isinstance(flags, dict):
        raise CheckpointError(
            f"{path}: expected a JSON object of flags, got {type(flags).__name__}"
        )
    return {**SET_FLAGS_DEFAULTS, **{k: v for k, v in flags.items() if v is not None}}


def read_pitches(model_dir: Path) -> tuple[int, ...]:
    """The model's MIDI pitches: distinct ``pitch`` values of meta.json (sorted), else 24..84."""
    path = model_dir / META_JSON
    if not path.is_file():
        return NSYNTH_PITCHES
    meta = _read_json(path)
    if not isinstance(meta, dict) or not meta:
        raise CheckpointError(f"{path}: expected a non-empty JSON object of notes")
    pitches = set()
    for name, note in meta.items():
        pitch = note.get("pitch") if isinstance(note, dict) else None
        if not isinstance(pitch, int) or isinstance(pitch, bool) or not 0 <= pitch <= 127:
            raise CheckpointError(f"{path}: note '{name}' has no MIDI 'pitch' (0..127)")
        pitches.add(pitch)
    return tuple(sorted(pitches))


def _read_weights(
    bundle: TensorBundle, config: GeneratorConfig, where: Path
) -> dict[str, np.ndarray]:
    """EMA generator weights by Magenta name, each checked against the hparams' shape."""
    weights: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(config).items():
        full = GENERATOR_SCOPE + name
        entry = bundle.entries.get(full + EMA_SUFFIX)
        if entry is None:
            hint = (
                " (only the raw weights are there; Magenta generates with the EMA copies)"
                if full in bundle.entries
                else ""
            )
            raise CheckpointError(f"{where}: missing variable '{full + EMA_SUFFIX}'{hint}")
        if entry.shape != shape:
            raise CheckpointError(
                f"{where}: variable '{full}' has shape {list(entry.shape)}, but experiment.json "
                f"implies {list(shape)} (latent_vector_size={config.latent_size}, "
                f"{len(config.pitches)} pitches, filters per block {list(config.filters)}, "
                f"kernel_size={config.kernel_size}, "
                f"start {config.start_height}x{config.start_width})"
            )
        if entry.dtype is None or entry.dtype.kind != "f":
            raise CheckpointError(f"{where}: variable '{full}' is not floating point")
        weights[name] = bundle.read(full + EMA_SUFFIX).astype(np.float32)
    return weights


def _scalar(bundle: TensorBundle, name: str, default: float) -> float:
    entry = bundle.entries.get(name)
    if entry is None or entry.shape not in ((), (1,)) or entry.dtype is None:
        return default
    return bundle.read(name).reshape(()).item()


def _model_config(model_dir: Path) -> tuple[dict[str, object], GeneratorConfig]:
    """experiment.json + meta.json of ``model_dir``: hparams and a supported GeneratorConfig."""
    hparams = read_hparams(model_dir)
    json_path = model_dir / EXPERIMENT_JSON
    check_supported(hparams, json_path)
    config = config_from_hparams(hparams, read_pitches(model_dir), json_path)
    if config.resolution != SUPPORTED_RESOLUTION:
        raise CheckpointError(
            f"{json_path}: final resolution {config.resolution[0]}x{config.resolution[1]} (start "
            f"{config.start_height}x{config.start_width}, {config.num_blocks} resolutions) is not "
            f"supported (only {SUPPORTED_RESOLUTION[0]}x{SUPPORTED_RESOLUTION[1]}, hi-freq-res mel)"
        )
    return hparams, config


def _read_trained(model_dir: Path) -> Checkpoint:
    """A ``gansynth-instrument train`` dir: EMA weights by Magenta name in generator_ema.npz.

    Every block is in it from the first stage on (untrained ones at their initial values), so
    any point of a run exports; ``progress`` follows from ``global_step`` (images seen) as in
    Magenta, and blocks whose level-of-detail weight is 0 are left out of the graph.
    """
    hparams, config = _model_config(model_dir)
    path = model_dir / TRAINED_NPZ
    try:
        with np.load(path) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise CheckpointError(f"{path}: not a readable .npz ({err})") from None
    weights: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(config).items():
        full = GENERATOR_SCOPE + name + EMA_SUFFIX
        if full not in arrays:
            raise CheckpointError(f"{path}: missing variable '{full}'")
        if arrays[full].shape != shape or arrays[full].dtype.kind != "f":
            raise CheckpointError(
                f"{path}: variable '{full}' is {arrays[full].dtype} {list(arrays[full].shape)}, "
                f"experiment.json implies float {list(shape)}"
            )
        weights[name] = arrays[full].astype(np.float32)
    step = arrays.get("global_step")
    if step is None or step.shape != () or step.dtype.kind not in "iu":
        raise CheckpointError(f"{path}: no integer 'global_step' (images seen)")
    return Checkpoint(
        config=config,
        weights=weights,
        progress=magenta_progress(hparams, config.num_blocks, int(step), 0.0),
        step=int(step),
        source=f"{model_dir.name}/{TRAINED_NPZ}",
        timbres=_read_timbres(model_dir / TIMBRES_JSON, config.latent_size),
    )


def _read_timbres(path: Path, latent_size: int) -> dict[str, tuple[float, ...]]:
    """A run's ``timbres.json`` (absent for GAN runs: no timbres), each latent checked."""
    if not path.is_file():
        return {}
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a JSON object of instrument → latent")
    timbres = {}
    for name, latent in raw.items():
        if (
            not isinstance(latent, list)
            or len(latent) != latent_size
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in latent)
        ):
            raise CheckpointError(
                f"{path}: instrument '{name}' needs {latent_size} numbers (the latent size)"
            )
        timbres[str(name)] = tuple(float(v) for v in latent)
    return timbres


def _read_dir(model_dir: Path, stage: Path, source_prefix: str) -> Checkpoint:
    hparams, config = _model_config(model_dir)
    prefix = _bundle_prefix(stage)
    bundle = TensorBundle(prefix)
    where = prefix.with_name(prefix.name + ".index")
    blocks = {int(m.group(1)) for n in bundle.entries if (m := _BLOCK_RE.match(n))}
    if not blocks:
        raise CheckpointError(
            f"{where}: no GANSynth generator variables (Generator/progressive_gan_generator/…)"
        )
    stage_match = _STAGE_RE.match(stage.name)
    if max(blocks) != config.num_blocks:
        where_stage = f"{stage.name} " if stage_match else ""
        raise CheckpointError(
            f"{where}: the generator {where_stage}has {max(blocks)} blocks, experiment.json's "
            f"num_resolutions is {config.num_blocks}; only a final-stage checkpoint can be exported"
        )
    if stage_match and hparams["train_progressive"]:
        stage_blocks = (int(stage_match.group(1)) + 1) // 2 + 1
        if stage_blocks != config.num_blocks:
            raise CheckpointError(
                f"{stage}: stage {int(stage_match.group(1))} trains {stage_blocks} of "
                f"{config.num_blocks} blocks; export a stage >= {2 * config.num_blocks - 3}"
            )
    weights = _read_weights(bundle, config, where)
    step_in_name = int(prefix.name.rpartition("-")[2]) if prefix.name[-1:].isdigit() else 0
    step = int(_scalar(bundle, "global_step", step_in_name))
    progress = magenta_progress(
        hparams, config.num_blocks, step, float(_scalar(bundle, "Variable", 0.0))
    )
    return Checkpoint(
        config=config,
        weights=weights,
        progress=progress,
        step=step,
        source=f"{source_prefix}{model_dir.name}/{stage.name}/{prefix.name}",
    )


def read_checkpoint(path: Path) -> Checkpoint:
    """Read a model dir, stage dir or zip (see module docstring) into a ``Checkpoint``.

    Raises CheckpointError (one line naming the file and the problem) for anything unusable.
    """
    path = Path(path)
    try:
        return _read_any(path)
    except OSError as err:  # permissions, vanished files, I/O errors: name the file, one line
        raise CheckpointError(f"{err.filename or path}: cannot read ({err.strerror})") from None


def _read_any(path: Path) -> Checkpoint:
    if path.is_file() and zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="gansynth-export-") as tmp:
            try:
                model_dir = _extract_zip(path, Path(tmp))
                return _read_dir(model_dir, _stage_dirs(model_dir)[-1], f"{path.name}:")
            except CheckpointError as err:  # name the zip, not the temporary copy
                raise CheckpointError(str(err).replace(tmp + "/", f"{path}:")) from None
    if (path / TRAINED_NPZ).is_file():
        return _read_trained(path)
    model_dir, stage = _locate(path)
    return _read_dir(model_dir, stage, "")
