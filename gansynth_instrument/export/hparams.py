"""Magenta's GANSynth hyperparameters: the defaults its ``set_flags`` fills in, the flags of the
released models, which values this exporter supports, and what they imply (the generator's shape,
the progressive-growing schedule and the LOD ``progress`` at a step). Pure values: reading the files
that hold them is ``checkpoint.py``'s job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gansynth_instrument.errors import CheckpointError
from gansynth_instrument.export.graph import GeneratorConfig
from gansynth_instrument.model.metadata import MAG_NORMALIZER, P_NORMALIZER

NSYNTH_PITCHES = tuple(range(24, 85))  # lib/datasets.py get_pitch_counts(): 61 classes

# configs/mel_prog_hires.py: the flags of the released all_instruments / acoustic_only models.
MEL_PROG_HIRES: dict[str, object] = {
    "data_type": "mel",
    "latent_vector_size": 256,
    "start_height": 2,
    "start_width": 16,
    "num_resolutions": 7,
    "fmap_base": 4096,
    "fmap_decay": 1.0,
    "fmap_max": 256,
    "stable_stage_num_images": 800000,
    "transition_stage_num_images": 800000,
    "total_num_images": 11000000,
    "train_progressive": True,
}

# lib/model.py set_flags(): what Magenta fills in for keys experiment.json lacks (only the keys
# that shape inference; training-only flags are never read here).
SET_FLAGS_DEFAULTS: dict[str, object] = {
    "data_type": "mel",
    "audio_length": 64000,
    "sample_rate": 16000,
    "data_normalizer": "specgrams_prespecified_normalizer",
    "mag_normalizer_a": MAG_NORMALIZER[0],
    "mag_normalizer_b": MAG_NORMALIZER[1],
    "p_normalizer_a": P_NORMALIZER[0],
    "p_normalizer_b": P_NORMALIZER[1],
    "stable_stage_num_images": 32,
    "transition_stage_num_images": 32,
    "train_progressive": True,
    "train_time_limit": None,
    "train_time_stage_multiplier": 1.0,
    "g_fn": "specgram",
    "latent_vector_size": 256,
    "kernel_size": 3,
    "start_height": 4,
    "start_width": 8,
    "scale_mode": "ALL",
    "scale_base": 2,
    "num_resolutions": 7,
    "simple_arch": False,
    "to_rgb_activation": "tanh",
    "fmap_base": 512,
    "fmap_decay": 1.0,
    "fmap_max": 128,
}

# What the runtime's post-processing reproduces (SpecgramsHelper for data_type 'mel', hi-freq-res).
SUPPORTED = {
    "g_fn": ("specgram",),
    "data_type": ("mel",),
    "data_normalizer": ("specgrams_prespecified_normalizer",),
    "simple_arch": (False,),
    "scale_mode": ("ALL",),
    "scale_base": (2,),
    "to_rgb_activation": ("tanh", "linear"),
    "audio_length": (64000,),
    "sample_rate": (16000,),
}
SUPPORTED_RESOLUTION = (128, 1024)


def flag(hparams: dict[str, object], key: str, kind: type, where: Path) -> object:
    """``hparams[key]`` checked to be a ``kind`` (ints accepted as floats, bools never as ints)."""
    value = hparams[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise CheckpointError(
            f"{where}: '{key}' should be {kind.__name__}, got {json.dumps(value)}"
        )
    if kind in (int, float) and value < 0:  # type: ignore[operator]
        raise CheckpointError(f"{where}: '{key}' should not be negative, got {value}")
    return value


def check_supported(hparams: dict[str, object], where: Path) -> None:
    for key, allowed in SUPPORTED.items():
        if hparams[key] not in allowed:
            raise CheckpointError(
                f"{where}: {key} = {json.dumps(hparams[key])} is not supported (supported: "
                f"{', '.join(json.dumps(a) for a in allowed)})"
            )


def magenta_progress(
    hparams: dict[str, object], num_blocks: int, global_step: int, train_time_s: float
) -> float:
    """Magenta's LOD ``progress`` at restore time (lib/networks.py compute_progress[_from_time])."""
    if not hparams["train_progressive"]:
        return float(num_blocks - 1)
    if hparams["train_time_limit"] is not None:
        num_stages = 2 * int(hparams["num_resolutions"]) - 1  # type: ignore[call-overload]
        growth = float(hparams["train_time_stage_multiplier"])  # type: ignore[arg-type]
        stage_times = np.cumsum(growth ** np.arange(num_stages, dtype=np.float32))
        stage_times *= float(hparams["train_time_limit"]) / stage_times[-1]  # type: ignore[arg-type]
        stage_times = np.concatenate([[0.0], stage_times]).astype(np.float32)
        progress = 0.0
        for i in range(1, num_stages, 2):
            span = (train_time_s - stage_times[i]) / (stage_times[i + 1] - stage_times[i])
            progress += float(np.clip(span, 0.0, 1.0))
        return min(progress, float(num_blocks - 1))
    progress, start = 0.0, 0
    for stage, length in enumerate(stage_lengths(hparams)[: 2 * num_blocks - 2]):
        if stage % 2:  # a transition fades the next block in
            progress += min(max((global_step - start) / length, 0.0), 1.0)
        start += length
    return float(np.float32(progress))


def stage_lengths(hparams: dict[str, object]) -> list[int]:
    """Images of each stage but the last (stable, transition, stable, ...; the last runs on).

    Magenta's uniform stable/transition counts, or our trainer's ``trainer_stage_images`` (one
    count per stage): pitch is learned per optimiser step, and steps are cheap at low sizes and
    dear at the top, so a regression run wants long low stages and short top ones.
    """
    explicit = hparams.get("trainer_stage_images")
    if explicit:
        return [int(n) for n in explicit]  # type: ignore[union-attr]
    stable = int(hparams["stable_stage_num_images"])  # type: ignore[call-overload]
    transition = int(hparams["transition_stage_num_images"])  # type: ignore[call-overload]
    stages = 2 * int(hparams["num_resolutions"]) - 2  # type: ignore[call-overload]
    return [transition if stage % 2 else stable for stage in range(stages)]


def config_from_hparams(
    hparams: dict[str, object], pitches: tuple[int, ...], where: Path
) -> GeneratorConfig:
    ints = {
        k: flag(hparams, k, int, where)
        for k in (
            "latent_vector_size", "kernel_size", "start_height", "start_width",
            "num_resolutions", "fmap_base", "fmap_max", "stable_stage_num_images",
            "transition_stage_num_images",
        )
    }  # fmt: skip
    for key in ("stable_stage_num_images", "transition_stage_num_images", "num_resolutions"):
        if ints[key] < 1:  # type: ignore[operator]
            raise CheckpointError(f"{where}: '{key}' should be at least 1, got {ints[key]}")
    if ints["kernel_size"] % 2 == 0:  # type: ignore[operator]
        raise CheckpointError(
            f"{where}: an even kernel_size ({ints['kernel_size']}) is not supported"
        )
    flag(hparams, "train_progressive", bool, where)
    decay = flag(hparams, "fmap_decay", float, where)
    floats = [
        flag(hparams, k, float, where)
        for k in ("mag_normalizer_a", "p_normalizer_a", "mag_normalizer_b", "p_normalizer_b")
    ]
    if 0.0 in floats[:2]:
        raise CheckpointError(f"{where}: a normaliser scale (mag/p_normalizer_a) is 0")
    filters = tuple(
        int(min(ints["fmap_base"] / 2 ** (b * decay), ints["fmap_max"]))  # type: ignore[operator]
        for b in range(1, ints["num_resolutions"] + 1)  # type: ignore[operator]
    )
    return GeneratorConfig(
        latent_size=ints["latent_vector_size"],  # type: ignore[arg-type]
        pitches=pitches,
        start_height=ints["start_height"],  # type: ignore[arg-type]
        start_width=ints["start_width"],  # type: ignore[arg-type]
        filters=filters,
        kernel_size=ints["kernel_size"],  # type: ignore[arg-type]
        to_rgb_activation=str(hparams["to_rgb_activation"]),
        normalizer_a=(floats[0], floats[1]),  # type: ignore[arg-type]
        normalizer_b=(floats[2], floats[3]),  # type: ignore[arg-type]
    )
