"""Live play on the JACK dummy server: MIDI from a separate JACK client in, PortAudio out, captured.

Every check compares the captured audio with the cached notes themselves (normalised correlation at
the best alignment), so it holds for any model; the notes a check needs are rendered into the cache
first, so the exact notes play (not the nearest-pitch stand-in). No timing is asserted here: latency
figures come from benchmarks/bench_live.py.
"""

from __future__ import annotations

import multiprocessing
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from jackrig import JackServer, MidiSender, Recorder, midi_input_port
from scipy.signal import correlate

from gansynth_instrument import cli
from gansynth_instrument.commands.play import play_config, session_summary, status_line
from gansynth_instrument.live.config import CacheConfig, Sounds
from gansynth_instrument.live.engine import EngineStatus
from gansynth_instrument.live.midi import CLIENT_NAME
from gansynth_instrument.live.player import (
    DEFAULT_RENDERER,
    GIL_SWITCH_INTERVAL_S,
    LiveStatus,
    PlayConfig,
    Player,
)
from gansynth_instrument.live.stream_meters import StreamStats
from gansynth_instrument.notes.note_queue import Priority
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.bank import Bank
from gansynth_instrument.presets.bank_files import find_bank
from gansynth_instrument.presets.ganspace import knob_directions
from gansynth_instrument.presets.preset import Preset
from gansynth_instrument.presets.preset_files import find_preset
from gansynth_instrument.surfaces.keyboard import TypingKeyboard

RATE = 48000
WAIT_S = 300.0  # only bounds a hang
TEMPLATE_S = 0.2  # length of capture compared with a note
WINDOW_S = 0.1  # pieces of it searched for in the note (see match)
MATCH = 0.9  # the right note scores ≥ 0.97 even under load
MISMATCH = 0.8  # another timbre of the same pitch scores ≤ 0.65 (tiny model, 0.1 s pieces)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-notes")


@contextmanager
def playing(
    model, cache_dir: Path, preset: Preset | None = None, bank: Bank | None = None
) -> Iterator[tuple[Player, MidiSender]]:
    """A started Player on a fresh virtual port, and a JACK MIDI client connected to it."""
    port = f"keys-{uuid.uuid4().hex[:6]}"
    cache = CacheConfig(cache_dir, DEFAULT_RENDERER)
    config = PlayConfig(cache=cache, sample_rate=RATE, virtual_midi=port)
    player = Player(model, Sounds(preset, bank), config)
    with player, MidiSender() as sender:
        sender.connect(midi_input_port(sender.client, f"{CLIENT_NAME}.*:{port}"))
        yield player, sender


def note(player: Player, timbre: Timbre, pitch: int) -> np.ndarray:
    """The cached note (float, at the output rate), rendered first if needed."""
    player.cache.request(timbre.latent, [pitch], Priority.WAITING)
    assert player.cache.wait(timbre.key, [pitch], WAIT_S)
    return player.cache.lookup(timbre.key, pitch).to_float()


def record_stereo(
    sender: MidiSender, script: list[tuple[float, list[int]]], seconds: float
) -> np.ndarray:
    """Send each message at its time (s after recording starts); both channels captured."""
    with Recorder(seconds=seconds) as recorder:
        start = time.perf_counter()
        for at_s, msg in script:
            time.sleep(max(0.0, start + at_s - time.perf_counter()))
            sender.send(msg)
        return recorder.wait(timeout_s=seconds + 10).copy()


def record(sender: MidiSender, script: list[tuple[float, list[int]]], seconds: float) -> np.ndarray:
    """``record_stereo`` of centred channels: left and right are the same; the left returned."""
    captured = record_stereo(sender, script, seconds)
    assert np.array_equal(captured[:, 0], captured[:, 1])
    return captured[:, 0]


def match(captured: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """How well ``captured`` is a piece of ``reference``, and where in it ``captured[0]`` sits.

    The capture is cut into ``WINDOW_S`` pieces; each is searched for in the reference (normalised
    correlation at the best offset) and the best piece counts, so a block the loaded 2-core machine
    dropped (an xrun) does not hide a match.
    """
    n = round(WINDOW_S * RATE)
    energy = np.concatenate([[0.0], np.cumsum(reference.astype(np.float64) ** 2)])
    best = (-1.0, 0)
    for start in range(0, len(captured) - n + 1, n):
        piece = captured[start : start + n].astype(np.float64)
        if not piece.any():
            continue
        dots = correlate(reference, piece, mode="valid", method="fft")
        norms = np.sqrt(np.maximum(energy[n:] - energy[:-n], 1e-20)) * np.linalg.norm(piece)
        k = int(np.argmax(dots / norms))
        best = max(best, (float(dots[k] / norms[k]), k - start))
    return best


def onset(captured: np.ndarray) -> int:
    return int(np.flatnonzero(np.abs(captured) > 1e-4)[0])


def test_the_settings_play_builds_from_its_arguments_reach_the_engine_and_the_audio(
    jack_server: JackServer, model, cache_dir
):
    """``play``'s arguments → ``play_config`` → ``Player``: the engine gets the engine config
    the builder made (the same object), and the cache and the audio process play by the rest."""
    port = f"keys-{uuid.uuid4().hex[:6]}"
    argv = ["play", "--channel", "1-2", "--polyphony", "12", "--bend-range", "7"]
    argv += ["--sample-rate", str(RATE), "--cache-dir", str(cache_dir), "--virtual-midi", port]
    argv += ["--renderer", "thread", "--max-memory-mb", "64"]
    config = play_config(cli.build_parser().parse_args(argv))
    with Player(model, Sounds(find_preset("felt-keys")), config) as player:
        assert player.engine.config is config.engine
        assert player.engine.listen == frozenset({0, 1})
        assert {c.bend_range for c in player.engine.channels} == {7.0}
        assert player.audio.polyphony == 12 and player.audio.sample_rate == RATE
        assert player.cache.renderer == "thread"
        assert player.cache.max_memory_bytes == 64 * 2**20


def test_each_note_sounds_with_its_cached_waveform_and_note_off_releases_it(
    jack_server: JackServer, model, cache_dir
):
    preset = find_preset("felt-keys")
    default_interval = sys.getswitchinterval()
    with playing(model, cache_dir, preset=preset) as (player, sender):
        # rtmidi's JACK thread waits for the GIL at most about this long (see live.py).
        assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S < default_interval
        timbre = player.engine.timbre
        for pitch in (60, 67):
            expected = note(player, timbre, pitch)
            script = [(0.05, [0x90, pitch, 110]), (0.45, [0x80, pitch, 0])]
            captured = record(sender, script, seconds=1.2)
            start = onset(captured)
            body = captured[start + round(0.02 * RATE) : start + round(0.3 * RATE)]
            score, _ = match(body, expected[: round(0.5 * RATE)])
            assert score > MATCH, (pitch, score)
            # Released at ~0.45 s: silent once the release (preset.release_s) is over.
            silent_from = round((0.45 + preset.release_s + 0.05) * RATE)
            assert np.abs(captured[start : start + round(0.3 * RATE)]).max() > 0.05
            assert not captured[silent_from:].any()
    assert sys.getswitchinterval() == default_interval


def test_a_random_timbres_first_note_is_its_exact_note(jack_server: JackServer, model, tmp_path):
    with playing(model, tmp_path, preset=find_preset("felt-keys")) as (player, sender):
        note(player, player.engine.timbre, 60)  # the renderer process is up and running
        script = [(0.05, [0xB0, 80, 127]), (0.05, [0x90, 60, 110]), (1.5, [0x80, 60, 0])]
        captured = record(sender, script, seconds=2.0)
        drawn = player.engine.current()
        assert drawn.name.startswith("random-")
        expected = note(player, drawn, 60)
    start = onset(captured)
    assert start < round(1.0 * RATE)  # within PENDING_S of the note-on, else it is dropped
    body = captured[start + round(0.02 * RATE) : start + round(0.5 * RATE)]
    score, at = match(body, expected[: round(0.8 * RATE)])
    assert score > MATCH and abs(at) < round(0.03 * RATE), (score, at)  # from its start


def test_play_keeps_its_processes_out_of_huge_pages(jack_server: JackServer, model, tmp_path):
    """memory.no_huge_pages: khugepaged's copies delayed JACK's real-time threads by 4-7 ms."""
    with playing(model, tmp_path, preset=find_preset("felt-keys")) as (player, _):
        # An empty cache: the renderer process is up once a note is rendered.
        assert player.cache.wait(player.engine.timbre.key, [60], 60.0)
        deadline = time.monotonic() + 60.0  # the first-note renderer starts with the first note
        while len(multiprocessing.active_children()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [os.getpid(), *(child.pid for child in multiprocessing.active_children())]
        assert len(pids) == 4  # this one, the audio process, the two renderer processes
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            assert "THP_enabled:\t0" in status, pid


def test_sustain_pedal_holds_released_notes_until_it_lifts(jack_server, model, cache_dir):
    preset = find_preset("felt-keys")
    with playing(model, cache_dir, preset=preset) as (player, sender):
        expected = note(player, player.engine.timbre, 64)
        script = [
            (0.02, [0xB0, 64, 127]),
            (0.05, [0x90, 64, 100]),
            (0.15, [0x80, 64, 0]),  # key up under the pedal
            (0.9, [0xB0, 64, 0]),  # pedal up: the release starts
        ]
        captured = record(sender, script, seconds=1.6)
    held = captured[round((0.2 + preset.release_s) * RATE) : round(0.85 * RATE)]
    # Well past the key's release time, the note still plays at full level: the pedal holds it.
    score, position = match(held, expected)
    assert score > MATCH
    level = np.linalg.norm(held) / np.linalg.norm(expected[position : position + len(held)])
    assert level == pytest.approx((100 / 127) ** 2 * 10 ** (preset.gain_db / 20), rel=0.05)
    assert not captured[round((0.9 + preset.release_s + 0.05) * RATE) :].any()


def test_program_change_switches_new_notes_and_keeps_the_sounding_one(
    jack_server, model, cache_dir
):
    bank = find_bank("default")  # program 0: fluid-piano, 14: glass-bell
    with playing(model, cache_dir, bank=bank) as (player, sender):
        keys, bell = player.engine.programs[0], player.engine.programs[14]
        keys60, bell60 = note(player, keys, 60), note(player, bell, 60)
        held = record(sender, [(0.05, [0x90, 60, 110]), (0.3, [0xC0, 14])], seconds=0.8)
        after_change = held[round(0.4 * RATE) : round(0.6 * RATE)]
        assert match(after_change, keys60)[0] > MATCH  # the sounding note kept its timbre
        sender.send([0x80, 60, 0])
        time.sleep(0.5)
        new = record(sender, [(0.05, [0x90, 60, 110])], seconds=0.6)
        body = new[onset(new) + round(0.02 * RATE) :][: round(TEMPLATE_S * RATE)]
        assert match(body, bell60)[0] > MATCH
        assert match(body, keys60)[0] < MISMATCH


def test_two_channels_play_their_own_programs_at_once(jack_server, model, cache_dir):
    """Channel 1 (program 0) panned hard left, channel 2 (program 14) hard right, the same key
    on both at once: each side of the capture is its own channel's preset."""
    with playing(model, cache_dir, bank=find_bank("default")) as (player, sender):
        own = {0: note(player, player.engine.programs[0], 60)}
        own[1] = note(player, player.engine.programs[14], 60)
        script = [(0.0, [0xB0, 10, 0]), (0.0, [0xB1, 10, 127]), (0.0, [0xC1, 14])]
        script += [(0.05, [0x90, 60, 110]), (0.05, [0x91, 60, 110])]
        captured = record_stereo(sender, script, seconds=0.8)
    for side in (0, 1):
        heard = captured[:, side]
        body = heard[onset(heard) + round(0.02 * RATE) :][: round(TEMPLATE_S * RATE)]
        assert match(body, own[side])[0] > MATCH, side
        assert match(body, own[1 - side])[0] < MISMATCH, side


def test_morph_cc_changes_the_timbre_of_held_and_new_notes(jack_server, model, cache_dir):
    bank = find_bank("default")  # morph path felt-keys → glass-bell → slow-pad on CC1
    with playing(model, cache_dir, bank=bank) as (player, sender):
        first, last = player.engine.programs[0], player.engine.morph[-1]
        start60, end60 = note(player, first, 60), note(player, last, 60)
        start64, end64 = note(player, first, 64), note(player, last, 64)
        script = [
            (0.05, [0x90, 60, 110]),
            (0.5, [0xB0, 1, 127]),  # mod wheel to the end of the path, the note still held
            (0.8, [0x80, 60, 0]),
            (1.3, [0x90, 64, 110]),
        ]
        captured = record(sender, script, seconds=1.7)
    start = onset(captured)
    before = captured[start + round(0.1 * RATE) : round(0.45 * RATE)]
    assert match(before, start60)[0] > MATCH
    held_after = captured[round(0.55 * RATE) : round(0.75 * RATE)]
    score, position = match(held_after, end60)
    assert score > MATCH and match(held_after, start60)[0] < MISMATCH
    # The new step took over at the playback position the held note had reached.
    # (Not restarted: that would put it near 0. Dropped blocks under load shift it a little.)
    assert abs(position - (round(0.55 * RATE) - start)) < round(0.05 * RATE)
    new = captured[round(1.3 * RATE) :]
    body = new[onset(new) + round(0.02 * RATE) :][: round(TEMPLATE_S * RATE)]
    assert match(body, end64)[0] > MATCH and match(body, start64)[0] < MISMATCH


def test_pitch_bend_shifts_the_pitch_of_a_held_note(jack_server, model, cache_dir):
    with playing(model, cache_dir, preset=find_preset("felt-keys")) as (player, sender):
        plain = note(player, player.engine.timbre, 60)
        script = [(0.05, [0x90, 60, 110]), (0.4, [0xE0, 0x7F, 0x7F])]  # full up: +2 semitones
        captured = record(sender, script, seconds=0.8)
    after = captured[round(0.5 * RATE) : round(0.7 * RATE)]
    bent = np.interp(np.arange(0, len(plain) - 1, 2 ** (2 / 12)), np.arange(len(plain)), plain)
    assert match(after, bent)[0] > MATCH
    assert match(after, plain)[0] < MISMATCH


def run_play(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gansynth_instrument", "play", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("gansynth-instrument play:")]


def test_unknown_midi_port_is_one_line_listing_the_ports(
    jack_server: JackServer, tiny_model, tmp_path
):
    argv = ["--model", str(tiny_model), "--midi-in", "no-such-keyboard", "--cache-dir", tmp_path]
    result = run_play([str(a) for a in argv], dict(os.environ))
    lines = error_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "no MIDI input port 'no-such-keyboard'" in lines[0] and "MIDI inputs are" in lines[0]


def test_no_audio_output_is_one_line_suggesting_render(tiny_model, tmp_path):
    env = dict(
        os.environ, JACK_DEFAULT_SERVER=f"absent-{uuid.uuid4().hex}", JACK_NO_START_SERVER="1"
    )
    env["HOME"] = str(tmp_path)  # no .asoundrc devices either
    argv = ["--model", str(tiny_model), "--cache-dir", str(tmp_path)]
    result = run_play(argv, env)
    lines = error_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "render" in lines[0]


def test_bad_preset_is_one_line_before_anything_opens(tiny_model, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\nseed: 3\ngain_db: loud\n")
    result = run_play(["--model", str(tiny_model), "--preset", str(bad)], dict(os.environ))
    lines = error_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert str(bad) in lines[0] and "gain_db" in lines[0]


def start_play(
    tiny_model, tmp_path, port: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, list]:
    """``play`` in a child process, read up to its "Ctrl-C to stop." line."""
    command = [sys.executable, "-m", "gansynth_instrument", "play", "--model", str(tiny_model)]
    command += ["--virtual-midi", port, "--cache-dir", str(tmp_path), *extra]
    play = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    lines = []
    while not lines or lines[-1] != "Ctrl-C to stop.\n":
        line = play.stdout.readline()
        if not line:
            play.kill()
            pytest.fail(play.stderr.read())
        lines.append(line)
    return play, lines


def test_ctrl_c_closes_the_stream_and_the_midi_port(jack_server: JackServer, tiny_model, tmp_path):
    port = f"keys-{uuid.uuid4().hex[:6]}"
    play, lines = start_play(
        tiny_model, tmp_path, port, "--channel", "1,2,10", "--drums", "slow-pad"
    )
    try:
        with MidiSender() as sender:  # the port is there while it plays
            midi_input_port(sender.client, f"{CLIENT_NAME}.*:{port}")
        play.send_signal(signal.SIGINT)
        out, err = play.communicate(timeout=60)
    finally:
        play.kill()
    assert play.returncode == 0 and "Traceback" not in err, err
    (audio,) = [line for line in lines if line.startswith("audio ")]
    assert "JACK" in audio and "output latency " in audio and "reported" not in audio
    (summary,) = [line for line in out.splitlines() if line.startswith("played  ")]
    assert re.fullmatch(r"played  0:\d\d\.\d, limiter on 0\.00 % of frames, \d+ xruns", summary)
    assert any(line.startswith("MIDI ") and "channels 1,2,10" in line for line in lines)
    melodic = "a melodic preset as the drum kit: each key plays its own pitch"
    assert f"drums   channel 10: slow-pad ({melodic})\n" in lines
    with MidiSender() as sender:
        assert not sender.client.get_ports(f"{CLIENT_NAME}.*:{port}", is_midi=True)


def test_a_first_start_shows_each_step_on_captured_stderr(jack_server, tiny_model, tmp_path):
    """A first play of a model finds its knob directions (15 s for the bundled model): stderr,
    even into a pipe, names each start-up step and shows the knobs' progress bar."""
    play, _ = start_play(tiny_model, tmp_path, f"keys-{uuid.uuid4().hex[:6]}")
    err = stop(play)
    assert play.returncode == 0, err
    steps = ["starting: the model [0/3", "starting: timbre knobs [1/3", "timbre knobs (PCA):"]
    steps.append("starting: audio and MIDI [2/3")
    found = [err.find(step) for step in steps]
    assert -1 not in found and found == sorted(found), err


def test_a_second_player_names_the_port_jack_gave_it(jack_server: JackServer, tiny_model, tmp_path):
    """JACK renames a second client of the same name (``gansynth-instrument-01``): each banner
    names the full port that others connect to, and that port is there."""
    port = f"keys-{uuid.uuid4().hex[:6]}"
    first, first_lines = start_play(tiny_model, tmp_path / "a", port)
    try:
        second, second_lines = start_play(tiny_model, tmp_path / "b", port)
        try:
            names = []
            for lines in (first_lines, second_lines):
                (midi,) = [line for line in lines if line.startswith("MIDI ")]
                names.append(midi.split()[1])
            with MidiSender() as sender:
                ours = sender.client.get_ports(f"{CLIENT_NAME}.*:{port}", is_midi=True)
                assert sorted(names) == sorted(p.name for p in ours) and len(set(names)) == 2
        finally:
            stop(second)
    finally:
        stop(first)


def stop(play: subprocess.Popen) -> str:
    """Ctrl-C a ``start_play`` child (killed if it does not end within a minute); its stderr."""
    try:
        play.send_signal(signal.SIGINT)
        _, err = play.communicate(timeout=60)
    finally:
        play.kill()
    return err


def send_then_stop(
    play: subprocess.Popen, port: str, messages: list[list[int]], done: Callable[[], bool]
) -> tuple[str, str]:
    """Send ``messages`` to a ``start_play`` child, wait (30 s at most) until ``done()`` (the
    status loop writes files while playing), then Ctrl-C it: its (stdout, stderr)."""
    try:
        with MidiSender() as sender:
            sender.connect(midi_input_port(sender.client, f"{CLIENT_NAME}.*:{port}"))
            for message in messages:
                sender.send(message)
            deadline = time.monotonic() + 30
            while not done() and time.monotonic() < deadline:
                time.sleep(0.1)
        play.send_signal(signal.SIGINT)
        return play.communicate(timeout=60)
    finally:
        play.kill()


def test_learn_binds_the_next_knob_and_saves_it_in_a_user_copy_of_the_bank(
    jack_server, tiny_model, tmp_path
):
    port = f"keys-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"))  # the user presets dir
    user_dir = tmp_path / "data" / "gansynth-instrument" / "presets"
    shipped = find_bank("default", user_dir=user_dir)
    shipped_text = shipped.path.read_text()
    play, lines = start_play(tiny_model, tmp_path, port, "--learn", env=env)
    saved = user_dir / "banks" / "default.yaml"
    out, err = send_then_stop(play, port, [[0xB0, 74, 90]], saved.exists)  # a filter knob, say
    assert play.returncode == 0, err
    assert any(line.startswith("learn ") for line in lines)
    assert f"morph bound to CC74, saved in {saved}" in out
    assert find_bank("default", user_dir=user_dir).morph_cc == 74
    assert shipped.path.read_text() == shipped_text


def test_a_turned_knob_and_the_save_button_keep_the_timbre_as_a_preset(
    jack_server, model, tiny_model, tmp_path
):
    port = f"keys-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"))  # the user presets dir
    user_dir = tmp_path / "data" / "gansynth-instrument" / "presets"
    notes = tmp_path / "notes"
    play, lines = start_play(tiny_model, notes, port, "--preset", "felt-keys", env=env)
    knob_up_then_save = [[0xB0, 70, 127], [0xB0, 81, 127]]
    out, err = send_then_stop(
        play, port, knob_up_then_save, lambda: any(user_dir.glob("found-*.yaml"))
    )
    assert play.returncode == 0, err
    assert "knobs   CC70, CC71, CC72, CC73, CC74, CC75, CC76, CC77 (64 = unchanged)\n" in lines
    (saved,) = user_dir.glob("found-*.yaml")
    assert f"saved {saved.stem} ({saved})" in out
    found = find_preset(saved.stem, user_dir=user_dir)
    assert found.description == "from felt-keys knobs 1=+4"
    assert found.model == model.info.digest  # made on the tiny model, which has no family
    knobs = knob_directions(model, cache_dir=notes / "knobs", progress=False)
    expected = knobs.move(find_preset("felt-keys").latent_vector(), [4.0])
    assert np.array_equal(found.latent_vector(), expected)


def test_learn_with_a_single_preset_is_one_line_saying_it_needs_a_bank(capsys):
    code = cli.main(["play", "--model", "never-opened.onnx", "--preset", "felt-keys", "--learn"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--learn" in err and "--bank" in err, err


def test_typing_keyboard_maps_keys_to_midi():
    keys = TypingKeyboard(base_pitch=60, velocity=100, morph_cc=1)
    assert keys.press("a") == ([[0x90, 60, 100]], 60)
    assert keys.press("w") == ([[0x90, 61, 100]], 61)
    assert keys.press("'") == ([[0x90, 77, 100]], 77)
    assert keys.press("x") == ([], None) and keys.press("a") == ([[0x90, 72, 100]], 72)
    assert keys.press("c") == ([], None) and keys.press("s") == ([[0x90, 74, 84]], 74)
    assert keys.press("=") == ([[0xB0, 1, 16]], None)
    assert keys.press(" ") == ([[0xB0, 64, 127]], None)
    assert keys.press(" ") == ([[0xB0, 64, 0]], None)
    assert keys.press("q") == ([], None)
    assert keys.press("r") == ([[0xB0, 80, 127], [0xB0, 80, 0]], None)  # random timbre button
    assert keys.press("n") == ([[0xB0, 81, 127], [0xB0, 81, 0]], None)  # save button


def test_keys_without_a_terminal_is_one_line(tiny_model):
    result = subprocess.run(
        [sys.executable, "-m", "gansynth_instrument", "play", "--model", str(tiny_model), "--keys"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = error_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1 and "terminal" in lines[0], result.stderr


def test_typing_keyboard_plays_notes_from_a_terminal(jack_server: JackServer, tiny_model, tmp_path):
    master, slave = pty.openpty()
    command = [sys.executable, "-m", "gansynth_instrument", "play", "--model", str(tiny_model)]
    command += ["--keys", "--preset", "felt-keys", "--cache-dir", str(tmp_path)]
    play = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    screen = b""

    def read_until(needle: bytes, timeout_s: float = 60.0) -> None:
        nonlocal screen
        deadline = time.monotonic() + timeout_s
        while needle not in screen:
            assert time.monotonic() < deadline, screen.decode(errors="replace")[-500:]
            if select.select([master], [], [], 0.1)[0]:
                screen += os.read(master, 4096)

    try:
        read_until(b"cache 61/61")  # every note cached: the next ones play exactly
        os.write(master, b"adg")  # C, E, G at once
        read_until(b"voices 3/")
        read_until(b"voices 0/")  # each typed note is released after KEY_HOLD_S
        play.send_signal(signal.SIGINT)
        assert play.wait(timeout=60) == 0
    finally:
        play.kill()
        os.close(master)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--channel", "17"),
        ("--channel", "0"),
        ("--channel", "1,x"),
        ("--polyphony", "0"),
        ("--blocksize", "0"),
        ("--blocksize", "15"),
        ("--blocksize", "100000"),
        ("--sample-rate", "-48000"),
        ("--velocity-curve", "0"),
        ("--velocity-curve", "loud"),
        ("--gain-db", "30"),
        ("--gain-db", "-61"),
        ("--bend-range", "-1"),
    ],
)
def test_bad_play_settings_are_one_line_before_anything_opens(flag, value, capsys):
    code = cli.main(["play", "--model", "never-opened.onnx", flag, value])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and flag in err and value in err, err


def _status(timbres: int, *, dropped: int = 0) -> LiveStatus:
    names = {f"fluid-electric-piano-soft-{i}": (i, 61) for i in range(timbres)}
    engine = EngineStatus(
        timbre="fluid-electric-piano-soft-0",
        morph_position=0.5,
        cache_fill=names,
        dropped_commands=dropped,
        ignored_messages=0,
        morph_cc=1,
    )
    stream = StreamStats(12000, 3, 128 / RATE, 0.005, 0.0053, 0.0004, 0.001)
    return LiveStatus(engine, stream, voices_sounding=5, polyphony=32, note_to_sound_s=0.0079)


def test_the_session_summary_gives_the_limiters_share_of_the_frames_played() -> None:
    stats = StreamStats(
        callbacks=30000,
        xruns=2,
        block_period_s=128 / 48000,
        latency_s=0.005,
        dac_latency_s=0.005,
        callback_median_s=0.0001,
        callback_max_s=0.001,
    )
    line = session_summary(stats, 48000, 128, limited_frames=38400)
    assert line == "played  1:20.0, limiter on 1.00 % of frames, 2 xruns"


@pytest.mark.parametrize("width", [200, 120, 80, 60, 40, 20])
def test_status_line_fits_the_terminal_whatever_the_cache_holds(width):
    """Many timbres loading made the line grow past 160 columns and wrap on every refresh."""
    line = status_line(_status(25, dropped=4), width)
    assert len(line) <= width - 1, line
    assert "dropped 4" in line or width < 30


def test_status_line_keeps_the_most_needed_parts_first():
    wide = status_line(_status(25), 200)
    for part in ("preset fluid-electric-piano-soft-0", "morph 0.50", "cache 0/61", "+24 loading"):
        assert part in wide
    assert "voices 5/32" in wide and "xruns 3" in wide and "output latency 5.3 ms" in wide
    assert "note→sound 7.9 ms" in wide
    narrow = status_line(_status(25), 60)
    assert "voices 5/32" in narrow and "xruns 3" in narrow and "callback" not in narrow
