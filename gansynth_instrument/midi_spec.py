"""The MIDI 1.0 table this package reads and writes: status bytes, controller numbers, data lengths.

One place for the numbers the engine, the MIDI-file reader and the typing keyboard all use, so
none of them carries its own literals.
"""

from __future__ import annotations

# Channel voice messages: the status byte's high nibble (the low nibble is the channel).
NOTE_OFF = 0x80
NOTE_ON = 0x90
POLY_PRESSURE = 0xA0
CONTROL_CHANGE = 0xB0
PROGRAM_CHANGE = 0xC0
CHANNEL_PRESSURE = 0xD0
PITCH_BEND = 0xE0
SYSTEM = 0xF0  # 0xF0-0xFF: system common and real-time messages, no channel
STATUS_BIT = 0x80  # a byte below it is data (or running status)
KIND_MASK, CHANNEL_MASK = 0xF0, 0x0F
DATA_MAX = 127

DATA_BYTES = {
    NOTE_OFF: 2,
    NOTE_ON: 2,
    POLY_PRESSURE: 2,
    CONTROL_CHANGE: 2,
    PROGRAM_CHANGE: 1,
    CHANNEL_PRESSURE: 1,
    PITCH_BEND: 2,
}
BEND_CENTER = 8192  # the 14-bit pitch-bend value of no bend

# Controller numbers (MIDI 1.0 and General MIDI).
CC_BANK_MSB = 0  # bank select
CC_MOD_WHEEL = 1
CC_DATA_MSB = 6  # data entry for the selected (N)RPN
CC_VOLUME = 7
CC_PAN = 10
CC_EXPRESSION = 11
CC_BANK_LSB = 32
CC_DATA_LSB = 38
CC_SUSTAIN = 64
PEDAL_DOWN_MIN = 64  # a sustain value at or above it holds the pedal down
CC_NRPN_LSB, CC_NRPN_MSB = 98, 99
CC_RPN_LSB, CC_RPN_MSB = 100, 101
CC_ALL_SOUND_OFF = 120
CC_RESET_CONTROLLERS = 121
CC_ALL_NOTES_OFF = 123  # 124-127 (omni/mono/poly mode changes) also imply all notes off


def note_on(pitch: int, velocity: int, channel: int = 0) -> list[int]:
    return [NOTE_ON | channel, pitch, velocity]


def note_off(pitch: int, channel: int = 0) -> list[int]:
    return [NOTE_OFF | channel, pitch, 0]


def control_change(controller: int, value: int, channel: int = 0) -> list[int]:
    return [CONTROL_CHANGE | channel, controller, value]


def is_note_on(data: tuple[int, ...] | list[int]) -> bool:
    """A note-on with a velocity above 0 (velocity 0 is a note-off, by running-status idiom)."""
    return data[0] & KIND_MASK == NOTE_ON and data[2] > 0
