"""``gansynth-instrument cache warm|info|clear``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gansynth_instrument.commands import load_model_from_args, model_info_from_args
from gansynth_instrument.errors import CacheError
from gansynth_instrument.live.config import check_sample_rate
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.notes.cache import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_MEMORY_BYTES,
    mib_to_bytes,
    warm,
)
from gansynth_instrument.notes.disk_store import (
    DEFAULT_CACHE_DIR,
    DEFAULT_MAX_DISK_BYTES,
    DiskStore,
)
from gansynth_instrument.notes.timbre import Timbre, morph_steps
from gansynth_instrument.presets.bank_files import bank_preset, find_bank
from gansynth_instrument.presets.preset_files import find_preset


def run(args: argparse.Namespace) -> int:
    if args.action == "warm":
        return _warm(
            args,
            args.presets,
            args.bank,
            args.seed,
            check_sample_rate(args.sample_rate),
            args.cache_dir,
            batch_size=args.batch_size,
            max_disk_mb=args.max_disk_mb,
            max_memory_mb=args.max_memory_mb,
        )
    if args.action == "info":
        return _info(args.cache_dir)
    return _clear(args.cache_dir)


def _warm(
    model_options: argparse.Namespace,
    presets: Sequence[str],
    banks: Sequence[str],
    seeds: Sequence[int],
    sample_rate: int,
    cache_dir: Path | None,
    *,
    batch_size: int | None = None,
    max_disk_mb: float | None = None,
    max_memory_mb: float | None = None,
) -> int:
    """``cache warm``: load the model, warm the cache for presets, banks (their programs and
    morph steps, as the engine will play them) and seeds; print what was done."""
    info = model_info_from_args(model_options)  # bad names fail before the model loads
    found = [find_bank(name, model=info) for name in banks]
    for bank in found:
        if bank.notice:
            print(bank.notice, file=sys.stderr)
    chosen = [find_preset(name, model=info) for name in presets]
    chosen += [bank_preset(bank, name) for bank in found for name in bank.preset_names()]
    chosen = list({p.name: p for p in chosen}.values())
    if not chosen and not seeds:
        raise CacheError("nothing to warm: name presets, a --bank or a --seed")
    model = load_model_from_args(model_options)  # onnxruntime: only once the names are good
    size = model.latent_size
    latents = {f"preset {p.name}": p.latent_vector(size) for p in chosen}
    for bank in found:
        if len(bank.morph_path) >= 2:
            path = [Timbre.from_preset(bank_preset(bank, name), size) for name in bank.morph_path]
            steps = morph_steps(path, bank.morph_steps)
            latents |= {f"bank {bank.name} morph {t.name}": t.latent for t in steps}
    latents |= {f"seed {seed}": random_latent(seed, size) for seed in seeds}
    directory = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    timbres = warm(
        model,
        latents,
        sample_rate,
        directory,
        batch_size=batch_size or DEFAULT_BATCH_SIZE,
        max_disk_bytes=mib_to_bytes(max_disk_mb, DEFAULT_MAX_DISK_BYTES),
        max_memory_bytes=mib_to_bytes(max_memory_mb, DEFAULT_MAX_MEMORY_BYTES),
    )
    for name, timbre in timbres.items():
        print(f"{name}: timbre {timbre}, {len(model.pitches)} notes at {sample_rate} Hz")
    return _info(directory)


def _info(cache_dir: Path | None) -> int:
    """``cache info``: where the disk cache is, how many notes it holds, how big it is."""
    summary = DiskStore(_existing_dir(cache_dir)).summary()
    print(f"cache dir: {summary.path}")
    print(
        f"entries:   {summary.entries} notes "
        f"({summary.models} model(s), {summary.timbres} timbre(s))"
    )
    print(f"size:      {summary.total_bytes / 1e6:.1f} MB")
    return 0


def _clear(cache_dir: Path | None) -> int:
    """``cache clear``: delete every cached note file (only those: nothing else in the dir)."""
    path = _existing_dir(cache_dir)
    removed, removed_bytes = DiskStore(path).clear()
    print(f"removed {removed} files ({removed_bytes / 1e6:.1f} MB) from {path}")
    return 0


def _existing_dir(cache_dir: Path | None) -> Path:
    path = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    if path.exists() and not path.is_dir():
        raise CacheError(f"{path}: cache dir is not a directory")
    return path
