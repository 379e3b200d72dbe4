"""A computer keyboard as a MIDI keyboard (``play --keys``), for players without one."""

from __future__ import annotations

from gansynth_instrument.midi_spec import (
    CC_MOD_WHEEL,
    CC_SUSTAIN,
    DATA_MAX,
    control_change,
    note_on,
)
from gansynth_instrument.presets.knobs import EXPLORE_CCS

# Semitones above the keyboard's base pitch: white keys on the home row, black keys above them.
KEY_SEMITONES: dict[str, int] = dict(
    zip(
        "asdfghjkl;'wetyuop",
        (0, 2, 4, 5, 7, 9, 11, 12, 14, 16, 17, 1, 3, 6, 8, 10, 13, 15),
        strict=True,
    )
)


# Typed keys that press the explore buttons (random timbre, save it).
KEY_BUTTONS = {
    "r": EXPLORE_CCS["the random-timbre button"],
    "n": EXPLORE_CCS["the save-timbre button"],
}


class TypingKeyboard:
    """A computer keyboard as a MIDI keyboard, for players without one (DAW-style layout).

    ``a s d f g h j k l ; '`` are white keys from C, ``w e  t y u  o p`` the black keys between;
    ``z``/``x`` shift an octave, ``c``/``v`` velocity, ``-``/``=`` move the morph, space toggles
    the sustain pedal, ``r`` draws a random timbre and ``n`` saves the one playing (the
    random/save buttons' controllers, pressed and released). Terminals report presses only, so
    the caller releases each note ``hold_s`` later (``press`` returns the pitch to release).
    """

    HELP = (
        "keys: a-' notes, w-p sharps, z/x octave, c/v velocity, -/= morph, space pedal, "
        "r random timbre, n save it"
    )

    def __init__(
        self, *, base_pitch: int = 60, velocity: int = 100, morph_cc: int | None = CC_MOD_WHEEL
    ) -> None:
        self.base_pitch = base_pitch
        self.velocity = velocity
        self.morph_cc = morph_cc
        self.morph_value = 0
        self.pedal = False

    def press(self, char: str) -> tuple[list[list[int]], int | None]:
        """(MIDI messages to send now, pitch to release ``hold_s`` later or None)."""
        offset = KEY_SEMITONES.get(char)
        if offset is not None:
            pitch = self.base_pitch + offset
            if 0 <= pitch <= DATA_MAX:
                return [note_on(pitch, self.velocity)], pitch
            return [], None
        if char in "zx":
            self.base_pitch = min(108, max(12, self.base_pitch + (12 if char == "x" else -12)))
        elif char in "cv":
            self.velocity = min(DATA_MAX, max(1, self.velocity + (16 if char == "v" else -16)))
        elif char in "-=" and self.morph_cc is not None:
            step = 16 if char == "=" else -16
            self.morph_value = min(DATA_MAX, max(0, self.morph_value + step))
            return [control_change(self.morph_cc, self.morph_value)], None
        elif char == " ":
            self.pedal = not self.pedal
            return [control_change(CC_SUSTAIN, DATA_MAX if self.pedal else 0)], None
        elif char in KEY_BUTTONS:
            cc = KEY_BUTTONS[char]
            return [control_change(cc, DATA_MAX), control_change(cc, 0)], None
        return [], None
