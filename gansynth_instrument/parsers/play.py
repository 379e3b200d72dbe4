"""``play``'s arguments: the live instrument, its MIDI and audio, and the browser and OSC
surfaces.
"""

from __future__ import annotations

import argparse

from gansynth_instrument.parsers import options
from gansynth_instrument.surfaces.osc_addresses import OSC_ADDRESSES


def add_play(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="play the instrument live: MIDI in, low-latency audio out",
        description=(
            "Play notes from a MIDI keyboard (or any MIDI program) through the audio output. "
            "Program changes switch presets of the bank, the morph CC (mod wheel by default) "
            "morphs along its path, CC64 is the sustain pedal. Notes not cached yet play at once "
            "from the nearest cached pitch while the exact one renders. "
            "Timbre knobs: CC70-77 move the timbre along the model's 8 principal directions "
            "(GANSpace; found once per model in seconds, then cached; 64 = unchanged). "
            "XY pad: a bank's pad corners, moved by CC16 (x) and CC17 (y) unless the bank says "
            "otherwise. Buttons: CC80 draws a random timbre for the next notes, CC81 saves what "
            "plays (knobs included) as a new preset named found-DATE-TIME."
        ),
    )
    options.add_model_options(p)
    options.add_preset_or_bank(p.add_mutually_exclusive_group())
    p.add_argument("--midi-in", action="append", metavar="PORT", help="MIDI input (repeatable)")
    p.add_argument(
        "--virtual-midi", metavar="NAME", help="virtual MIDI port name (default midi_in)"
    )
    p.add_argument("--device", help="audio output: number or name (see 'devices')")
    options.add_sample_rate(p, hint="; match your audio device")
    p.add_argument(
        "--blocksize",
        type=int,
        default=128,
        help="frames per audio block, 16..2048; on JACK, the server's period (128)",
    )
    options.add_channels(p, "--channel")
    options.add_drums(p)
    p.add_argument("--polyphony", type=int, default=32, help="voices (32)")
    p.add_argument("--bend-range", type=float, default=2.0, help="pitch-bend semitones (2)")
    options.add_staging(p)
    options.add_mpe(p)
    p.add_argument(
        "--learn",
        action="store_true",
        help=(
            "bind the morph to the next CC moved and save it in the bank as 'morph: cc:' (a "
            "shipped bank is saved as your own copy in the user presets dir, which is used from "
            "then on); needs a bank with a morph path, so not with --preset"
        ),
    )
    p.add_argument(
        "--learn-knob",
        type=int,
        metavar="K",
        help="bind timbre knob K (1-8) to the next CC moved and save it in the bank as "
        "'knobs: cc:' (as --learn does)",
    )
    p.add_argument(
        "--no-knobs",
        action="store_true",
        help="no timbre knobs (skips finding them for a model played the first time)",
    )
    p.add_argument(
        "--keys",
        action="store_true",
        help="play from the computer keyboard too (r: random timbre, n: save it as a preset)",
    )
    ui = p.add_argument_group("browser control surface (extra: [ui])")
    ui.add_argument(
        "--ui",
        action="store_true",
        help="serve a control page (pad, knobs, presets, latent, piano, meters) and open it; "
        "the URL, with its access token, is printed",
    )
    ui.add_argument(
        "--ui-host",
        default="127.0.0.1",
        help="address to serve on (127.0.0.1: this machine only; anything else is reachable "
        "from other machines, with a warning)",
    )
    ui.add_argument("--ui-port", type=int, default=0, help="port (default 0: a free one)")
    ui.add_argument("--no-browser", action="store_true", help="print the URL, open no browser")
    osc = p.add_argument_group("OSC controls for Pd, Max and TouchOSC (extra: [osc])")
    osc.add_argument(
        "--osc",
        type=int,
        metavar="PORT",
        help="listen for OSC messages on this UDP port (0: a free one, printed); addresses: "
        f"{' '.join(a.address for a in OSC_ADDRESSES)} (the Browser and OSC guide)",
    )
    osc.add_argument(
        "--osc-host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1: this machine only; OSC has no token, so "
        "anything else lets other machines play, with a warning)",
    )
    options.add_cache_dir(p, holds=", with the model's knob directions in knobs/")
    p.add_argument(
        "--renderer",
        choices=("thread", "process"),
        help="where notes render: a worker process (default: fewer xruns) or a thread",
    )
    options.add_max_memory(p)
