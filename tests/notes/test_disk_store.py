"""The note files (``DiskStore``) with real notes of the tiny model: the size cap evicts the least
recently used, and a killed writer's temporary files are cleaned up."""

from __future__ import annotations

import os
from pathlib import Path

from gansynth_instrument.model.latent import latent_digest, random_latent
from gansynth_instrument.model.runtime import Model
from gansynth_instrument.notes.disk_store import DiskStore, NoteKey
from notes.test_cache import fill


def test_disk_cap_evicts_the_least_recently_used(model: Model, tmp_path: Path) -> None:
    notes = fill(model, None, [40, 41, 42, 43], sample_rate=16000)
    timbre = latent_digest(random_latent(1))
    keys = {p: NoteKey(model.digest, timbre, p, 16000) for p in notes}
    DiskStore(tmp_path).save(keys[40], notes[40])
    file_bytes = (tmp_path / keys[40].file_name()).stat().st_size
    store = DiskStore(tmp_path, max_bytes=int(2.5 * file_bytes))  # room for two notes
    store.save(keys[41], notes[41])
    for age_s, pitch in ((300, 40), (200, 41)):  # make the order of use unambiguous
        stamp = (tmp_path / keys[pitch].file_name()).stat().st_mtime - age_s
        os.utime(tmp_path / keys[pitch].file_name(), (stamp, stamp))
    store.save(keys[42], notes[42])  # over the cap: the oldest (40) goes
    assert [p for p in notes if store.load(keys[p]) is not None] == [41, 42]
    os.utime(tmp_path / keys[42].file_name(), (1, 1))  # 42 long unused; 41 was just read
    assert store.load(keys[41]) is not None
    store.save(keys[43], notes[43])
    assert [p for p in notes if (tmp_path / keys[p].file_name()).exists()] == [41, 43]


def test_temp_files_left_by_a_killed_writer_are_removed(model: Model, tmp_path: Path) -> None:
    (note,) = fill(model, None, [40], sample_rate=16000).values()
    stale, fresh = tmp_path / ".a.123.tmp.note", tmp_path / ".b.456.tmp.note"
    for leftover in (stale, fresh):
        leftover.write_bytes(b"half a note")
    os.utime(stale, (1, 1))  # a write that stopped long ago; ``fresh`` may still be in progress
    DiskStore(tmp_path).save(NoteKey(model.digest, "t", 40, 16000), note)
    assert not stale.exists() and fresh.exists()
