"""A baked instrument as each sampler reads it: SFZ text, a DecentSampler preset, and a
Bitwig/PreSonus ``.multisample`` (a ZIP holding ``multisample.xml`` and its samples, stored
uncompressed, as Bitwig Studio and Studio One read it).

- velocity → amplitude is the instrument's curve: SFZ ``amp_velcurve_N`` for every velocity;
  DecentSampler tracks velocity only linearly, so velocity layers add the rest (within
  ``DS_VELOCITY_TOLERANCE_DB``);
- a looping sample loops while the key is held (SFZ ``loop_sustain``);
- a morph's steps crossfade by its controller: SFZ ``xfin_locc`` / ``xfout_locc``, DecentSampler
  group-volume bindings, ``.multisample`` select ranges with fades (the sampler's Select
  dimension, which the user maps to the controller);
- ``.multisample`` maps keys and velocities only: the envelope and the velocity curve are the
  sampler's own settings.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from pathlib import Path

from gansynth_instrument.offline.bake_plan import Instrument, Sample, Step

DS_VELOCITY_TOLERANCE_DB = 0.5  # DecentSampler's velocity layers stay this close to the curve


def _number(value: float) -> str:
    return f"{value:.6g}"


def sfz_text(
    instrument: Instrument, steps: Sequence[Sequence[Sample]], curve: Sequence[float]
) -> str:
    """The instrument as SFZ: the velocity curve in ``<global>``, a ``<group>`` per step
    (envelope, crossfade), a ``<region>`` per sample."""
    lines = [
        f"// {instrument.name}: baked by gansynth-instrument",
        "<global>",
        "amp_veltrack=100",
    ]
    points = [f"amp_velcurve_{v}={_number(curve[v])}" for v in range(1, 128)]
    lines += [" ".join(points[i : i + 8]) for i in range(0, len(points), 8)]
    if instrument.cc is not None:
        lines.append("xf_cccurve=gain")
    for step, samples in zip(instrument.steps, steps, strict=True):
        group = [
            "<group>",
            f"ampeg_attack={_number(step.timbre.attack_s)}",
            f"ampeg_release={_number(step.timbre.release_s)}",
        ]
        cc = instrument.cc
        if step.fade_in is not None:
            group.append(f"xfin_locc{cc}={step.fade_in[0]} xfin_hicc{cc}={step.fade_in[1]}")
        if step.fade_out is not None:
            group.append(f"xfout_locc{cc}={step.fade_out[0]} xfout_hicc{cc}={step.fade_out[1]}")
        lines.append(" ".join(group))
        for sample in samples:
            region = [
                f"<region> sample={sample.path}",
                f"pitch_keycenter={sample.pitch} lokey={sample.keys[0]} hikey={sample.keys[1]}",
                f"volume={sample.volume_db:.4f}",
            ]
            if sample.loop is not None:
                region.append(
                    f"loop_mode=loop_sustain loop_start={sample.loop[0]} loop_end={sample.loop[1]}"
                )
            lines.append(" ".join(region))
    return "\n".join(lines) + "\n"


def ds_velocity_layers(
    curve: Sequence[float], tolerance_db: float = DS_VELOCITY_TOLERANCE_DB
) -> list[tuple[int, int, float]]:
    """(lowest, highest velocity, gain) layers: DecentSampler's linear velocity tracking (gain
    v/127) times the layer's gain stays within ``tolerance_db`` of ``curve`` at every velocity."""
    extra = [curve[v] * 127 / v for v in range(1, 128)]  # what linear tracking leaves out
    layers = []
    lo = 1
    while lo <= 127:
        hi = lo
        while hi < 127:
            span = extra[lo - 1 : hi + 1]
            if 20 * math.log10(max(span) / min(span)) > 2 * tolerance_db:
                break
            hi += 1
        span = extra[lo - 1 : hi]
        layers.append((lo, hi, math.sqrt(max(span) * min(span))))
        lo = hi + 1
    return layers


def _fade_gain(step: Step, value: int) -> float:
    """The linear crossfade gain of a step at a controller value (SFZ's ``xf_cccurve=gain``)."""
    gain = 1.0
    if step.fade_in is not None:
        lo, hi = step.fade_in
        gain *= min(1.0, max(0.0, (value - lo) / (hi - lo)))
    if step.fade_out is not None:
        lo, hi = step.fade_out
        gain *= min(1.0, max(0.0, (hi - value) / (hi - lo)))
    return gain


def dspreset_text(
    instrument: Instrument, steps: Sequence[Sequence[Sample]], curve: Sequence[float]
) -> str:
    """The instrument as a DecentSampler preset: a ``<group>`` per step with linear envelope
    curves (as the engine's), velocity layers per sample, and for a morph a CC binding per group
    that sets its volume to the crossfade gain."""
    root = ET.Element("DecentSampler", minVersion="1.0.0")
    groups = ET.SubElement(
        root, "groups", attackCurve="0", releaseCurve="0", decay="0", sustain="1"
    )
    layers = ds_velocity_layers(curve)
    for step, samples in zip(instrument.steps, steps, strict=True):
        group = ET.SubElement(
            groups,
            "group",
            attack=_number(step.timbre.attack_s),
            release=_number(step.timbre.release_s),
            ampVelTrack="1",
            volume=_number(_fade_gain(step, 0)),
        )
        for sample in samples:
            for lo, hi, gain in layers:
                attrs = {
                    "path": sample.path,
                    "rootNote": str(sample.pitch),
                    "loNote": str(sample.keys[0]),
                    "hiNote": str(sample.keys[1]),
                    "loVel": str(lo),
                    "hiVel": str(hi),
                    "volume": f"{sample.volume_db + 20 * math.log10(gain):.4f}dB",
                }
                if sample.loop is not None:
                    attrs |= {
                        "loopStart": str(sample.loop[0]),
                        "loopEnd": str(sample.loop[1]),
                        "loopEnabled": "true",
                    }
                ET.SubElement(group, "sample", attrs)
    if instrument.cc is not None:
        cc = ET.SubElement(ET.SubElement(root, "midi"), "cc", number=str(instrument.cc))
        for position, step in enumerate(instrument.steps):
            corners = {0, 127} | {v for fade in (step.fade_in, step.fade_out) if fade for v in fade}
            table = ";".join(f"{v},{_number(_fade_gain(step, v))}" for v in sorted(corners))
            ET.SubElement(
                cc,
                "binding",
                type="amp",
                level="group",
                position=str(position),
                parameter="AMP_VOLUME",
                translation="table",
                translationTable=table,
            )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def multisample_xml(instrument: Instrument, steps: Sequence[Sequence[Sample]]) -> str:
    """The instrument as ``multisample.xml``: a group per step, a ``<sample>`` per WAV with its
    keys, every velocity, and for a morph the step's crossfade as its select range."""
    root = ET.Element("multisample", name=instrument.name)
    ET.SubElement(root, "generator").text = "gansynth-instrument"
    ET.SubElement(root, "category").text = ""
    ET.SubElement(root, "creator").text = ""
    ET.SubElement(root, "description").text = instrument.steps[0].timbre.name
    for step in instrument.steps:
        ET.SubElement(root, "group", name=step.timbre.name)
    for index, (step, samples) in enumerate(zip(instrument.steps, steps, strict=True)):
        fade_in = step.fade_in or (0, 0)  # CC values: silent → full; then full → silent
        fade_out = step.fade_out or (127, 127)
        select = {
            "low": fade_in[0],
            "high": fade_out[1],
            "low-fade": fade_in[1] - fade_in[0],
            "high-fade": fade_out[1] - fade_out[0],
        }
        for sample in samples:
            element = ET.SubElement(
                root, "sample", file=sample.path, gain=f"{sample.volume_db:.4f}", group=str(index)
            )
            ET.SubElement(
                element,
                "key",
                root=str(sample.pitch),
                track="1",
                low=str(sample.keys[0]),
                high=str(sample.keys[1]),
            )
            ET.SubElement(element, "velocity", low="1", high="127")
            ET.SubElement(element, "select", {k: str(v) for k, v in select.items()})
            if sample.loop is not None:  # stop: the frame after the last one played
                start, last = sample.loop
                ET.SubElement(element, "loop", mode="loop", start=str(start), stop=str(last + 1))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_multisample(
    path: Path, instrument: Instrument, steps: Sequence[Sequence[Sample]]
) -> None:
    """``path`` (in the staging folder, beside the WAVs) as a ``.multisample``: the XML and every
    sample it names, stored uncompressed so a sampler can stream them from the file."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as pack:
        pack.writestr("multisample.xml", multisample_xml(instrument, steps))
        for sample in (s for samples in steps for s in samples):
            pack.write(path.parent / sample.path, sample.path)
