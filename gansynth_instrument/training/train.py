"""``gansynth-instrument train``: GANSynth's recipe in PyTorch, resumable in time-boxed chunks.

The recipe (Magenta's ``mel_prog_hires``, facts in ``shared/docs/magenta-gansynth.md``): IF-mel
spectrograms with the prespecified normaliser, progressive growing from 2×16 to 128×1024 over
stable and transition stages counted in images, WGAN-GP (penalty 10 at slope 1, drift 0.001),
the auxiliary pitch classifier on both sides (weight 10), Adam (lr 8e-4, β 0/0.99), an EMA of
the generator weights (0.999) for inference.

``--objective regression`` (the ``bundled`` config) trains the same generator without the
discriminator, fitting real notes from fixed per-instrument latents (``regression.py``): what
learns pitch within the CPU-hours a 2-core machine has.

The train dir is also an export source: ``experiment.json`` (Magenta's flag names),
``meta.json`` (the pitches) and ``generator_ema.npz`` (EMA generator weights under Magenta's
variable names, plus ``global_step`` = images seen) are what ``gansynth-instrument export``
reads. ``train_state.pt`` holds everything else needed to resume (raw weights, discriminator,
optimisers, random states); ``losses.csv`` and ``samples/stage_NN/*.wav`` show how it goes.

Several GPUs: ``torchrun --nproc_per_node N -m gansynth_instrument train ...`` — one process per
GPU, each with its own batch, gradients averaged with ``torch.distributed.all_reduce`` (NCCL on
GPUs, gloo on CPUs). Not ``DistributedDataParallel``'s wrapper: it does not support the
``torch.autograd.grad`` double backward of the gradient penalty.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from gansynth_instrument.errors import DatasetError, TrainingError
from gansynth_instrument.export.checkpoint import EXPERIMENT_JSON
from gansynth_instrument.fileio import check_writable_dir, write_text_atomic
from gansynth_instrument.memory import keep_freed_memory
from gansynth_instrument.training.config import (
    CONFIGS,
    RESUMABLE_HPARAMS,
    parse_hparams,
    schedule_at,
)
from gansynth_instrument.training.dataset import META_JSON, Dataset, read_dataset
from gansynth_instrument.training.init_from import apply_initial, read_initial
from gansynth_instrument.training.real_data import RealData
from gansynth_instrument.training.regression import (
    TIMBRES_JSON,
    Sampler,
    add_timbres,
    pitch_weights,
    read_timbres,
    timbre_latents,
)
from gansynth_instrument.training.run_log import LOSSES_CSV, LossLog, write_samples
from gansynth_instrument.training.run_state import STATE_PT, Run, new_run, resume, save
from gansynth_instrument.training.steps import agree, heard_rows, regression_step, train_step


@dataclass(frozen=True)
class TrainOptions:
    """What one ``train`` call does: the run folder and dataset, a new run's settings (ignored or
    refused when resuming) and when to stop and save."""

    dataset: Path
    train_dir: Path
    config: str | None = None  # a CONFIGS name; None: "cpu" (new run) or the run's own
    objective: str | None = None  # "gan" or "regression"; None: the config's
    hparams: str | None = None  # JSON of Magenta flag overrides
    init_from: str | None = None  # an exported model or a train dir to start from
    seed: int = 0
    threads: int | None = None  # PyTorch CPU threads; None: all
    stop_after_images: int | None = None
    time_limit_min: float | None = None
    checkpoint_every_min: float = 10.0


@contextlib.contextmanager
def _distributed() -> Iterator[tuple[int, int, torch.device]]:
    """(rank, world size, device) under torchrun; (0, 1, cuda or cpu) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
        yield dist.get_rank(), world, device
    finally:
        dist.destroy_process_group()


def _start(opts: TrainOptions, train_dir: Path, data: Dataset, rng: np.random.Generator):
    pitches = tuple(int(p) for p in np.unique(data.pitches))
    if (train_dir / STATE_PT).is_file():
        run = resume(train_dir, pitches, rng)
        if opts.config is not None and opts.config != run.hp.get("trainer_config"):
            raise TrainingError(
                f"{train_dir}: holds a run of another config than --config {opts.config}; "
                "leave --config out to resume it, or pick a new train dir"
            )
        if opts.objective is not None and opts.objective != run.hp.get("trainer_objective", "gan"):
            raise TrainingError(
                f"{train_dir}: holds a run with another objective than --objective "
                f"{opts.objective}; leave it out to resume, or pick a new train dir"
            )
        if opts.init_from is not None:
            raise TrainingError(
                f"{train_dir}: holds a started run; leave --init-from out to resume it, or pick "
                "a new train dir"
            )
        if run.config.pitches != pitches:
            raise TrainingError(f"{opts.dataset}: pitches differ from the run in {train_dir}")
        # keys the run's config has gained since the run started may be set too
        changes = parse_hparams(
            opts.hparams, {**CONFIGS.get(run.hp.get("trainer_config"), {}), **run.hp}
        )
        fixed = sorted(set(changes) - set(RESUMABLE_HPARAMS))
        if fixed:
            raise TrainingError(
                f"--hparams: {', '.join(fixed)} cannot change in a started run (only "
                f"{', '.join(RESUMABLE_HPARAMS)}); start a new train dir"
            )
        if changes:
            run.hp = {**run.hp, **changes}
            write_text_atomic(train_dir / EXPERIMENT_JSON, json.dumps(run.hp, indent=1) + "\n")
        return run
    if train_dir.is_dir() and any(train_dir.iterdir()):
        raise TrainingError(f"{train_dir}: not empty and holds no {STATE_PT}; pick a new dir")
    name = opts.config or "cpu"
    hp = {**CONFIGS[name], "seed": opts.seed, "trainer_config": name}
    if opts.objective is not None:
        hp["trainer_objective"] = opts.objective
    hp.update(parse_hparams(opts.hparams, hp))
    run = new_run(hp, pitches, opts.seed)
    timbres = None
    if opts.init_from is not None:
        initial = read_initial(Path(opts.init_from), run.config)
        run.images = initial.images
        where = schedule_at(hp, run.images)
        apply_initial(initial, run.generator, run.ema, where.num_blocks, where.progress)
        hp["trainer_init_from"] = f"{initial.path} at {initial.images} images"
        timbres = initial.timbres
    names = sorted(set(data.instruments))
    if run.regression:
        if timbres is None:
            latents = timbre_latents(int(hp["seed"]), len(names), run.config.latent_size)
            timbres = {n: [float(v) for v in latents[i]] for i, n in enumerate(names)}
        new = sorted(set(names) - set(timbres))
        if new:  # instruments the source did not know: each gets a new latent
            timbres = add_timbres(timbres, names, int(hp["seed"]), run.config.latent_size)
            hp["trainer_new_timbres"] = ",".join(new)
    check_writable_dir(train_dir, create=True)
    write_text_atomic(train_dir / EXPERIMENT_JSON, json.dumps(hp, indent=1) + "\n")
    write_text_atomic(train_dir / META_JSON, (data.path / META_JSON).read_text(encoding="utf-8"))
    if run.regression:
        write_text_atomic(
            train_dir / TIMBRES_JSON, json.dumps({n: timbres[n] for n in names}) + "\n"
        )
    save(run, train_dir, rng)  # other ranks start from this, and export works from the start
    return run


def train(opts: TrainOptions, report: Callable[[str], None]) -> int:
    """Train (or resume) until total_num_images, --time-limit-min or --stop-after-images;
    ``report`` gets the start, samples and end lines (on the first process only)."""
    keep_freed_memory()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    train_dir = Path(opts.train_dir)
    data = read_dataset(Path(opts.dataset))
    if not (data.path / META_JSON).is_file():
        raise DatasetError(f"{data.path}: no {META_JSON}")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `timeout`, a scheduler: save, stop
    try:
        return _train(opts, train_dir, data, report)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _train(
    opts: TrainOptions, train_dir: Path, data: Dataset, report: Callable[[str], None]
) -> int:
    with _distributed() as (rank, world, device):
        rng = np.random.default_rng([opts.seed, rank])
        resuming = (train_dir / STATE_PT).is_file()
        run = _start(opts, train_dir, data, rng) if rank == 0 else None
        real = RealData(data, run.config, train_dir) if run is not None else None
        if world > 1:
            dist.barrier()  # rank 0 has written the run and the spectrogram cache
            run = run or resume(train_dir, tuple(int(p) for p in np.unique(data.pitches)), rng)
            real = real or RealData(data, run.config, train_dir)
            rng = np.random.default_rng([opts.seed, rank, run.images])
        assert run is not None and real is not None
        for module in (run.generator, run.ema, run.discriminator):
            if module is not None:
                module.to(device)
        if rank == 0:
            where = schedule_at(run.hp, run.images)
            threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
            report(
                f"{train_dir}: config {run.hp.get('trainer_config', '?')}, "
                f"{len(real.labels)} notes, {len(run.config.pitches)} pitches, "
                f"{'resuming' if resuming else 'starting'} at {run.images} of "
                f"{run.hp['total_num_images']} images (stage {where.stage}), {world} × {device}"
                f"{threads}"
            )
        sampler = None
        if run.regression:
            weights = pitch_weights(data.pitches, run.hp.get("trainer_pitch_boost", [0, 0, 1]))
            sampler = Sampler(data.instruments, read_timbres(train_dir, data.instruments), weights)
        return _loop(opts, run, real, sampler, train_dir, rng, rank, world, device, report)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _loop(
    opts: TrainOptions,
    run: Run,
    real: RealData,
    sampler: Sampler | None,
    train_dir: Path,
    rng,
    rank,
    world,
    device,
    report: Callable[[str], None],
) -> int:
    total = int(run.hp["total_num_images"])
    stop_at = min(total, opts.stop_after_images or total)
    log = LossLog(train_dir / LOSSES_CSV, run.images) if rank == 0 else None
    deadline = None if opts.time_limit_min is None else time.monotonic() + 60 * opts.time_limit_min
    next_save = time.monotonic() + 60 * opts.checkpoint_every_min
    last_log, images_at_log = time.monotonic(), run.images
    bar = tqdm(total=stop_at, initial=run.images, unit="img", disable=rank != 0, delay=1.0)
    where = schedule_at(run.hp, run.images)
    reason = "done"
    try:
        while run.images < stop_at:
            started = time.monotonic()
            if sampler is not None:
                rows, z = sampler.batch(rng, where.batch_size)
                order = np.argsort(rows, kind="stable")  # RealData.batch reads rows sorted
                x, labels = real.batch(rows[order], where)
                heard = heard_rows(run, where, labels).any()  # the real figures only if used
                figures = real.figures(rows[order]).to(device) if heard else None
                losses = regression_step(
                    run, x.to(device), labels.to(device), z[order].to(device), where, world, figures
                )
            else:
                rows = rng.integers(0, len(real.labels), where.batch_size)
                x, labels = real.batch(rows, where)
                fake_labels = real.labels[rng.integers(0, len(real.labels), where.batch_size)]
                losses = train_step(
                    run, x.to(device), labels.to(device), fake_labels.to(device), where, world
                )
            run.images += where.batch_size * world
            run.train_s += time.monotonic() - started
            bar.update(where.batch_size * world)
            if log is not None:
                log.add(losses)
            now = time.monotonic()
            after = schedule_at(run.hp, run.images)
            stage_done = after.stage != where.stage
            if log is not None and (now - last_log > 30 or stage_done or run.images >= stop_at):
                rate = (run.images - images_at_log) / max(now - last_log, 1e-9)
                means = log.flush(run.images, where, rate)
                shown = ("loss",) if sampler is not None else ("d_loss", "g_loss")
                bar.set_postfix(
                    stage=where.stage, **{k: f"{means[k]:.3g}" for k in shown}, refresh=False
                )
                last_log, images_at_log = now, run.images
            if rank == 0 and stage_done:
                samples = write_samples(run, where, train_dir)
                save(run, train_dir, rng)
                bar.write(f"stage {where.stage} done at {run.images} images: {samples}")
                next_save = time.monotonic() + 60 * opts.checkpoint_every_min
            elif rank == 0 and now > next_save:
                save(run, train_dir, rng)
                next_save = now + 60 * opts.checkpoint_every_min
            where = after
            if agree(deadline is not None and now > deadline, world, device):
                reason = f"time limit ({opts.time_limit_min:g} min)"
                break
    except KeyboardInterrupt:
        reason = "interrupted"
    finally:
        bar.close()
    if rank == 0:
        if run.images >= total:
            report(write_samples(run, where, train_dir))
        save(run, train_dir, rng)
        status = "finished" if run.images >= total else "stopped; run the same command to go on"
        report(
            f"{train_dir}: {reason}, {run.images} of {total} images, stage {where.stage} "
            f"(progress {where.progress:g}), {run.train_s / 60:.1f} min of training in all; "
            f"{status}. Export: gansynth-instrument export {train_dir} -o model.onnx"
        )
    return 130 if reason == "interrupted" else 0
