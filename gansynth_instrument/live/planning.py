"""Offline planning: which notes a MIDI message stream will ask for, worked out before any is
played, so a renderer can ask the cache for them up front and they render in batches."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from gansynth_instrument.live.channels import DRUM_CHANNEL
from gansynth_instrument.live.programs import Programs
from gansynth_instrument.midi_spec import (
    CC_BANK_MSB,
    CHANNEL_MASK,
    CONTROL_CHANGE,
    KIND_MASK,
    NOTE_ON,
    PROGRAM_CHANGE,
)
from gansynth_instrument.notes.timbre import DrumKit, Timbre


def planned_notes(
    messages: Iterable[Sequence[int]],
    *,
    timbres: Sequence[Timbre | None],
    kits: Sequence[DrumKit | None],
    banks: Sequence[int],
    listen: Collection[int],
    programs: Programs,
    model_pitch: Callable[[int], int | None],
) -> dict[str, tuple[Timbre, set[int]]]:
    """Timbre key → (timbre, model pitches) the program changes and note-ons of ``messages``
    will ask for, starting from the channels' ``timbres``, ``kits`` and ``banks`` (copied, not
    changed); ``model_pitch`` maps a MIDI pitch to the model pitch that plays it, or None."""
    timbres, kits, banks = list(timbres), list(kits), list(banks)
    wanted: dict[str, tuple[Timbre, set[int]]] = {}
    for msg in messages:
        kind, channel = msg[0] & KIND_MASK, msg[0] & CHANNEL_MASK
        if channel not in listen or len(msg) < 2:
            continue
        if kind == CONTROL_CHANGE and len(msg) > 2 and msg[1] == CC_BANK_MSB:
            banks[channel] = msg[2]
        elif kind == PROGRAM_CHANGE and channel != DRUM_CHANNEL:
            chosen, _ = programs.resolve(banks[channel], msg[1])
            timbres[channel] = chosen or timbres[channel]
            kits[channel] = None if chosen is not None else kits[channel]
        elif kind == NOTE_ON and len(msg) > 2 and msg[2] > 0:
            kit = kits[channel]
            hit = kit.hits.get(msg[1]) if kit is not None else None
            timbre = hit.timbre if hit is not None else timbres[channel]
            if kit is not None and hit is None:
                continue
            pitch = model_pitch(hit.pitch if hit else msg[1])
            if timbre is not None and pitch is not None:
                wanted.setdefault(timbre.key, (timbre, set()))[1].add(pitch)
    return wanted
