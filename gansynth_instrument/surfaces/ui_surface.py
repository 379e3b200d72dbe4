"""What the browser control surface (``play --ui``) shows and does, without the web server.

One control path: every page action becomes what the matching MIDI message does. Knobs, pad,
morph, the random button and the piano are MIDI bytes handed to ``Player.handle``, exactly as a
keyboard's; a preset of the bank is its bank select + program change. Only what MIDI cannot
carry goes to the engine directly, through the call its MIDI twin uses: a preset outside the
bank, or a latent drawn on the page, becomes the channel's timbre through ``Engine.switch_to``
(the random button's path). Preset files are saved and renamed through ``preset_files``, by
validated names only, never by a path.

The page learns the state from ``snapshot()`` (cheap: read a few times a second per page), the
current latent from ``latent()`` and the last note's spectrogram from ``spectrogram()``; none of
them touches the audio process.
"""

from __future__ import annotations

import base64
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import spectrogram as stft_power

from gansynth_instrument.errors import PresetError
from gansynth_instrument.live.player import UNSET, Player
from gansynth_instrument.midi_spec import (
    CC_BANK_MSB,
    CONTROL_CHANGE,
    DATA_BYTES,
    DATA_MAX,
    KIND_MASK,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
    STATUS_BIT,
    SYSTEM,
)
from gansynth_instrument.model.latent import latent_digest, rescale
from gansynth_instrument.notes.note import Note
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.knobs import KNOB_CCS
from gansynth_instrument.presets.preset_fields import check_name
from gansynth_instrument.presets.preset_files import (
    find_preset,
    list_presets,
    timbre_preset,
    user_presets_dir,
)
from gansynth_instrument.presets.preset_saving import (
    check_free,
    delete_preset,
    save_copy,
    save_preset,
    user_preset_path,
)
from gansynth_instrument.surfaces.keyboard import KEY_BUTTONS, KEY_SEMITONES

# MIDI messages the page may send: what a keyboard with knobs, a pad and buttons sends.
PAGE_KINDS = frozenset({NOTE_ON, NOTE_OFF, CONTROL_CHANGE, PROGRAM_CHANGE})
LATENT_LIMIT = 100.0  # a drawn value beyond it is refused (the page draws within ±4)
SPECTROGRAM_TOP_HZ = 8000.0  # the model's notes are 16 kHz audio: nothing above
SPECTROGRAM_FRAME = 1024
SPECTROGRAM_FLOOR_DB = -80.0
SPECTROGRAM_COLUMNS = 256


class Surface:
    """The control surface of one ``Player``; ``user_dir``: where presets are saved (default
    the user presets folder). Thread-safe as ``Player.handle`` is: the server calls it from its
    own thread."""

    def __init__(self, player: Player, *, user_dir: Path | None = None) -> None:
        self.player = player
        self.user_dir = user_dir if user_dir is not None else user_presets_dir()
        bank = player.bank
        engine = player.engine
        space = engine.space
        count = space.knobs.count if space is not None and space.knobs is not None else 0
        self.knob_ccs = tuple((bank.knob_ccs if bank is not None else KNOB_CCS)[:count])
        # What each knob's + side does, as measured on the model (ganspace.KnobDirections.label).
        knobs = space.knobs if space is not None else None
        self.knob_labels = tuple(knobs.label(k) for k in range(count)) if knobs else ()
        has_pad = space is not None and bool(space.corners) and bank is not None
        self.pad_ccs = tuple(bank.pad_ccs) if has_pad and bank is not None else ()
        self.pad_corners = tuple(bank.pad_corners) if has_pad and bank is not None else ()
        self.latent_size = len(player.with_engine(lambda e: e.current()).latent)
        # Preset name → (bank select, program) that reaches it through the bank.
        self._programs: dict[str, tuple[int, int]] = {}
        if bank is not None:
            for number, programs in sorted({0: bank.programs, **bank.variations}.items()):
                for program, name in sorted(programs.items()):
                    self._programs.setdefault(name, (number, program))
        self._cpu = (time.monotonic(), _cpu_s())

    # -- what the page shows ------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """What does not change while playing: the controls' MIDI numbers and the key layout."""
        engine = self.player.engine
        return {
            "knobs": list(self.knob_ccs),
            "knob_labels": list(self.knob_labels),
            "pad": {"cc": list(self.pad_ccs), "corners": list(self.pad_corners)},
            "morph_cc": engine.morph_cc,
            "buttons": {"random": engine.random_cc, "save": engine.save_cc},
            "keys": KEY_SEMITONES,
            "key_buttons": KEY_BUTTONS,
            "latent_size": self.latent_size,
            "expected_norm": math.sqrt(self.latent_size),
        }

    def presets(self) -> list[dict[str, Any]]:
        """Every preset (shipped and yours), with the bank select + program reaching it."""
        listed = list_presets(user_dir=self.user_dir)
        return [
            {
                "name": p.name,
                "program": self._programs.get(p.name, (None, None))[1],
                "bank": self._programs.get(p.name, (None, None))[0],
                "yours": self._is_users(p.name),
                "description": p.description,
            }
            for p in listed
        ]

    def snapshot(self) -> dict[str, Any]:
        """The state the page mirrors: the focus channel's controls and timbre, and the meters."""

        def read(engine: Any) -> tuple[Any, ...]:
            current = engine.current()
            return engine.focus, engine.status(), current.name, current.key, engine.morph_cc

        focus, status, name, key, morph_cc = self.player.with_engine(read)
        stream = self.player.audio.stats()
        note_to_sound = self.player.note_to_sound_s(stream)
        values = self.player.controllers[focus]

        def value(cc: int | None, default: int) -> int | None:
            if cc is None:
                return None
            return values[cc] if values[cc] != UNSET else default

        now, cpu = time.monotonic(), _cpu_s()
        then, cpu_then = self._cpu
        if now - then >= 0.5:  # a CPU figure over half a second, not per tick
            self._cpu = (now, cpu)
        load = (cpu - cpu_then) / (now - then) if now > then else 0.0
        fill = {n: list(rc) for n, rc in status.cache_fill.items() if rc[1]}
        return {
            "channel": focus,
            "timbre": name,
            "timbre_key": key,
            "knobs": [value(cc, 64) for cc in self.knob_ccs],
            "pad": [value(cc, 0) for cc in self.pad_ccs],
            "morph": value(morph_cc, 0),
            "voices": self.player.audio.voices_active,
            "polyphony": self.player.audio.polyphony,
            "cache": fill,
            "xruns": stream.xruns,
            # The status line's figures and names (commands/play.py: latency_text).
            "note_to_sound_ms": None if note_to_sound is None else round(1e3 * note_to_sound, 1),
            "output_latency_ms": round(1e3 * stream.output_latency_s, 1),
            "callback_median": round(100 * stream.callback_median_load, 1),
            "callback_max": round(100 * stream.callback_max_load, 1),
            "cpu": round(100 * load, 1),
            "dropped": status.dropped_commands,
            "mpe": self.player.with_engine(lambda _: self.player.mpe.state()),
        }

    def latent(self) -> dict[str, Any]:
        """The latent the focus channel plays now, with its norm."""
        timbre = self.player.with_engine(lambda e: e.current())
        z = np.asarray(timbre.latent, dtype=np.float64)
        return {
            "key": timbre.key,
            "name": timbre.name,
            "values": [round(float(v), 4) for v in z],
            "norm": float(np.linalg.norm(z)),
        }

    def last_note(self) -> tuple[Timbre, Note] | None:
        """The timbre and note of the last note started (compare by identity to see a new one)."""
        return self.player.engine.last_played

    def spectrogram(self, played: tuple[Timbre, Note]) -> dict[str, Any]:
        """The note's spectrogram up to 8 kHz in dB below its peak, as bytes (0 = the floor,
        255 = the peak) in rows from the top frequency down, for the page to draw on a canvas."""
        timbre, note = played
        audio = note.to_float()
        rate = self.player.sample_rate
        hop = max(SPECTROGRAM_FRAME // 2, len(audio) // SPECTROGRAM_COLUMNS)
        freqs, _, power = stft_power(
            audio, fs=rate, nperseg=SPECTROGRAM_FRAME, noverlap=SPECTROGRAM_FRAME - hop
        )
        power = power[freqs <= SPECTROGRAM_TOP_HZ]
        db = 10 * np.log10(np.maximum(power, 1e-20))
        db -= db.max()
        scaled = np.clip(1 - db / SPECTROGRAM_FLOOR_DB, 0, 1) * 255
        image = np.ascontiguousarray(scaled[::-1].astype(np.uint8))
        return {
            "timbre": timbre.name,
            "pitch": note.pitch,
            "rows": image.shape[0],
            "cols": image.shape[1],
            "top_hz": SPECTROGRAM_TOP_HZ,
            "seconds": len(audio) / rate,
            "data": base64.b64encode(image.tobytes()).decode("ascii"),
        }

    # -- what the page does ---------------------------------------------------------------------

    def act(self, message: Mapping[str, Any]) -> None:
        """One page action: ``{"midi": [bytes]}``, ``{"preset": name}`` or ``{"latent":
        [values], "rescale": bool}``. Anything else, or a bad value, is a PresetError naming it
        (the page shows it; nothing changes)."""
        if "midi" in message:
            self.player.handle(check_midi(message["midi"]))
        elif "preset" in message:
            self.select(message["preset"])
        elif "latent" in message:
            self.play_latent(message["latent"], rescaled=bool(message.get("rescale")))
        else:
            raise PresetError(f"unknown page action {sorted(message)!r}")

    def select(self, name: object) -> None:
        """Play preset ``name``: a preset of the bank by bank select + program change on the
        focus channel, as a keyboard selects it; any other preset through ``switch_to``."""
        check_name("preset", name)
        assert isinstance(name, str)
        channel = self.player.engine.focus
        if name in self._programs:
            number, program = self._programs[name]
            self.player.handle([CONTROL_CHANGE | channel, CC_BANK_MSB, number])
            self.player.handle([PROGRAM_CHANGE | channel, program])
            return
        preset = find_preset(name, user_dir=self.user_dir)
        timbre = Timbre.from_preset(preset, self.latent_size)
        self.player.with_engine(lambda e: e.switch_to(timbre, channel))

    def play_latent(self, values: object, *, rescaled: bool = False) -> None:
        """A latent drawn on the page becomes the focus channel's timbre (level and envelope of
        what plays), as the random button's draw does; ``rescaled``: first scaled to √size."""
        if (
            not isinstance(values, Sequence)
            or len(values) != self.latent_size
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        ):
            raise PresetError(f"a drawn latent must be {self.latent_size} numbers")
        z = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(z)) or np.abs(z).max(initial=0) > LATENT_LIMIT:
            raise PresetError(f"a drawn latent's values must be finite, within ±{LATENT_LIMIT:g}")
        latent = (rescale(z) if rescaled else z).astype(np.float32)
        template = self.player.with_engine(lambda e: e.current())
        timbre = template.with_latent(f"drawn-{latent_digest(latent)[:8]}", latent)
        self.player.with_engine(lambda e: e.switch_to(timbre))

    def save(self, name: object) -> Path:
        """Save what plays (knob offsets included; its latent exactly) as your preset ``name``,
        a name not taken by yours or a shipped one. Atomic; returns the file."""
        name = check_free("save", name, user_dir=self.user_dir)
        timbre = self.player.with_engine(lambda e: e.current())
        note = "saved in the browser"
        preset = timbre_preset(timbre, name, note=note, model=self.player.preset_model)
        return save_preset(preset, self.user_dir)

    def rename(self, old: object, new: object) -> Path:
        """Rename your preset ``old`` to ``new`` (shipped presets are read-only). The new file
        is written before the old one goes, so a failure leaves the old one."""
        check_name("rename", old)
        check_name("rename", new, "new name")
        assert isinstance(old, str) and isinstance(new, str)
        if not self._is_users(old):
            raise PresetError(
                f"rename: '{old}' is not one of your presets (shipped ones are read-only)"
            )
        check_free("rename", new, user_dir=self.user_dir)
        _, path = save_copy(old, new_name=new, user_dir=self.user_dir)
        delete_preset(old, user_dir=self.user_dir)
        return path

    def _is_users(self, name: str) -> bool:
        return user_preset_path(name, self.user_dir).is_file()


def check_midi(msg: object) -> list[int]:
    """The page's MIDI message as bytes, or a PresetError: a note, controller or program
    change with its exact number of data bytes, each 0-127."""
    if not isinstance(msg, list) or not msg or not all(type(b) is int for b in msg):
        raise PresetError(f"a MIDI message must be a list of bytes, got {msg!r}")
    status = msg[0]
    if not STATUS_BIT <= status < SYSTEM or status & KIND_MASK not in PAGE_KINDS:
        raise PresetError(f"the page may send notes, controllers and program changes, not {msg!r}")
    if len(msg) != 1 + DATA_BYTES[status & KIND_MASK] or not all(
        0 <= b <= DATA_MAX for b in msg[1:]
    ):
        raise PresetError(f"malformed MIDI message {msg!r}")
    return msg


def _cpu_s() -> float:
    """CPU time of this process so far (the player: engine, MIDI, server; the audio and the
    note renderer run in processes of their own)."""
    times = os.times()
    return times.user + times.system
