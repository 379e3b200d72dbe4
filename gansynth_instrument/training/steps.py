"""One optimisation step of each objective (GAN, regression), the EMA, and the all-reduce that
several processes need."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from gansynth_instrument.training.config import Schedule
from gansynth_instrument.training.regression import audio_loss, low_bin_weights, regression_loss
from gansynth_instrument.training.run_state import Run


def _average_gradients(module: torch.nn.Module, world: int) -> None:
    """Mean of every rank's gradients (one all-reduce of all of them)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def agree(flag: bool, world: int, device: torch.device) -> bool:
    """True on every rank when it is true on any (ranks must stop at the same step)."""
    if world == 1:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def train_step(
    run: Run,
    real: torch.Tensor,
    labels: torch.Tensor,
    fake_labels: torch.Tensor,
    where: Schedule,
    world: int,
) -> dict[str, float]:
    """One discriminator and one generator update (tfgan's 1:1), then the EMA.

    The generator runs once: its output (and graph) serves the discriminator update detached,
    then the generator update against the updated discriminator, as a second forward pass with
    fresh latents would, for one forward pass less (bench_train.py times a step).
    """
    hp, g, d = run.hp, run.generator, run.discriminator
    assert d is not None and run.opt_d is not None
    p, n = where.progress, where.num_blocks
    batch = real.shape[0]
    device = real.device
    one_hot = F.one_hot(fake_labels, len(run.config.pitches)).float()
    generated = g(torch.randn(batch, run.config.latent_size, device=device), one_hot, p, n)
    fake = generated.detach()

    d.requires_grad_(True)
    real_score, real_class = d(real, p, n)
    fake_score, _ = d(fake, p, n)
    mix_t = torch.rand(batch, 1, 1, 1, device=device)
    mix = (real + mix_t * (fake - real)).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(mix, p, n)[0].sum(), mix, create_graph=True)
    slopes = torch.sqrt(grad.square().sum(dim=(1, 2, 3)) + 1e-10)
    target = float(hp["gradient_penalty_target"])
    penalty = ((slopes / target - 1.0) ** 2).mean()
    wasserstein = fake_score.mean() - real_score.mean()
    drift = real_score.square().mean()
    d_ac = F.cross_entropy(real_class, labels)
    d_loss = (
        wasserstein
        + float(hp["gradient_penalty_weight"]) * penalty
        + float(hp["real_score_penalty_weight"]) * drift
        + float(hp["discriminator_ac_loss_weight"]) * d_ac
    )
    run.opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    if world > 1:
        _average_gradients(d, world)
    run.opt_d.step()

    d.requires_grad_(False)
    fake_score, fake_class = d(generated, p, n)
    g_ac = F.cross_entropy(fake_class, fake_labels)
    g_loss = -fake_score.mean() + float(hp["generator_ac_loss_weight"]) * g_ac
    run.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    if world > 1:
        _average_gradients(g, world)
    run.opt_g.step()
    _update_ema(run)
    return {
        "d_loss": d_loss.item(),
        "g_loss": g_loss.item(),
        "wasserstein": wasserstein.item(),
        "gradient_penalty": penalty.item(),
        "drift": drift.item(),
        "d_pitch_ce": d_ac.item(),
        "g_pitch_ce": g_ac.item(),
    }


def _update_ema(run: Run) -> None:
    decay = float(run.hp["ema_decay"])
    with torch.no_grad():
        for shadow, param in zip(run.ema.parameters(), run.generator.parameters(), strict=True):
            shadow.lerp_(param, 1.0 - decay)


def regression_step(
    run: Run,
    real: torch.Tensor,
    labels: torch.Tensor,
    z: torch.Tensor,
    where: Schedule,
    world: int,
    real_figures: torch.Tensor | None = None,
) -> dict[str, float]:
    """One generator update towards the real notes (regression.py), then the EMA.

    ``real_figures``: the real notes' audio level and brightness (``RealData.figures``), which
    hparam ``trainer_audio_loss`` holds the fake notes' to; needed where ``hears_audio``.
    """
    one_hot = F.one_hot(labels, len(run.config.pitches)).float()
    with torch.autocast("cpu", torch.bfloat16, enabled=_bf16(run)):
        fake = run.generator(z, one_hot, where.progress, where.num_blocks)
    normalizer = (run.config.normalizer_a[0], run.config.normalizer_b[0])
    band_weight = float(run.hp.get("trainer_band_loss_weight", 0.0))
    bin_weights = low_bin_weights(real.shape[-1], *run.hp.get("trainer_low_bin_boost", [200, 1]))
    circular = bool(run.hp.get("trainer_if_circular", False))
    if_period = 2.0 * run.config.normalizer_a[1] if circular else None
    losses = regression_loss(fake.float(), real, normalizer, band_weight, bin_weights, if_period)
    heard_notes = heard_rows(run, where, labels)
    if heard_notes.any():
        assert real_figures is not None
        weights = run.hp["trainer_audio_loss"]
        rep = run.config.representation()
        heard = audio_loss(fake[heard_notes].float(), real_figures[heard_notes], rep, weights)
        losses = {**losses, **heard, "loss": losses["loss"] + heard["loss"]}
    run.opt_g.zero_grad(set_to_none=True)
    losses["loss"].backward()
    if world > 1:
        _average_gradients(run.generator, world)
    rows, gain = pitch_rows(run), float(run.hp.get("trainer_pitch_gain", 1.0))
    before = rows.detach().clone() if gain != 1.0 else None
    run.opt_g.step()
    if before is not None:
        with torch.no_grad():
            rows += (gain - 1.0) * (rows - before)
    _update_ema(run)
    return {k: v.item() for k, v in losses.items()}


def hears_audio(run: Run, where: Schedule) -> bool:
    """Whether this step adds hparam ``trainer_audio_loss`` (on, and at full size)."""
    weights = run.hp.get("trainer_audio_loss", [0.0, 0.0])
    return any(weights) and where.num_blocks == run.config.num_blocks


def heard_rows(run: Run, where: Schedule, labels: torch.Tensor) -> torch.Tensor:
    """Which notes of the batch the audio loss hears: none unless ``hears_audio``, else those at
    or above hparam ``trainer_audio_loss_lowest_pitch``.

    Why: a low note's level sits in its partials above the fundamental, and raising it there may
    take the fundamental under, so the note is heard an octave up (README, *Make your own
    instrument*, tests this).
    """
    if not hears_audio(run, where):
        return torch.zeros_like(labels, dtype=torch.bool)
    pitches = torch.tensor(run.config.pitches, device=labels.device)[labels]
    return pitches >= int(run.hp.get("trainer_audio_loss_lowest_pitch", 0))


def pitch_rows(run: Run) -> torch.Tensor:
    """Block 1's kernel rows that the one-hot pitch feeds (a view: writes go to the weights).

    The pitch is one input of latent + pitches, after pixel norm as big as one latent value, so
    through N(0, 1) rows it reaches the first layer sqrt(latent) = 16× weaker than the latent as
    a whole, and Adam moves every weight by about the same step, so the generator learns to
    ignore pitch. A regression run gives these rows ``trainer_pitch_gain``× the initial values
    and steps: the same as training ``gain · v`` at the usual rate, the exported weights
    unchanged in layout.
    """
    kernel = run.generator.blocks["progressive_gan_block_1"]["conv0"].kernel
    return kernel[:, :, run.config.latent_size :]


def _bf16(run: Run) -> bool:
    """bf16 autocast of the CPU forward pass (hparam ``trainer_bf16``, regression only): on CPUs
    with native bf16 the dear top sizes train faster than in float32; the loss, gradients and
    weights stay float32. Elsewhere bf16 is emulated and slower than float32, so it is not used."""
    return (
        bool(run.hp.get("trainer_bf16", False)) and not torch.cuda.is_available() and native_bf16()
    )


@functools.cache
def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has bf16 arithmetic (x86: AVX-512 BF16 or AMX; Arm: BF16), from the
    kernel's CPU flags (False where they cannot be read); read once, not at every step."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = {
        flag
        for line in text.splitlines()
        if line.lower().startswith(("flags", "features"))
        for flag in line.partition(":")[2].split()
    }
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
