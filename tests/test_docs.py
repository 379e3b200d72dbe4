"""The documentation: the MkDocs site builds in strict mode (no broken link, anchor or nav entry),
its generated CLI page covers every (sub)command of the real parser, and the README stays short,
its links land on files that exist, and its test command is the one CI runs."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gansynth_instrument.cli import build_parser
from gansynth_instrument.surfaces.osc_addresses import OSC_ADDRESSES

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[str]:
    """``gansynth-instrument cache warm`` and the like, for every parser under ``parser``: found
    here independently of the docs hook, so a hook that skipped a level would fail."""
    found = [" ".join(("gansynth-instrument", *path))]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += command_paths(child, (*path, name))
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def page_text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_the_cli_reference_lists_every_subcommand_of_the_real_parser(site: Path) -> None:
    text = page_text((site / "reference" / "cli" / "index.html").read_text(encoding="utf-8"))
    commands = command_paths(build_parser())
    assert "gansynth-instrument cache warm" in commands  # the walk reaches nested actions
    assert len(commands) > 20
    for command in commands:
        assert f"usage: {command} " in text, command
    # each option's help is there too, as argparse prints it
    assert "--velocity-curve" in text and "--learn-knob" in text


def test_the_api_reference_documents_every_public_name(site: Path) -> None:
    import gansynth_instrument

    html = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in gansynth_instrument.__all__:
        if name != "__version__":
            assert f'id="gansynth_instrument.{name}"' in html, name
    assert "Load an exported model on a backend" in page_text(html)  # docstrings, not only names


def test_the_osc_guide_and_play_help_show_every_address_of_the_table(site: Path) -> None:
    html = (site / "guide" / "surfaces" / "index.html").read_text(encoding="utf-8")
    rows = re.findall(
        r"<tr>\s*<td><code>(/\w+)</code></td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", html
    )
    assert rows == [(a.address, a.arguments, a.does) for a in OSC_ADDRESSES]
    assert "osc-addresses" not in html  # the marker was replaced, not left as a comment
    text = page_text((site / "reference" / "cli" / "index.html").read_text(encoding="utf-8"))
    for address in OSC_ADDRESSES:
        assert f" {address.address} " in " ".join(text.split()), address.address


def test_the_site_has_the_user_guide_model_card_and_design(site: Path) -> None:
    for page in ("design", "model-card", "guide/play", "guide/training"):
        assert (site / page / "index.html").is_file(), page


def test_the_readme_is_short_and_its_links_exist() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    links = [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link)]
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        target = link.split("#")[0]
        assert (REPO / target).exists(), f"README links to {link}, which does not exist"


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    readme = README.read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").replace(" -q", "")
    for command in ('.venv/bin/python -m pip install -e ".[test]"', ".venv/bin/python -m pytest"):
        assert command in ci, command
        assert command in readme, command
