"""GANSynth's progressive generator and discriminator in PyTorch, parameters named as Magenta's.

Facts from ``shared/docs/magenta-gansynth.md`` §2 (lib/networks.py, lib/layers.py): equalized
learning rate (kernels N(0,1), scaled at run time by ``sqrt(2 / ((1 + slope²) fan_in))``), pixel
norm after every generator conv, leaky ReLU 0.2, nearest ×2 upscaling, tanh ``to_rgb``, level-of-
detail blending by ``progress``; the discriminator mirrors it with ``from_rgb``, average-pool
downscaling, a minibatch-stddev channel, a WGAN logit and the auxiliary pitch classifier.

Kernels are stored HWIO, exactly the array Magenta keeps under
``progressive_gan_generator/progressive_gan_block_{b}/{conv0,conv1,to_rgb}/conv2d/kernel``, so
``Generator.magenta_weights()`` is what ``gansynth_instrument.export.graph.build_generator`` takes.

Every block exists from the start (Magenta adds them stage by stage); a block the current stage
does not reach gets no gradient, so it stays at its initial values until its stage comes, as in
Magenta. Networks run at the current stage's resolution: the generator's output equals Magenta's
full-resolution output average-pooled to it (nearest upscaling and pooling commute exactly).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gansynth_instrument.export.graph import GeneratorConfig, he_scale, lod_weights, weight_name

LEAKY_SLOPE = 0.2
PIXEL_NORM_EPS = 1e-8
COLORS = 2


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """x / sqrt(mean(x², channels) + 1e-8): keeps each pixel's feature vector at unit RMS."""
    return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + PIXEL_NORM_EPS)


def upscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def downscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    return x if factor == 1 else F.avg_pool2d(x, factor)


class EqualizedConv(nn.Module):
    """Magenta's ``custom_conv2d``: HWIO kernel ~ N(0,1), He scale applied at run time."""

    def __init__(self, kernel_hw: tuple[int, int], cin: int, cout: int, slope: float) -> None:
        super().__init__()
        shape = (*kernel_hw, cin, cout)
        self.kernel = nn.Parameter(torch.randn(shape))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = he_scale(shape, slope)

    def forward(self, x: torch.Tensor, padding: str = "same") -> torch.Tensor:
        weight = self.kernel.permute(3, 2, 0, 1) * self.scale
        return F.conv2d(x, weight, self.bias, padding=padding)


class EqualizedDense(nn.Module):
    """Magenta's ``custom_dense`` (He slope 1): a [in, out] kernel scaled by sqrt(1/in)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(cin, cout))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = he_scale((cin, cout), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ (self.kernel * self.scale) + self.bias


def _block_key(block: int) -> str:
    return f"progressive_gan_block_{block}"


class Generator(nn.Module):
    """G(z, one-hot pitch, progress) → normalised [B, 2, h, w] at stage ``num_blocks``."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        k = (config.kernel_size, config.kernel_size)
        start = (config.start_height, config.start_width)
        inputs = config.latent_size + len(config.pitches)
        self.blocks = nn.ModuleDict()
        for b, nf in enumerate(config.filters, start=1):
            cin = inputs if b == 1 else config.filters[b - 2]
            self.blocks[_block_key(b)] = nn.ModuleDict(
                {
                    "conv0": EqualizedConv(start if b == 1 else k, cin, nf, 0.0),
                    "conv1": EqualizedConv(k, nf, nf, 0.0),
                    "to_rgb": EqualizedConv((1, 1), nf, COLORS, 1.0),
                }
            )

    def forward(
        self, z: torch.Tensor, one_hot: torch.Tensor, progress: float, num_blocks: int
    ) -> torch.Tensor:
        def act(y: torch.Tensor) -> torch.Tensor:
            return pixel_norm(F.leaky_relu(y, LEAKY_SLOPE))

        x = pixel_norm(torch.cat([z, one_hot], dim=1))
        first = self.blocks[_block_key(1)]
        # Block 1's VALID conv on the 1x1 input zero-padded to ``start`` is a dense layer:
        # output pixel (i, j) sees kernel tap (h-1-i, w-1-j).
        kernel = first["conv0"].kernel.flip(0, 1) * first["conv0"].scale
        x = act(torch.einsum("bi,hwio->bohw", x, kernel) + first["conv0"].bias[:, None, None])
        x = act(first["conv1"](x))
        alphas = lod_weights(self.config.num_blocks, progress)
        out = None
        for b in range(1, num_blocks + 1):
            block = self.blocks[_block_key(b)]
            if b > 1:
                x = act(block["conv1"](act(block["conv0"](upscale(x, 2)))))
            if alphas[b - 1] > 0:
                rgb = alphas[b - 1] * upscale(torch.tanh(block["to_rgb"](x)), 2 ** (num_blocks - b))
                out = rgb if out is None else out + rgb
        assert out is not None, f"progress {progress} does not reach block <= {num_blocks}"
        return out

    def magenta_weights(self) -> dict[str, np.ndarray]:
        """Parameters as float32 arrays by Magenta name (no ``Generator/``, no EMA suffix)."""
        weights = {}
        for b in range(1, self.config.num_blocks + 1):
            for layer, module in self.blocks[_block_key(b)].items():
                for kind in ("kernel", "bias"):
                    tensor = getattr(module, kind).detach().cpu()
                    weights[weight_name(b, layer, kind)] = tensor.numpy().astype(np.float32)
        return weights

    def load_magenta_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Set the parameters ``weights`` names (Magenta names, shapes already checked); the
        others keep their values."""
        with torch.no_grad():
            for b in range(1, self.config.num_blocks + 1):
                for layer, module in self.blocks[_block_key(b)].items():
                    for kind in ("kernel", "bias"):
                        value = weights.get(weight_name(b, layer, kind))
                        if value is not None:
                            getattr(module, kind).copy_(torch.from_numpy(value))


class Discriminator(nn.Module):
    """D(x, progress) → (WGAN logit [B], pitch-class logits [B, pitches])."""

    def __init__(self, config: GeneratorConfig, filters_0: int) -> None:
        super().__init__()
        self.config = config
        nf = (filters_0, *config.filters)  # nf[b] for block b; nf[0] for block 1's last conv
        k = (config.kernel_size, config.kernel_size)
        self.blocks = nn.ModuleDict()
        for b in range(1, config.num_blocks + 1):
            layers = {
                "from_rgb": EqualizedConv((1, 1), COLORS, nf[b], 0.0),
                "conv0": EqualizedConv(k, nf[b] + (b == 1), nf[b], 0.0),
            }
            if b == 1:
                start = (config.start_height, config.start_width)
                layers["conv1"] = EqualizedConv(start, nf[1], nf[0], 0.0)
                layers["logits"] = EqualizedDense(nf[0], 1)
            else:
                layers["conv1"] = EqualizedConv(k, nf[b], nf[b - 1], 0.0)
            self.blocks[_block_key(b)] = nn.ModuleDict(layers)
        self.classification_logits = EqualizedDense(nf[0], len(config.pitches))

    def forward(
        self, x: torch.Tensor, progress: float, num_blocks: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        def act(y: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(y, LEAKY_SLOPE)

        def from_rgb(b: int) -> torch.Tensor:
            return act(self.blocks[_block_key(b)]["from_rgb"](downscale(x, 2 ** (num_blocks - b))))

        h = from_rgb(num_blocks)
        for b in range(num_blocks, 1, -1):
            block = self.blocks[_block_key(b)]
            h = downscale(act(block["conv1"](act(block["conv0"](h)))), 2)
            alpha = min(max(b - 1 - progress, 0.0), 1.0)  # Magenta's _discriminator_alpha
            if alpha > 0:
                h = alpha * from_rgb(b - 1) + (1.0 - alpha) * h
        first = self.blocks[_block_key(1)]
        stddev = torch.sqrt(h.var(dim=0, unbiased=False) + 1e-8).mean()
        h = torch.cat([h, stddev.expand(h.shape[0], 1, *h.shape[2:])], dim=1)
        h = act(first["conv1"](act(first["conv0"](h)), padding="valid")).flatten(1)
        return first["logits"](h)[:, 0], self.classification_logits(h)


def filters_for(fmap_base: int, fmap_decay: float, fmap_max: int, blocks: int) -> tuple[int, ...]:
    """Magenta's ``num_filters(b) = int(min(fmap_base / 2^(b·decay), fmap_max))``, b = 0..blocks."""
    return tuple(
        int(min(fmap_base / math.pow(2.0, b * fmap_decay), fmap_max)) for b in range(blocks + 1)
    )
