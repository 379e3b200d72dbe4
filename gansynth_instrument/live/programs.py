"""Program and bank select → timbre, the way a General MIDI synth finds a preset.

A bank (bank select CC0, bank 0 the General MIDI one) maps program numbers to timbres. A program
the chosen bank lacks falls back as FluidSynth and GS synths do: to bank 0's program, else to the
nearest defined program of the same General MIDI family (8 programs each), else to the nearest
defined program. Each fallback comes with a notice for the caller to show once.
"""

from __future__ import annotations

from collections.abc import Mapping

from gansynth_instrument.live.channels import gm_family
from gansynth_instrument.notes.timbre import Timbre


class Programs:
    """``banks[bank][program]`` → Timbre; ``resolve`` applies the fallbacks above."""

    def __init__(self, banks: Mapping[int, Mapping[int, Timbre]]) -> None:
        self.banks = {b: dict(p) for b, p in banks.items() if p}

    def __bool__(self) -> bool:
        return bool(self.banks)

    def resolve(self, bank: int, program: int) -> tuple[Timbre | None, str | None]:
        """The timbre for ``program`` in ``bank`` and a notice when it is a stand-in (None, None
        when there are no programs at all: one preset plays everything)."""
        if not self.banks:
            return None, None
        notice = None
        chosen = self.banks.get(bank)
        if chosen is not None and program in chosen:
            return chosen[program], None
        if chosen is None and bank != 0:
            notice = f"bank {bank} does not exist (banks: {', '.join(map(str, self.banks))})"
        base = self.banks.get(0) or self.banks[min(self.banks)]
        if program in base:
            if notice is None:
                notice = f"bank {bank} has no program {program}"
            return base[program], f"{notice}; playing bank 0's {base[program].name}"
        family = [p for p in base if p // 8 == program // 8]
        pool = family or list(base)
        nearest = min(pool, key=lambda p: (abs(p - program), p))
        how = "nearest in its family" if family else "no preset in its family; nearest program"
        lack = f"program {program} ({gm_family(program)}) has no preset"
        text = f"{lack}: playing program {nearest} {base[nearest].name} ({how})"
        return base[nearest], f"{notice}; {text}" if notice else text
