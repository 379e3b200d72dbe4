"""What the engine tells its callers: the live view's snapshot (``EngineStatus``) and, per
channel, the notes played per preset and skipped per reason (``Tally`` → ``ChannelReport``), for
a render to say what it did."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gansynth_instrument.live.channels import CHANNELS

# Why notes were skipped, and remarks on what played a channel (``ChannelReport``).
SKIP_PERCUSSION = "drum notes"
PERCUSSION_NOTICE = (
    "channel 10 is General MIDI percussion: its notes name drums, not pitches, and are not "
    "played (give it a drum kit or a preset with --drums NAME, or a bank's 'drums:')"
)
SKIP_RANGE = "notes out of the model's range"
SKIP_KIT = "drum notes the kit lacks"
SKIP_CHANNEL = "notes on channels not chosen"
MELODIC_DRUMS = "a melodic preset as the drum kit: each key plays its own pitch"
KIT_ON_MELODIC = "a drum kit on a melodic channel: each key plays the kit's sound"


@dataclass(frozen=True)
class EngineStatus:
    """A snapshot for the live status view."""

    timbre: str
    morph_position: float | None  # 0..1 along the morph path; None while a preset plays
    cache_fill: dict[str, tuple[int, int]]  # timbre name → (cached, requested) pitches
    dropped_commands: int
    ignored_messages: int
    morph_cc: int | None


@dataclass(frozen=True)
class ChannelReport:
    """What one channel did: notes played per preset (or kit), notes skipped per reason, and
    remarks on what played it (each program it was given and what played that, a melodic
    preset as the kit, a kit on a melodic channel)."""

    channel: int  # 0-15
    played: dict[str, int]
    skipped: dict[str, int]
    remarks: tuple[str, ...] = ()


class Tally:
    """Per channel: notes played per preset (or kit), skipped per reason, and remarks."""

    def __init__(self) -> None:
        self.played: list[Counter[str]] = [Counter() for _ in range(CHANNELS)]
        self.skipped: list[Counter[str]] = [Counter() for _ in range(CHANNELS)]
        self.remarks: list[set[str]] = [set() for _ in range(CHANNELS)]

    def report(self) -> list[ChannelReport]:
        """Per channel that had notes: notes played per preset and skipped per reason."""
        return [
            ChannelReport(
                c, dict(self.played[c]), dict(self.skipped[c]), tuple(sorted(self.remarks[c]))
            )
            for c in range(CHANNELS)
            if self.played[c] or self.skipped[c]
        ]
