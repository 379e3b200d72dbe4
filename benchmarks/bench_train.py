"""Training throughput per resolution, and what a whole run of a config would take here.

    python benchmarks/bench_train.py [--config cpu] [--steps 3] [--threads N]

For each resolution the trainer reaches (2×16 … 128×1024), times ``--steps`` full training steps
(discriminator with gradient penalty, generator, EMA) at the config's batch size on random
normalised spectrograms, after one warm-up step, and prints images/s (wall and per process CPU
second: trust the latter on a shared machine), then the hours each stage of the config would take
(stable + transition stages at that resolution) and the total.
"""

from __future__ import annotations

import argparse
import time

import torch

from gansynth_instrument.memory import keep_freed_memory
from gansynth_instrument.training import config, run_state, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="cpu", choices=tuple(config.CONFIGS))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per resolution (3)")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    args = parser.parse_args()
    keep_freed_memory()  # as `train` does
    if args.threads:
        torch.set_num_threads(args.threads)
    hp = {**config.CONFIGS[args.config], "seed": 0}
    pitches = tuple(range(24, 85))
    run = run_state.new_run(hp, pitches, 0)
    blocks = run.config.num_blocks
    stable, transition = hp["stable_stage_num_images"], hp["transition_stage_num_images"]
    print(
        f"config {args.config}: filters {list(run.config.filters)}, "
        f"{sum(p.numel() for p in run.generator.parameters()) / 1e6:.3f} M generator / "
        f"{sum(p.numel() for p in run.discriminator.parameters()) / 1e6:.3f} M discriminator "
        f"parameters, {torch.get_num_threads()} threads"
    )
    print(f"{'resolution':>10} {'batch':>5} {'img/s':>8} {'img/CPU-s':>10} {'stage h':>8}")
    total_h = 0.0
    for num_blocks in range(1, blocks + 1):
        images = stable * (2 * num_blocks - 2) // 2 + transition * (num_blocks - 1)
        where = config.schedule_at(hp, images)  # the stable stage of this resolution
        scale = 2 ** (blocks - num_blocks)
        height, width = run.config.resolution[0] // scale, run.config.resolution[1] // scale
        real = torch.rand(where.batch_size, 2, height, width) * 2 - 1
        labels = torch.randint(0, len(pitches), (where.batch_size,))
        steps.train_step(run, real, labels, labels, where, 1)  # warm-up
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            steps.train_step(run, real, labels, labels, where, 1)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rate = args.steps * where.batch_size / wall
        # A resolution's share of a run: its stable stage plus the transition into it (the last
        # resolution runs on to total_num_images).
        share = stable + (transition if num_blocks > 1 else 0)
        if num_blocks == blocks:
            share = hp["total_num_images"] - images + transition
        hours = share / rate / 3600
        total_h += hours
        print(
            f"{height:>4}×{width:<5} {where.batch_size:>5} {rate:>8.2f} "
            f"{args.steps * where.batch_size / cpu:>10.2f} {hours:>8.2f}"
        )
    print(f"whole config ({hp['total_num_images']} images): about {total_h:.1f} h at these rates")


if __name__ == "__main__":
    main()
