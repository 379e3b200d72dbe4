"""``gansynth-instrument devices``: audio outputs and MIDI inputs, with the names to pass."""

from __future__ import annotations

import argparse

from gansynth_instrument.errors import DeviceError
from gansynth_instrument.live.audio import NO_OUTPUT_HINT, list_outputs
from gansynth_instrument.live.midi import list_inputs


def run(args: argparse.Namespace) -> int:
    """Print audio outputs and MIDI inputs with the names ``play`` accepts. A part that cannot be
    listed prints its one-line reason instead, so the other part still shows."""
    print("Audio outputs (pass the number or the name to --device; * = default):")
    try:
        outputs = list_outputs()
        for o in outputs:
            mark = "*" if o.is_default else " "
            detail = f"{o.host_api}, {o.channels} ch, {o.default_sample_rate:.0f} Hz"
            print(f"  {mark} {o.index:>2}  {o.name}  [{detail}]")
        if not outputs:
            print(f"    none: {NO_OUTPUT_HINT}")
    except DeviceError as err:
        print(f"    unavailable: {err}")

    try:
        api, ports = list_inputs()
    except DeviceError as err:
        print("MIDI inputs:")
        print(f"    unavailable: {err}")
        return 0
    print(f"MIDI inputs via {api} (pass the name to --midi-in):")
    for name in ports:
        print(f"    {name}")
    if not ports:
        print("    none: connect a keyboard, or play through a virtual port (--virtual-midi NAME)")
    return 0
