"""The latency every view of ``play`` shows: a measured note-on → sound figure, and the stream's own
output latency, under one name each, with one figure each on the status line, the banner and the
browser surface. The measured figure is checked against a recorder on the same JACK server in the
same run (no absolute timing)."""

from __future__ import annotations

import time

import numpy as np
from jackrig import JackServer, Recorder

from gansynth_instrument.commands.play import latency_text, status_line
from gansynth_instrument.presets.preset_files import find_preset
from gansynth_instrument.surfaces.ui_surface import Surface
from live.test_player import RATE, note, playing

PITCHES = (60, 64, 67, 72, 55)


def test_note_to_sound_is_measured_and_every_view_shows_the_same_figures(
    jack_server: JackServer, model, tmp_path
):
    with playing(model, tmp_path, preset=find_preset("felt-keys")) as (player, sender):
        for pitch in PITCHES:  # cached: each note-on starts its voice at once
            note(player, player.engine.timbre, pitch)
        assert player.status().note_to_sound_s is None
        assert "note→sound -" in status_line(player.status(), 200)
        heard_s = []  # MIDI send → the recorder's cycle that captured the onset
        for pitch in PITCHES:
            deadline = time.monotonic() + 30
            while player.audio.voices_active and time.monotonic() < deadline:
                time.sleep(0.01)
            with Recorder(seconds=0.5) as recorder:
                time.sleep(0.05)
                sent = sender.send([0x90, pitch, 110])
                time.sleep(0.2)
                sender.send([0x80, pitch, 0])
                captured = recorder.wait(timeout_s=10)[:, 0]
                sounding = np.flatnonzero(np.abs(captured) > 1e-4)
                heard_s.append(recorder.wall_time_s(int(sounding[0])) - sent)
        status = player.status()
        stream = status.stream
        assert status.note_to_sound_s is not None
        # The player's part: MIDI message in → the start of the block that played it. It starts
        # after the send, and no later than the recorder's cycle that captured that block (in
        # the fixture's synchronous mode PortAudio runs before the recorder in a cycle).
        to_block = status.note_to_sound_s - stream.output_latency_s
        assert 0 <= to_block <= float(np.median(heard_s)) + 1e-4, (to_block, heard_s)
        assert stream.output_latency_s >= 128 / RATE - 1e-9  # a block reaches the DAC after it
        print(
            f"note→sound {1e3 * status.note_to_sound_s:.2f} ms (to the block "
            f"{1e3 * to_block:.2f} ms + output latency {1e3 * stream.output_latency_s:.2f} ms); "
            f"recorder, send → captured: median {1e3 * float(np.median(heard_s)):.2f} ms"
        )

        line = status_line(status, 200)
        assert f"note→sound {latency_text(status.note_to_sound_s)}" in line
        assert f"output latency {latency_text(stream.output_latency_s)}" in line
        assert " latency " not in line.replace("output latency", "")
        page = Surface(player).snapshot()
        assert page["note_to_sound_ms"] == round(1e3 * status.note_to_sound_s, 1)
        assert page["output_latency_ms"] == round(1e3 * stream.output_latency_s, 1)
        assert "latency_ms" not in page
