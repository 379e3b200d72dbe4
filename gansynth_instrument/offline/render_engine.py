"""The engine render: a MIDI file through the instrument (``instrument.assemble``), exact notes
at exact frames, in stereo, streamed to the file as it renders (``audio_files.py``), with the
settings of a ``RenderConfig``. Magenta's own MIDI mode is ``magenta.render_magenta``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gansynth_instrument.errors import GansynthError, OutputError
from gansynth_instrument.live.compiled_mixer import CompiledMixer, make_mixer
from gansynth_instrument.live.config import (
    CacheConfig,
    EngineConfig,
    Sounds,
    check_master_gain,
    check_sample_rate,
)
from gansynth_instrument.live.engine import ChannelReport, Engine
from gansynth_instrument.live.instrument import assemble
from gansynth_instrument.live.mixer import Mixer
from gansynth_instrument.live.mpe_input import MpeInput
from gansynth_instrument.model.runtime import Model
from gansynth_instrument.notes.levels import LIMIT, MasterBus
from gansynth_instrument.offline.audio_files import (
    BlockWriter,
    output_format,
    stream_to_file,
)
from gansynth_instrument.offline.loudness import (
    Loudness,
    LoudnessMeter,
    Normalisation,
    check_target,
    write_normalised,
)
from gansynth_instrument.offline.midi_file import MidiEvent, read_midi
from gansynth_instrument.offline.render import check_output_file
from gansynth_instrument.presets.ganspace import KnobDirections

ENGINE_BLOCK_FRAMES = 1024
ENGINE_POLYPHONY = 64  # offline can afford more voices than live play
ENGINE_WAIT_S = 600.0  # per note; only bounds a hang (a full-size model on a slow CPU)


@dataclass(frozen=True)
class EngineRender:
    """What ``render_midi_engine`` wrote."""

    path: Path
    notes: int
    duration_s: float
    peak: float  # largest |sample|; above 1.0 a float WAV holds it, other formats clip
    clipped: int  # samples clipped to ±1 (formats that cannot hold more)
    channels: list[ChannelReport]  # per MIDI channel: presets played, notes skipped
    drums: str  # what channel 10 played (``Engine.drums_summary``)
    limited_frames: int  # frames the master limiter turned down
    loudness: Loudness  # of the mix as the instrument made it (live play's level)
    normalisation: Normalisation | None  # the gain applied for the loudness target; None: off


@dataclass(frozen=True)
class RenderConfig:
    """The engine render's settings, each checked once when made (``config.py``): the engine's
    (its ``wait_s`` set: a render waits for every exact note) and the note cache's, the output
    rate and ``subtype`` (the file's sample format; None: its extension's default), the block
    size, master gain, forced MPE zones (``mpe``), and ``loudness``: the integrated loudness
    (LUFS) the file is brought to, true peak at most ``loudness.TRUE_PEAK_CEILING_DBTP``
    (``loudness.write_normalised``); None writes the mix at the level live play has."""

    engine: EngineConfig = field(default_factory=lambda: EngineConfig(wait_s=ENGINE_WAIT_S))
    cache: CacheConfig = field(default_factory=CacheConfig)
    sample_rate: int = 48000
    subtype: str | None = None
    block_frames: int = ENGINE_BLOCK_FRAMES
    gain_db: float = 0.0
    mpe: str | None = None
    loudness: float | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.engine.wait_s is None:
            raise GansynthError("a render waits for every exact note: give EngineConfig a wait_s")
        check_sample_rate(self.sample_rate)
        if self.block_frames < 1:
            raise GansynthError(f"block size must be at least 1 frame, got {self.block_frames}")
        check_master_gain(self.gain_db)
        if self.loudness is not None:
            check_target(self.loudness)


def render_blocks(
    engine: Engine | MpeInput,
    mixer: Mixer | CompiledMixer,
    events: Sequence[MidiEvent],
    *,
    block_frames: int = ENGINE_BLOCK_FRAMES,
    progress: bool = False,
) -> Iterator[np.ndarray]:
    """Feed timed MIDI to ``engine`` (or an ``MpeInput`` in front of it) and yield ``mixer``'s
    audio ([frames, channels] float32) block by block until it falls silent, as long as the last
    event or the last sound.

    Each event's commands carry its exact frame, so the audio does not depend on
    ``block_frames``. Trailing silence is held back as a count, not as audio, and given out
    only as far as a later sound or the last event needs it: memory stays one block. A mixer
    with a master bus is run on by the limiter's delay, which is cut from the start.
    """
    rate = mixer.sample_rate
    stamped = [(round(e.time_s * rate), e.data) for e in events]
    last_event = stamped[-1][0] if stamped else 0
    given = 0
    silent = 0  # frames mixed after the last sound and not given out yet
    zeros = np.zeros((block_frames, mixer.channels), dtype=np.float32)
    skip = mixer.master.delay_frames if mixer.master is not None else 0
    for block in _mixed(engine, mixer, stamped, block_frames, progress):
        if skip:
            cut = min(skip, len(block))
            block, skip = block[cut:], skip - cut
        sounding = np.flatnonzero(block.any(axis=1))
        if len(sounding):
            yield from _zeros(zeros, silent)
            last = int(sounding[-1]) + 1
            yield block[:last]
            given += silent + last
            silent = len(block) - last
        else:
            silent += len(block)
    yield from _zeros(zeros, min(silent, max(0, last_event - given)))


def _mixed(
    engine: Engine | MpeInput,
    mixer: Mixer | CompiledMixer,
    stamped: Sequence[tuple[int, Sequence[int]]],
    block_frames: int,
    progress: bool,
) -> Iterator[np.ndarray]:
    """The mixer's blocks while events, voices or commands remain, then as many as the master
    bus's delay needs to play out."""
    rate = mixer.sample_rate
    last_event = stamped[-1][0] if stamped else 0
    i = frame = 0
    with tqdm(
        total=round(last_event / rate, 1), unit="s", disable=not progress, leave=False
    ) as bar:
        while i < len(stamped) or mixer.voices_active or mixer.pending():
            end = frame + block_frames
            while i < len(stamped) and stamped[i][0] < end:
                engine.handle(stamped[i][1], stamped[i][0])
                i += 1
            block = np.empty((block_frames, mixer.channels), dtype=np.float32)
            mixer.mix(block, block_frames)
            yield block
            frame = end
            bar.update(round(min(frame, last_event) / rate, 1) - bar.n)
    delay = mixer.master.delay_frames if mixer.master is not None else 0
    for _ in range(-(-delay // block_frames)):
        block = np.empty((block_frames, mixer.channels), dtype=np.float32)
        mixer.mix(block, block_frames)
        yield block


def _zeros(zeros: np.ndarray, frames: int) -> Iterator[np.ndarray]:
    for start in range(0, frames, len(zeros)):
        yield zeros[: min(len(zeros), frames - start)]


def render_events(
    engine: Engine,
    mixer: Mixer | CompiledMixer,
    events: Sequence[MidiEvent],
    *,
    block_frames: int = ENGINE_BLOCK_FRAMES,
) -> np.ndarray:
    """``render_blocks`` gathered into one array ([frames, channels]): for short songs."""
    blocks = list(render_blocks(engine, mixer, events, block_frames=block_frames))
    if not blocks:
        return np.zeros((0, mixer.channels), dtype=np.float32)
    return np.concatenate(blocks)


def render_midi_engine(
    model: Model,
    midi_path: Path,
    out_path: Path,
    sounds: Sounds,
    config: RenderConfig | None = None,
    *,
    knobs: KnobDirections | None = None,
) -> EngineRender:
    """A MIDI file → stereo audio file through the live engine playing ``sounds``: same channels,
    voices, envelopes, pedal, bend, morph, timbre knobs (given ``knobs``,
    ``ganspace.knob_directions``) and XY pad (a bank's corners), and the same gain staging
    (levelled timbres, velocity curve, preset and master gain, the master-bus limiter;
    ``levels.py``). ``config``: the settings (``RenderConfig``).

    With ``config.loudness`` the mix is measured as it renders, unlimited, to a float WAV beside
    the output, then copied to the output at the chosen gain, through the true-peak limiter where
    that gain would pass the ceiling (``loudness.write_normalised``): one limiter, at the file's
    level, rather than live play's at -1 dBFS and then a gain that turns the flattened peaks
    down. Streaming passes, memory a few blocks.

    Unlike live play it waits for each exact note before its note-on instead of playing a
    nearest-pitch stand-in, so the result is deterministic. Notes come from (and go to) the note
    cache. MPE zones follow the file's MPE Configuration Messages, or ``config.mpe`` forces them
    (``mpe_input.py``). The file is written as it renders (``audio_files.py``), in the format its
    extension names.
    """
    config = config or RenderConfig()
    sample_rate, subtype, loudness = config.sample_rate, config.subtype, config.loudness
    block_frames, bank = config.block_frames, sounds.bank
    check_output_file(out_path)
    output_format(out_path, subtype)
    events = read_midi(midi_path)
    # Bound for a loudness target, the mix is not limited here: the target's own stage limits
    # it once, at the level the file gets (``write_normalised``).
    limit = LIMIT if loudness is None else math.inf
    master = MasterBus(
        sample_rate, gain_db=config.gain_db, max_block_frames=block_frames, limit=limit
    )
    mixer = make_mixer(
        sample_rate,
        polyphony=ENGINE_POLYPHONY,
        channels=2,
        max_block_frames=block_frames,
        master=master,
    )
    instrument = assemble(
        model, mixer, sounds, cache=config.cache, engine=config.engine, knobs=knobs
    )
    engine = instrument.engine
    meter = LoudnessMeter(sample_rate, mixer.channels)

    def mix_to(writer: BlockWriter) -> None:
        with instrument.cache as cache:
            # Ask for every note the song's programs will play up front, so the cache batches.
            for timbre, pitches in engine.planned_notes(e.data for e in events).values():
                cache.request(timbre.latent, sorted(pitches))
            midi_in = MpeInput(engine, bank.mpe if bank is not None else None, forced=config.mpe)
            for block in render_blocks(
                midi_in, mixer, events, block_frames=block_frames, progress=config.progress
            ):
                writer.write(block)
                meter.add(block)

    normalisation = None
    if loudness is None:
        with stream_to_file(out_path, sample_rate, mixer.channels, subtype) as writer:
            mix_to(writer)
        measured = meter.result()
    else:
        out_dir = Path(out_path).parent
        with tempfile.TemporaryDirectory(prefix=".render-", dir=out_dir) as scratch:
            mix = Path(scratch) / "mix.wav"
            try:
                with stream_to_file(mix, sample_rate, mixer.channels, "FLOAT") as first:
                    mix_to(first)
            except OutputError as err:  # the first pass is the output's: name the output
                raise OutputError(str(err).replace(str(mix), str(out_path), 1)) from None
            measured = meter.result()
            with stream_to_file(out_path, sample_rate, mixer.channels, subtype) as writer:
                normalisation = write_normalised(mix, writer, measured, loudness)
    report = engine.report()
    return EngineRender(
        Path(out_path),
        sum(sum(r.played.values()) for r in report),
        writer.frames / sample_rate,
        writer.peak,
        writer.clipped,
        report,
        engine.drums_summary(),
        master.limiter.limited_frames,
        measured,
        normalisation,
    )


def channel_lines(reports: Sequence[ChannelReport]) -> list[str]:
    """One line per MIDI channel (counted 1-16): the presets it played and what it skipped."""
    lines = []
    for r in reports:
        played = ", ".join(f"{name} ({count} notes)" for name, count in r.played.items())
        skipped = ", ".join(f"{count} {why}" for why, count in r.skipped.items())
        text = played or "nothing played"
        if skipped:
            text += f"; skipped {skipped}"
        text += "".join(f"; {remark}" for remark in r.remarks)
        lines.append(f"  channel {r.channel + 1:>2}: {text}")
    return lines
