"""``note.loop_note``: where a looping note's seam sits and what it joins."""

from __future__ import annotations

import numpy as np
from live.test_voices import RATE, decaying_tone

from gansynth_instrument.notes.note import loop_note


def test_loop_note_layout_joins_the_original_at_both_ends_of_the_seam():
    note = decaying_tone()
    looped = loop_note(note)
    pcm, start, end = note.pcm, looped.loop_start, looped.loop_end
    length = end - start
    assert abs(start - 3 * RATE) <= RATE / 200  # 3 s, moved by at most a pitch period
    assert abs(length - 2 * RATE) <= RATE / 200  # a 2 s loop (1 s → 3 s of the note)
    assert len(looped.pcm) == len(pcm) + length and not looped.pcm.flags.writeable
    assert np.array_equal(looped.pcm[:start], pcm[:start])  # before the loop: as rendered
    assert np.array_equal(looped.pcm[end:], pcm[start:])  # after it: the note's own tail
    # The seam ends with the audio just before the tail and then fades in from the loop start.
    seam = looped.pcm[start:end]
    assert np.array_equal(seam[-RATE // 2 :], pcm[start - RATE // 2 : start])
    begin = start - length  # where the loop starts in the note
    assert np.array_equal(seam[RATE // 4 : RATE // 2], pcm[begin + RATE // 4 : begin + RATE // 2])
    assert (looped.gain, looped.pitch, looped.sample_rate) == (note.gain, 60, RATE)
