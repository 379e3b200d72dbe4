"""Timbre knobs: the directions along which a model's timbres vary most (GANSpace), found once
per model and kept on disk.

GANSpace (Härkönen et al. 2020): draw many random latents, record an early generator layer's
activations, and take their principal components; moving along the leading ones changes the
sound in ordered, repeatable ways. All latents are drawn at one reference pitch, so the
components describe timbre, not pitch.

The layer is block 2's conv0 output after its activation and pixel norm (the tensor block 2's
conv1 reads). GANSpaceSynth takes block 1's, but there the variance past the second component is
spread almost evenly, so knobs 3 and up would be arbitrary directions within that spread; one
block later the leading components stand apart (``benchmarks/bench_knobs.py`` prints each knob's
share of the variance and what it does to the notes).

The exported graph has no input for an offset in activation space, so each component is carried
back to a direction in z by linear regression of the latents on their component coordinates
(GANSpace's method for generators without a style space). A knob then moves z along a unit
direction: the result is an ordinary latent that the note cache renders, keys and stores like
any other timbre, and that a preset can hold. z ~ N(0, I), so along any unit direction timbres
have standard deviation 1: a knob offset of +1 is one standard deviation.

The activations come from a sub-graph cut out of the exported ONNX file (two blocks, not a whole
note per latent). The PCA is a block subspace iteration (Halko, Martinsson & Tropp 2011) over
batches of latents. Their activations are kept between passes when they fit in 256 MB; beyond
that (the released model's 32,768 block-2 values per latent) each pass draws them again from
their seeds, so memory stays O(dims × count) where a covariance matrix would take 8 GB.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.helper
from tqdm import tqdm

from gansynth_instrument.errors import ModelError, OutputError, PresetError
from gansynth_instrument.fileio import atomic_path
from gansynth_instrument.model.knob_qualities import WORDS, orient, plus_label
from gansynth_instrument.model.metadata import INPUT_LATENT, INPUT_PITCH
from gansynth_instrument.model.runtime import Model, import_runtime
from gansynth_instrument.notes.disk_store import DEFAULT_CACHE_DIR

logger = logging.getLogger(__name__)

KNOB_COUNT = 8
DEFAULT_SAMPLES = 4096  # random latents
DEFAULT_KNOBS_DIR = DEFAULT_CACHE_DIR / "knobs"  # beside the notes (the note store skips folders)
REFERENCE_PITCH = 60  # latents are drawn at the model's pitch nearest middle C
# The weight whose conv reads the tensor the components are taken over (export/graph.py names it
# this way in every model it writes).
LAYER_WEIGHT = "block_2/conv1/kernel"
_BATCH = 256
# Subspace iterations before the final pass, and extra vectors carried along: enough for the
# K-dimensional subspace found to hold ≥ 99 % of the variance the exact top K components hold,
# on a model whose spectrum is flat past its second component (tests/presets/test_ganspace.py).
_POWER_PASSES = 8
_OVERSAMPLE = 16
_KEEP_BYTES = 256 * 1024**2  # activations up to this size are kept between passes, not redrawn
# The last pass also draws this many times the latents, fresh ones past the first ``samples``,
# for the regression back to z: with ``samples`` alone its estimate is the noisier part (two
# seeds gave knob 3 directions 46° apart), and one more pass is cheap beside the power passes.
REGRESSION_FACTOR = 4
_FORMAT = 3  # of the cached file; another number is computed again (2: no qualities)


@dataclass(frozen=True, eq=False)
class KnobDirections:
    """A model's K knob directions in latent space, leading component first.

    ``directions`` float32 [K, latent] unit rows; ``variance`` the activation variance along each
    component, ``variance_ratio`` its share of the layer's total variance (what the knob is
    worth); ``pitch`` the reference pitch and ``samples`` the latents they were found with.
    ``qualities``: per knob, the audible quality its + side raises (``knob_qualities.WORDS``;
    "" for a knob that moves no single one), measured by ``oriented``; empty for directions
    not measured.
    """

    digest: str
    directions: np.ndarray
    variance: np.ndarray
    variance_ratio: np.ndarray
    pitch: int
    samples: int
    qualities: tuple[str, ...] = ()

    def label(self, knob: int) -> str:
        """What knob ``knob`` (0-based) does, for a banner or a page: "brighter (+)"; "" when
        not measured."""
        return plus_label(self.qualities[knob]) if knob < len(self.qualities) else ""

    @property
    def count(self) -> int:
        return len(self.directions)

    def move(self, z: np.ndarray, offsets: Sequence[float] | np.ndarray) -> np.ndarray:
        """``z`` moved by ``offsets[i]`` standard deviations along knob i (fewer offsets than
        knobs leave the rest at 0); float32, computed in float64 so the same offsets always give
        the same latent, bit for bit. All offsets 0 return ``z`` itself, unchanged."""
        values = np.asarray(offsets, dtype=np.float64).reshape(-1)
        if len(values) > self.count:
            raise PresetError(f"{len(values)} knob offsets, but this model has {self.count} knobs")
        bad = [f"{float(v)!r}" for v in values if not math.isfinite(v)]
        if bad:
            raise PresetError(f"knob offset {bad[0]} is not a finite number")
        z32 = np.asarray(z, dtype=np.float32)
        if not values.any():
            return z32
        shift = values @ self.directions[: len(values)].astype(np.float64)
        return (z32.astype(np.float64) + shift).astype(np.float32)


def knob_directions(
    model: Model,
    *,
    count: int = KNOB_COUNT,
    samples: int = DEFAULT_SAMPLES,
    cache_dir: Path | None = DEFAULT_KNOBS_DIR,
    progress: bool = True,
) -> KnobDirections:
    """The model's knob directions: from ``cache_dir`` when found there for its digest, else
    computed (with a progress bar) and saved there atomically. A cache that cannot be written
    costs one warning and the directions are computed again next time; a damaged file is
    computed again and replaced. ``cache_dir=None`` computes without the disk."""
    if not 1 <= count <= model.latent_size:
        raise ModelError(f"knob count must be 1..{model.latent_size}, got {count}")
    path = None
    if cache_dir is not None:
        path = _cache_path(Path(cache_dir), model.digest, count, samples)
        found = _load(path, model.digest, count, model.latent_size)
        if found is not None:
            return found
    knobs = compute_directions(model, count=count, samples=samples, progress=progress)
    knobs = oriented(model, knobs, progress=progress)
    if path is not None:
        _save(path, knobs)
    return knobs


def cached_knobs(
    digest: str, latent_size: int, cache_dir: Path = DEFAULT_KNOBS_DIR
) -> KnobDirections | None:
    """The default knobs of the model with ``digest`` when they are on disk (found by a play or
    ``presets new --knob``), else None; nothing is computed (``info`` shows what they do)."""
    path = _cache_path(cache_dir, digest, KNOB_COUNT, DEFAULT_SAMPLES)
    return _load(path, digest, KNOB_COUNT, latent_size)


def _cache_path(cache_dir: Path, digest: str, count: int, samples: int) -> Path:
    return cache_dir / f"{digest}-k{count}-n{samples}.npz"


def compute_directions(
    model: Model, *, count: int = KNOB_COUNT, samples: int = DEFAULT_SAMPLES, progress: bool = True
) -> KnobDirections:
    """PCA over the early activations of ``samples`` seeded random latents at the reference
    pitch, carried back to z by regression (see the module docstring). Deterministic."""
    pitch = min(model.pitches, key=lambda p: (abs(p - REFERENCE_PITCH), p))
    layer = early_layer(model.path)
    variance, ratio, directions = principal_directions(
        layer,
        model.latent_size,
        count=count,
        samples=samples,
        pitch=pitch,
        progress=progress,
    )
    return KnobDirections(model.digest, directions, variance, ratio, pitch, samples)


def oriented(model: Model, knobs: KnobDirections, *, progress: bool = True) -> KnobDirections:
    """``knobs`` with each direction's sign chosen so that + raises the audible quality it
    moves most consistently, and that quality kept (``knob_qualities.orient``): the PCA's signs
    are arbitrary, so "brighter" must come from a measurement."""
    found = orient(model, knobs.directions, progress=progress)
    signs = np.asarray(found.signs, dtype=np.float32)[:, None]
    return dataclasses.replace(
        knobs, directions=knobs.directions * signs, qualities=found.qualities
    )


Activations = Callable[[np.ndarray, np.ndarray], np.ndarray]


def early_layer(model_path: Path) -> Activations:
    """A function (z [B, latent], pitch [B]) → activations [B, dims] of the knobs' layer, run by
    onnxruntime on the sub-graph of the exported model that computes it."""
    ort = import_runtime("onnxruntime")

    try:
        proto = onnx.load(str(model_path))
    except Exception as err:  # protobuf raises DecodeError, OSError...
        raise ModelError(f"{model_path}: cannot read it for the timbre knobs ({err})") from None
    readers = [n for n in proto.graph.node if LAYER_WEIGHT in n.input]
    if not readers:
        raise ModelError(
            f"{model_path}: no '{LAYER_WEIGHT}' in the graph, so no layer for the timbre knobs "
            "(export the model again with this version)"
        )
    layer = readers[0].input[0]
    sub = _cut(proto, layer)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        sub.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    inputs = {i.name for i in session.get_inputs()}

    def run(z: np.ndarray, pitch: np.ndarray) -> np.ndarray:
        feed = {INPUT_LATENT: z.astype(np.float32), INPUT_PITCH: pitch.astype(np.int64)}
        out = session.run([layer], {k: v for k, v in feed.items() if k in inputs})[0]
        return out.reshape(len(z), -1)

    return run


def _cut(proto: onnx.ModelProto, output: str) -> onnx.ModelProto:
    """The graph pared down to the nodes ``output`` depends on, with ``output`` as its output."""
    producer = {out: node for node in proto.graph.node for out in node.output}
    needed: list[onnx.NodeProto] = []
    seen: set[str] = set()
    pending = [output]
    while pending:
        name = pending.pop()
        node = producer.get(name)
        if name in seen or node is None:
            continue
        seen.add(name)
        needed.append(node)
        pending.extend(node.input)
    names = {n for node in needed for n in node.input}
    graph = onnx.helper.make_graph(
        [node for node in proto.graph.node if node in needed],
        "knob_layer",
        [i for i in proto.graph.input if i.name in names],
        [onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None)],
        [t for t in proto.graph.initializer if t.name in names],
    )
    return onnx.helper.make_model(
        graph, opset_imports=proto.opset_import, ir_version=proto.ir_version
    )


def principal_directions(
    activations: Activations,
    latent_size: int,
    *,
    count: int,
    samples: int,
    pitch: int,
    seed: int = 0,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(variance [count], variance ratio [count], unit latent directions [count, latent]).

    Latents are N(0, I) batches drawn from ``(seed, batch index)``, so every pass sees the same
    ones without keeping them. The first pass also sums the activations for their mean; after
    the power passes, one more pass gives the projected covariance (for the components) and,
    over ``REGRESSION_FACTOR`` times the latents, the latent-coordinate cross products (for the
    regression) together.
    """
    batches = math.ceil(samples / _BATCH)
    sizes = [min(_BATCH, samples - b * _BATCH) for b in range(batches)]
    sizes += [_BATCH] * math.ceil((REGRESSION_FACTOR - 1) * samples / _BATCH)

    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def draw(b: int) -> tuple[np.ndarray, np.ndarray]:
        if b in kept:
            return kept[b]
        z = np.random.default_rng([seed, 0, b]).standard_normal((sizes[b], latent_size))
        z32 = z.astype(np.float32)
        a = activations(z32, np.full(sizes[b], pitch, np.int64)).astype(np.float32)
        if keep:
            kept[b] = z32, a
        return z32, a

    keep = True
    _, a0 = draw(0)
    dims = a0.shape[1]
    keep = samples * dims * a0.itemsize <= _KEEP_BYTES  # else each pass draws them again
    width = min(count + _OVERSAMPLE, dims, samples)
    if count > width:
        raise ModelError(
            f"{count} knobs need {count} components, but the layer has {dims} values "
            f"and there are {samples} latents"
        )
    start = np.random.default_rng([seed, 1]).standard_normal((dims, width))
    basis = np.linalg.qr(start)[0].astype(np.float32)
    mean: np.ndarray | None = None
    bar = tqdm(
        total=_POWER_PASSES * batches + len(sizes),
        desc="timbre knobs (PCA)",
        unit="batch",
        disable=not progress,
        leave=False,
    )
    with bar:
        for _ in range(_POWER_PASSES):
            product = np.zeros((dims, width))
            total = np.zeros(dims)
            for b in range(batches):
                _, a = draw(b)
                if mean is None:
                    total += a.sum(axis=0, dtype=np.float64)
                else:
                    a = a - mean
                product += a.T @ (a @ basis)  # float32 products, float64 sums
                bar.update()
            if mean is None:  # E[aaᵀ]Q − μμᵀQ: the covariance times the basis, exactly
                mean64 = total / samples
                product = product / samples - np.outer(mean64, mean64 @ basis)
                mean = mean64.astype(np.float32)
            else:
                product /= samples
            basis = np.linalg.qr(product)[0].astype(np.float32)
        assert mean is not None
        gram = np.zeros((width, width))  # over the PCA's latents, then over all
        cross = np.zeros((latent_size, width))
        spread = 0.0
        keep = False  # the fresh latents are used once
        for b in range(len(sizes)):
            z, a = draw(b)
            centred = a - mean
            coords = (centred @ basis).astype(np.float64)
            if b == batches:
                pca_gram = gram.copy()
            gram += coords.T @ coords
            cross += z.T.astype(np.float64) @ coords
            if b < batches:
                spread += float(np.sum(np.square(centred, dtype=np.float64)))
            bar.update()
    if len(sizes) == batches:
        pca_gram = gram
    values, vectors = np.linalg.eigh(pca_gram / samples)
    order = np.argsort(values)[::-1][:count]
    variance, rotation = values[order], vectors[:, order]
    components = basis.astype(np.float64) @ rotation  # [dims, count]
    # Each component's sign: its largest value positive, so the knobs do not flip between runs.
    flips = np.sign(components[np.abs(components).argmax(axis=0), np.arange(count)])
    rotation = rotation * flips
    # Regression of z on each coordinate x = wᵀ(Qᵀ(a − μ)) over all the latents: Σ z x / Σ x².
    squares = np.einsum("ik,ij,jk->k", rotation, gram, rotation)
    regression = (cross @ rotation) / squares  # [latent, count]
    directions = (regression / np.linalg.norm(regression, axis=0)).T.astype(np.float32)
    return variance, variance / (spread / samples), directions


def _load(path: Path, digest: str, count: int, latent_size: int) -> KnobDirections | None:
    """The cached directions, or None when absent; a damaged file is warned about and ignored."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files}
        if int(fields["format"]) != _FORMAT:
            logger.info("timbre knobs: %s is of an older format; computing them again", path)
            return None
        directions = fields["directions"].astype(np.float32)
        knobs = KnobDirections(
            str(fields["digest"]),
            directions,
            fields["variance"].astype(np.float64),
            fields["variance_ratio"].astype(np.float64),
            int(fields["pitch"]),
            int(fields["samples"]),
            tuple(str(q) for q in fields["qualities"]),
        )
        ok = (
            knobs.digest == digest
            and directions.shape == (count, latent_size)
            and knobs.variance.shape == knobs.variance_ratio.shape == (count,)
            and np.isfinite(directions).all()
            and len(knobs.qualities) == count
            and all(q in WORDS or q == "" for q in knobs.qualities)
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
        logger.warning("timbre knobs: %s is unreadable (%s); computing them again", path, err)
        return None
    if not ok:
        logger.warning("timbre knobs: %s does not fit this model; computing them again", path)
        return None
    return knobs


def _save(path: Path, knobs: KnobDirections) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(
                f,
                format=_FORMAT,
                digest=knobs.digest,
                directions=knobs.directions,
                variance=knobs.variance,
                variance_ratio=knobs.variance_ratio,
                pitch=knobs.pitch,
                samples=knobs.samples,
                qualities=np.array(knobs.qualities, dtype=str),
            )
    except (OSError, OutputError) as err:
        logger.warning(
            "timbre knobs: cannot keep them in %s (%s); computed again next time", path, err
        )
