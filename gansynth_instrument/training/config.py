"""What a training run is configured by: Magenta's flags (``experiment.json``), the named configs,
``--hparams``, and where a count of images puts the run in the progressive-growing schedule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from gansynth_instrument.errors import TrainingError
from gansynth_instrument.export.graph import GeneratorConfig
from gansynth_instrument.export.hparams import MEL_PROG_HIRES, magenta_progress, stage_lengths
from gansynth_instrument.model.metadata import MAG_NORMALIZER, P_NORMALIZER
from gansynth_instrument.training.networks import filters_for

# Magenta's mel_prog_hires + the set_flags values it relies on (experiment.json keys).
FULL: dict[str, Any] = {
    **MEL_PROG_HIRES,
    "g_fn": "specgram",
    "d_fn": "specgram",
    "data_normalizer": "specgrams_prespecified_normalizer",
    "mag_normalizer_a": MAG_NORMALIZER[0],
    "mag_normalizer_b": MAG_NORMALIZER[1],
    "p_normalizer_a": P_NORMALIZER[0],
    "p_normalizer_b": P_NORMALIZER[1],
    "audio_length": 64000,
    "sample_rate": 16000,
    "train_time_limit": None,
    "simple_arch": False,
    "scale_mode": "ALL",
    "scale_base": 2,
    "to_rgb_activation": "tanh",
    "kernel_size": 3,
    "batch_size_schedule": [8],
    "generator_learning_rate": 8e-4,
    "discriminator_learning_rate": 8e-4,
    "adam_beta1": 0.0,
    "adam_beta2": 0.99,
    "gradient_penalty_target": 1.0,
    "gradient_penalty_weight": 10.0,
    "real_score_penalty_weight": 0.001,
    "generator_ac_loss_weight": 10.0,
    "discriminator_ac_loss_weight": 10.0,
    "ema_decay": 0.999,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "full": FULL,
    # Widths capped at 32 (433 k generator parameters), bigger batches where images are cheap.
    "cpu": {
        **FULL,
        "fmap_base": 4096,
        "fmap_max": 32,
        "stable_stage_num_images": 20000,
        "transition_stage_num_images": 20000,
        "total_num_images": 260000,
        "batch_size_schedule": [32, 32, 32, 16, 16, 8, 8],
    },
    # The bundled default model: regression (no discriminator, see regression.py), 64 filters
    # at low resolution and 32/16 at the two costly top ones; Adam with momentum (no GAN game).
    # Batches of 4 at every size: what each note's pitch adds to its instrument's average is seen
    # once per note, so pitch is learned per Adam step, not per image: bigger batches at the
    # cheap low sizes leave the generator ignoring pitch (README, "Make your own instrument").
    "bundled": {
        **FULL,
        "trainer_objective": "regression",
        "fmap_base": 2048,
        "fmap_max": 64,
        "stable_stage_num_images": 5000,  # Magenta's flags, overridden by trainer_stage_images
        "transition_stage_num_images": 5000,
        # Images per stage (2x16, ->4x32, 4x32, ..., ->128x1024): long at 16x128, where pitch
        # is learned cheaply (diagnose_regression.py measures it), short at the dear top sizes.
        "trainer_stage_images": [4000] * 4 + [8000, 8000, 64000, 4000, 6000, 2000, 2000, 2000],
        "total_num_images": 400000,
        "batch_size_schedule": [4],
        "generator_learning_rate": 1e-3,
        "adam_beta1": 0.9,
        "ema_decay": 0.995,
        "trainer_bf16": True,
        "trainer_pitch_gain": 16.0,
        "trainer_band_loss_weight": 0.0,  # regression.band_power; > 0 for level and brightness
        "trainer_pitch_boost": [30, 40, 1],  # regression.pitch_weights: [low, high, factor]
        "trainer_low_bin_boost": [200, 1],  # regression.low_bin_weights: [reference Hz, cap]
        "trainer_if_circular": False,  # regression_loss's if_period: the IF error modulo 2π
        "trainer_audio_loss": [0.0, 0.0],  # regression.audio_loss: [level, brightness] weights
        "trainer_audio_loss_lowest_pitch": 0,  # steps.heard_rows: notes below it are not heard
    },
    # For tests: 4 filters, two images per stage, every stage reached in seconds.
    "tiny": {
        **FULL,
        "fmap_base": 512,
        "fmap_max": 4,
        "latent_vector_size": 8,
        "stable_stage_num_images": 2,
        "transition_stage_num_images": 2,
        "total_num_images": 26,
        "batch_size_schedule": [2],
    },
}


@dataclass(frozen=True)
class Schedule:
    """Where ``images`` seen puts the run: Magenta's stage, its blocks and LOD progress."""

    stage: int
    num_blocks: int
    progress: float
    batch_size: int


def schedule_at(hp: dict[str, Any], images: int) -> Schedule:
    """Stage ``2k`` is stable with k+1 blocks, ``2k+1`` fades block k+2 in; the last runs on."""
    blocks = int(hp["num_resolutions"])
    stage = int(np.searchsorted(np.cumsum(stage_lengths(hp)), images, side="right"))
    num_blocks = min((stage + 1) // 2 + 1, blocks)
    sizes = list(hp["batch_size_schedule"])
    return Schedule(
        stage=stage,
        num_blocks=num_blocks,
        progress=magenta_progress(hp, blocks, images, 0.0),
        batch_size=int(sizes[min(num_blocks - 1, len(sizes) - 1)]),
    )


def generator_config(hp: dict[str, Any], pitches: tuple[int, ...]) -> GeneratorConfig:
    filters = filters_for(
        int(hp["fmap_base"]),
        float(hp["fmap_decay"]),
        int(hp["fmap_max"]),
        int(hp["num_resolutions"]),
    )
    if min(filters) < 1:
        raise TrainingError(f"fmap_base/fmap_max give a block with no filters: {list(filters)}")
    scale = 2 ** (int(hp["num_resolutions"]) - 1)
    if (int(hp["start_height"]) * scale, int(hp["start_width"]) * scale) != (128, 1024):
        raise TrainingError(
            "start_height/start_width/num_resolutions must reach 128×1024 (the only size the "
            "runtime plays: 4 s of Magenta's hi-freq-res IF-mel)"
        )
    return GeneratorConfig(
        latent_size=int(hp["latent_vector_size"]),
        pitches=pitches,
        start_height=int(hp["start_height"]),
        start_width=int(hp["start_width"]),
        filters=filters[1:],
        kernel_size=int(hp["kernel_size"]),
        normalizer_a=(float(hp["mag_normalizer_a"]), float(hp["p_normalizer_a"])),
        normalizer_b=(float(hp["mag_normalizer_b"]), float(hp["p_normalizer_b"])),
    )


# What --hparams may change when resuming: the schedule's lengths and batch sizes, which notes
# are drawn and a loss weight; nothing that shapes the networks or the optimiser state.
RESUMABLE_HPARAMS = (
    "total_num_images",
    "batch_size_schedule",
    "trainer_stage_images",
    "trainer_band_loss_weight",
    "trainer_pitch_boost",
    "trainer_low_bin_boost",
    "trainer_if_circular",
    "trainer_audio_loss",
    "trainer_audio_loss_lowest_pitch",
)


def _weight(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def parse_hparams(text: str | None, base: dict[str, Any]) -> dict[str, Any]:
    """``--hparams`` JSON (Magenta's flag names) checked against ``base``'s keys and types."""
    if not text:
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise TrainingError(
            f"--hparams: not valid JSON ({err.msg} at column {err.colno})"
        ) from None
    if not isinstance(values, dict):
        raise TrainingError("--hparams: expected a JSON object, e.g. '{\"fmap_max\": 64}'")
    for key, value in values.items():
        if key not in base or key == "seed":
            raise TrainingError(f"--hparams: unknown key '{key}' (known: {', '.join(base)})")
        expected = base[key]
        numbers = (int, float) if isinstance(expected, float) else (type(expected),)
        if isinstance(value, bool) != isinstance(expected, bool) or not isinstance(value, numbers):
            raise TrainingError(
                f"--hparams: '{key}' should be like {json.dumps(expected)}, got {json.dumps(value)}"
            )
        if key == "trainer_audio_loss":
            if len(value) != 2 or not all(_weight(v) for v in value):
                raise TrainingError(
                    f"--hparams: 'trainer_audio_loss' is [level weight, brightness weight], "
                    f"each a number >= 0, got {value}"
                )
        elif key == "trainer_audio_loss_lowest_pitch" and not 0 <= value <= 127:
            raise TrainingError(
                f"--hparams: 'trainer_audio_loss_lowest_pitch' is a MIDI pitch 0-127, got {value}"
            )
        elif isinstance(value, list) and not (
            value and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        ):
            raise TrainingError(f"--hparams: '{key}' needs positive ints: {value}")
        stages = 2 * int(base["num_resolutions"]) - 2
        if key == "trainer_pitch_boost" and (len(value) != 3 or value[0] > value[1]):
            raise TrainingError(
                f"--hparams: 'trainer_pitch_boost' is [low pitch, high pitch, factor], got {value}"
            )
        if key == "trainer_low_bin_boost" and len(value) != 2:
            raise TrainingError(
                f"--hparams: 'trainer_low_bin_boost' is [reference Hz, cap], got {value}"
            )
        if key == "trainer_stage_images" and len(value) != stages:
            raise TrainingError(
                f"--hparams: 'trainer_stage_images' needs {stages} counts (every stage but the "
                f"last), got {len(value)}"
            )
    return values
