"""The compiled mixer core against the NumPy ``Mixer`` (the reference): random command streams
give the same samples; the record layout is the one ``protocol.py`` declares; malformed records
in the ring are dropped and counted; without the core, ``make_mixer`` falls back to NumPy with
one notice."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.live.compiled_mixer import (
    CHOICE_ENV,
    MIXER_ENV,
    CompiledMixer,
    make_mixer,
    mixer_in_use,
)
from gansynth_instrument.live.mixer import (
    ALL_CHANNELS,
    CMD_BEND,
    CMD_FADE,
    CMD_GAIN,
    CMD_MORPH,
    CMD_NOTE_ON,
    CMD_RELEASE,
    CMD_SILENCE,
    IMMEDIATE,
    Mixer,
)
from gansynth_instrument.live.protocol import (
    OP_LOAD,
    RECORD,
    STATUS_ENDED,
    STATUS_LIMITED,
    STATUS_PEAK,
    STATUS_VOICES,
    WRITE,
    Ring,
    to_record,
)
from gansynth_instrument.notes.levels import MasterBus
from gansynth_instrument.notes.note import LoopedNote, Note

RATE = 48000
TOLERANCE = 1e-6  # of full scale
try:
    from gansynth_instrument.live import _mixcore
except ImportError:  # not built here; CI requires it (test_ci_runs_the_compiled_mixer)
    _mixcore = None
needs_core = pytest.mark.skipif(_mixcore is None, reason="the compiled mixer core is not built")


def make_notes() -> list[Note | LoopedNote]:
    """Noise notes at two sample rates, two of them loud (they drive the limiter), and looped
    ones (a loop within the note)."""
    rng = np.random.default_rng(7)
    notes: list[Note | LoopedNote] = []
    for i, (rate, frames) in enumerate([(16000, 3000), (16000, 5000), (48000, 7000), (24000, 900)]):
        pcm = (rng.standard_normal(frames) * 9000).clip(-32767, 32767).astype(np.int16)
        notes.append(Note(pcm, (3.0 if i < 2 else 0.5) / 32768, 60, rate, 0.0))
    for rate, frames in ((16000, 600), (48000, 1500)):  # short: streams reach their loops
        pcm = (rng.standard_normal(frames) * 9000).clip(-32767, 32767).astype(np.int16)
        notes.append(LoopedNote(pcm, 1.0 / 32768, 60, rate, frames // 4, 3 * frames // 4))
    return notes


NOTES = make_notes()
SLOTS = 6  # voice_slots(polyphony=4)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple], list[int], int, bool]:
    """A command stream (frame stamps IMMEDIATE or ahead, in any order), block sizes, the output
    channels and whether a master bus (gain, limiter) follows the mix."""
    serials = [0] * SLOTS
    looped = [False] * SLOTS
    commands: list[tuple] = []
    frame = 0
    for _ in range(draw(st.integers(1, 40))):
        frame += draw(st.integers(0, 3000))
        stamp = IMMEDIATE if draw(st.integers(0, 3)) == 0 else frame
        slot = draw(st.integers(0, SLOTS - 1))
        op = draw(st.sampled_from(range(7)))
        ratio = draw(st.floats(0.5, 2.0))
        weight = draw(st.floats(0.0, 1.0))
        channel = draw(st.integers(0, 2))
        if op == CMD_NOTE_ON:
            loop = draw(st.booleans())
            pool = NOTES[4:] if loop else NOTES[:4]  # a voice's notes loop, or none does
            a = draw(st.sampled_from(pool))
            b = draw(st.sampled_from([None, *pool]))
            serials[slot] += 1
            looped[slot] = loop
            amp = draw(st.floats(0.1, 1.0))
            attack, release = draw(st.integers(1, 2000)), draw(st.integers(1, 9000))
            note_on = (stamp, op, slot, serials[slot], a, ratio, b, 1.2, weight, amp, attack)
            commands.append((*note_on, release, channel))
        elif op == CMD_MORPH:
            pool = NOTES[4:] if looped[slot] else NOTES[:4]
            a, b = draw(st.sampled_from(pool)), draw(st.sampled_from([None, *pool]))
            commands.append((stamp, op, slot, serials[slot], a, ratio, b, 0.8, weight))
        elif op == CMD_RELEASE:
            commands.append((stamp, op, slot, serials[slot]))
        elif op == CMD_FADE:
            commands.append((stamp, op, slot, serials[slot], draw(st.integers(1, 500))))
        elif op == CMD_BEND:
            commands.append((stamp, op, channel, ratio))
        elif op == CMD_GAIN:
            left, right = draw(st.sampled_from([(1.0, 1.0), (0.5, 0.5)])), draw(st.floats(0, 2))
            commands.append((stamp, op, channel, left[0], right))
        else:
            commands.append((stamp, op, draw(st.sampled_from([ALL_CHANNELS, channel]))))
    blocks = draw(st.lists(st.integers(1, 1024), min_size=1, max_size=30))
    return commands, blocks, draw(st.sampled_from([1, 2])), draw(st.booleans())


def run(mixer: Mixer | CompiledMixer, commands: list[tuple], blocks: list[int]) -> np.ndarray:
    for cmd in commands:
        assert mixer.send(cmd)
    out = []
    for frames in blocks:
        block = np.full((frames, mixer.channels), np.nan, dtype=np.float32)
        mixer.mix(block, frames)
        out.append(block)
    return np.concatenate(out)


def pair(channels: int, master: bool) -> tuple[Mixer, CompiledMixer]:
    def bus() -> MasterBus | None:
        return MasterBus(RATE, gain_db=6.0, max_block_frames=1024) if master else None

    options = {"polyphony": 4, "channels": channels, "max_block_frames": 1024}
    return Mixer(RATE, master=bus(), **options), CompiledMixer(RATE, master=bus(), **options)


@needs_core
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_the_compiled_mixer_plays_what_the_numpy_mixer_plays(stream) -> None:
    commands, blocks, channels, master = stream
    reference, compiled = pair(channels, master)
    expected = run(reference, commands, blocks)
    got = run(compiled, commands, blocks)
    assert np.isfinite(got).all()
    assert np.abs(got - expected).max() <= TOLERANCE
    assert compiled.frames_mixed == reference.frames_mixed
    assert compiled.voices_active == reference.voices_active
    assert compiled.take_finished() == list(reference.finished)
    assert_same_limiter(reference, compiled)


def assert_same_limiter(reference: Mixer, compiled: CompiledMixer) -> None:
    """The limiter's meters read the same through either mixer's ``master``."""
    if reference.master is None or compiled.master is None:
        assert reference.master is compiled.master is None
        return
    expected, got = reference.master.limiter, compiled.master.limiter
    assert got.limited_frames == expected.limited_frames
    assert got.gain == pytest.approx(expected.gain, rel=1e-6)


@needs_core
def test_the_limiter_engages_and_both_mixers_agree_there() -> None:
    """Loud chords through the master bus: the output sits at the limit, not above it."""
    loud = [n for n in NOTES if n.gain > 1.0 / 32768 and isinstance(n, Note)]
    commands = [
        (IMMEDIATE, CMD_NOTE_ON, slot, 1, loud[slot % 2], 1.0, None, 1.0, 0.0, 1.0, 1, 4000, 0)
        for slot in range(4)
    ]
    reference, compiled = pair(2, True)
    expected = run(reference, commands, [128] * 40)
    got = run(compiled, commands, [128] * 40)
    assert reference.master is not None and reference.master.limiter.limited_frames > 0
    assert np.abs(expected).max() == pytest.approx(reference.master.limiter.limit, rel=1e-3)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert reference.master.limiter.gain < 1.0
    assert_same_limiter(reference, compiled)
    assert compiled._status[STATUS_LIMITED] == reference.master.limiter.limited_frames


@needs_core
def test_the_record_layout_is_the_c_struct() -> None:
    assert RECORD.itemsize == _mixcore.RECORD_SIZE
    declared = [(name, RECORD.fields[name][1], RECORD[name].itemsize) for name in RECORD.names]
    assert list(_mixcore.RECORD_FIELDS) == declared
    assert RECORD.names[-1] == "sequence"
    assert _mixcore.HEADER_OFFSETS == (0, 64, 128) and _mixcore.HEADER_SIZE == 192
    assert _mixcore.STATUS_FIELDS == (STATUS_ENDED, STATUS_VOICES, STATUS_PEAK, STATUS_LIMITED)


@needs_core
def test_malformed_records_are_dropped_counted_and_change_nothing() -> None:
    """Garbage written into the ring between good commands: each bad record is dropped and
    counted (one warning), the mix is what the good commands alone give, nothing crashes."""
    good = [
        (IMMEDIATE, CMD_NOTE_ON, 0, 1, NOTES[0], 1.0, NOTES[1], 1.0, 0.5, 1.0, 10, 900, 0),
        (300, CMD_MORPH, 0, 1, NOTES[2], 1.0, None, 1.0, 0.0),
        (900, CMD_RELEASE, 0, 1),
    ]
    clean, dirty = pair(2, True)[1], pair(2, True)[1]
    expected = run(clean, good, [256] * 12)
    ring: Ring = dirty._sender._ring
    bad = [
        with_op(to_record((IMMEDIATE, CMD_RELEASE, 0, 1)), 99),  # no such op
        to_record((IMMEDIATE, CMD_RELEASE, 500, 1)),  # no such slot
        to_record((IMMEDIATE, CMD_NOTE_ON, 0, 1, 77, 1.0, None, 1.0, 0.0, 1.0, 1, 1, 0)),
        to_record((IMMEDIATE, CMD_BEND, 40, 1.0)),  # no such channel
        to_record((IMMEDIATE, CMD_GAIN, 0, float("nan"), 1.0)),
        # more frames than the entry holds
        to_record((IMMEDIATE, OP_LOAD, 0, 10**9, 1.0, 60, 16000, 0, 0)),
        to_record((-5, CMD_SILENCE, ALL_CHANNELS)),  # a frame stamp before IMMEDIATE
    ]
    assert dirty.send(good[0])
    raw = np.frombuffer(os.urandom(RECORD.itemsize * 3), RECORD).copy()
    raw["op"] = 1000  # random bytes, with an op no mixer knows
    for values in [*bad, *raw.tolist()]:
        assert ring.put(values)
    for cmd in good[1:]:
        assert dirty.send(cmd)
    got = np.concatenate([_mix(dirty, 256) for _ in range(12)])
    assert ring.dropped == len(bad) + 3
    np.testing.assert_array_equal(got, expected)
    assert dirty.take_finished() == clean.take_finished() == [1]


@needs_core
def test_truncated_records_are_dropped_counted_and_a_torn_write_count_reads_nothing() -> None:
    """Records published before they were whole: a count moved past two slots never written
    (all zeros, which would be a note-on of entry 0), and the last record's bytes repeated
    without its own sequence stamp (left from before). Each is dropped and counted, the mix is
    the good commands'. A write count far ahead of the read count, or behind it, reads as no
    records: nothing dropped, nothing read outside the ring, and play goes on once it is right."""
    good = [
        (IMMEDIATE, CMD_NOTE_ON, 0, 1, NOTES[0], 1.0, NOTES[1], 1.0, 0.5, 1.0, 10, 900, 0),
        (300, CMD_MORPH, 0, 1, NOTES[2], 1.0, None, 1.0, 0.0),
        (900, CMD_RELEASE, 0, 1),
    ]
    clean, dirty = pair(2, True)[1], pair(2, True)[1]
    expected = run(clean, good, [256] * 12)
    ring: Ring = dirty._sender._ring
    counts = ring._counts
    assert dirty.send(good[0])
    written = ring.written
    counts[WRITE] = written + 2  # published, never written
    ring.records[(written + 2) % ring.capacity] = ring.records[(written - 1) % ring.capacity]
    counts[WRITE] = written + 3  # a whole record, but stamped for the place before
    for cmd in good[1:]:
        assert dirty.send(cmd)
    got = np.concatenate([_mix(dirty, 256) for _ in range(12)])
    assert ring.dropped == 3 and dirty.pending() == 0
    np.testing.assert_array_equal(got, expected)
    assert dirty.take_finished() == clean.take_finished() == [1]

    assert dirty.send(good[0])  # a new note, then its count torn
    read = ring.read
    for torn in (read + ring.capacity + 1, 10**15, read - 1):
        counts[WRITE] = torn
        assert not _mix(dirty, 64).any()
        assert ring.read == read and ring.dropped == 3
    counts[WRITE] = read + 1
    assert _mix(dirty, 64).any() and ring.read == read + 1 and ring.dropped == 3


def with_op(values: tuple, op: int) -> tuple:
    return (values[0], op, *values[2:])


def _mix(mixer: CompiledMixer, frames: int) -> np.ndarray:
    block = np.empty((frames, 2), dtype=np.float32)
    mixer.mix(block, frames)
    return block


@needs_core
def test_the_dropped_count_is_reported_once_per_rise(caplog) -> None:
    mixer = pair(1, False)[1]
    ring: Ring = mixer._sender._ring
    assert ring.put(to_record((IMMEDIATE, CMD_RELEASE, 99, 1)))
    _mix1 = np.empty((64, 1), np.float32)
    mixer.mix(_mix1, 64)
    with caplog.at_level("WARNING"):
        assert mixer.pending() == 0
        assert mixer.pending() == 0
    assert [r.getMessage() for r in caplog.records] == [
        "the mixer dropped 1 malformed command record(s) so far"
    ]


@needs_core
def test_make_mixer_picks_the_compiled_core() -> None:
    assert isinstance(make_mixer(RATE, polyphony=2), CompiledMixer)


def test_without_the_core_make_mixer_plays_numpy_and_says_so_once() -> None:
    """The extension's import blocked (as where it could not be built): the NumPy Mixer, one
    notice line; with GANSYNTH_REQUIRE_COMPILED_MIXER=1 a one-line error instead."""
    script = (
        "import sys\n"
        "sys.modules['gansynth_instrument.live._mixcore'] = None\n"
        "from gansynth_instrument.live.compiled_mixer import make_mixer, mixer_in_use\n"
        "from gansynth_instrument.errors import GansynthError\n"
        "m = make_mixer(48000, polyphony=2)\n"
        "print(type(m).__name__, mixer_in_use())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != MIXER_ENV}
    run_ = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert run_.returncode == 0, run_.stderr
    assert run_.stdout.startswith("Mixer numpy")
    notice = run_.stderr.splitlines()
    assert len(notice) == 1
    assert (
        notice[0].startswith("compiled mixer unavailable (")
        and "using the numpy mixer" in notice[0]
    )
    env[MIXER_ENV] = "1"
    run_ = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert run_.returncode != 0 and "GANSYNTH_REQUIRE_COMPILED_MIXER=1" in run_.stderr


def test_gansynth_mixer_chooses_numpy_and_rejects_other_values(monkeypatch, capsys) -> None:
    monkeypatch.delenv(MIXER_ENV, raising=False)
    monkeypatch.setenv(CHOICE_ENV, "numpy")
    assert type(make_mixer(RATE, polyphony=2)) is Mixer
    assert capsys.readouterr().err == (
        "compiled mixer unavailable (GANSYNTH_MIXER=numpy); using the numpy mixer\n"
    )
    assert mixer_in_use() == "numpy (compiled core: GANSYNTH_MIXER=numpy)"
    monkeypatch.setenv(CHOICE_ENV, "fast")
    with pytest.raises(GansynthError, match=r"^GANSYNTH_MIXER='fast': use compiled or numpy$"):
        make_mixer(RATE, polyphony=2)


@pytest.mark.skipif(os.environ.get(MIXER_ENV) != "1", reason=f"{MIXER_ENV} is not set (CI sets it)")
def test_ci_runs_the_compiled_mixer() -> None:
    """CI sets GANSYNTH_REQUIRE_COMPILED_MIXER=1: there the core must have been built."""
    assert isinstance(make_mixer(RATE), CompiledMixer)
