"""What ``play --ui`` and ``play --osc`` share: an optional extra that is one line when missing,
a non-local host that is warned about, a port that is checked, and nothing imported without
them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_layout import modules_loaded

from gansynth_instrument.commands.play import check_osc, check_ui
from gansynth_instrument.errors import GansynthError

SERVERS = [  # flag, its check, the module of its extra, the extra, the port flag, our module
    ("--ui", check_ui, "aiohttp", "ui", "--ui-port", "surfaces.ui_server"),
    ("--osc", check_osc, "pythonosc", "osc", "--osc", "surfaces.osc_server"),
]


@pytest.mark.parametrize(("flag", "module", "extra"), [(s[0], s[2], s[3]) for s in SERVERS])
def test_without_the_extra_is_one_line(flag: str, module: str, extra: str):
    argv = ["play", "--model", "never-opened.onnx", flag] + (["0"] if flag == "--osc" else [])
    script = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from gansynth_instrument import cli\n"
        f"sys.exit(cli.main({argv!r}))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert f"gansynth-instrument[{extra}]" in run.stderr


@pytest.mark.parametrize(("check", "port_flag"), [(s[1], s[4]) for s in SERVERS])
def test_a_non_local_host_is_warned_about_and_a_bad_port_refused(check, port_flag, capsys):
    check("127.0.0.1", 0)
    assert capsys.readouterr().err == ""
    check("0.0.0.0", 9000)
    assert "reachable from other machines" in capsys.readouterr().err
    with pytest.raises(GansynthError, match=rf"^{port_flag} must be 0\.\.65535"):
        check("127.0.0.1", 70000)


def test_the_player_without_them_imports_neither_server():
    loaded = modules_loaded(
        "import gansynth_instrument.commands.play, gansynth_instrument.live.player"
    )
    for _, _, module, _, _, ours in SERVERS:
        assert module not in loaded and f"gansynth_instrument.{ours}" not in loaded
