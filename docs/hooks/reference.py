"""MkDocs hook: the CLI and API reference pages, and the OSC address table, written at build time
from the code itself.

The CLI page is each (sub)command's ``--help`` as ``cli.build_parser`` prints it, the API page
documents every name of ``gansynth_instrument.__all__`` through mkdocstrings, and the Browser and
OSC guide's table is ``osc_addresses.OSC_ADDRESSES``: a new subcommand, option, public name or OSC
address shows up in the docs without anyone editing them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from unittest import mock

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

CLI_PAGE = "reference/cli.md"
API_PAGE = "reference/api.md"
OSC_PAGE = "guide/surfaces.md"
OSC_MARKER = "<!-- osc-addresses"  # the line of OSC_PAGE that the table replaces
HELP_WIDTH = "100"  # argparse wraps help to $COLUMNS: a fixed width gives the same page everywhere


def subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser``, depth first, with the words that reach it (``("cache",
    "warm")``); the root itself comes first with ``()``."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from subcommands(child, (*path, name))


def cli_markdown() -> str:
    from gansynth_instrument.cli import build_parser

    lines = [
        "# Command line reference",
        "",
        "Generated from the argument parser (`gansynth_instrument.cli.build_parser`) when these",
        "docs are built; `gansynth-instrument COMMAND --help` prints the same text.",
        "",
    ]
    with mock.patch.dict(os.environ, {"COLUMNS": HELP_WIDTH, "NO_COLOR": "1"}):
        for path, parser in subcommands(build_parser()):
            title = " ".join(("gansynth-instrument", *path))
            lines += [f"{'#' * min(len(path) + 1, 4)} `{title}`", "", "```text"]
            lines += [parser.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def api_markdown() -> str:
    import gansynth_instrument

    names = sorted(n for n in gansynth_instrument.__all__ if not n.startswith("_"))
    lines = [
        "# Python API",
        "",
        "The public façade, `gansynth_instrument`: each name below is imported from the package",
        "itself (`from gansynth_instrument import load_model`) and loads its module on first use.",
        "Generated from the docstrings when these docs are built.",
        "",
    ]
    for name in names:
        lines += [f"::: gansynth_instrument.{name}", ""]
    return "\n".join(lines)


def osc_markdown() -> str:
    from gansynth_instrument.surfaces.osc_addresses import OSC_ADDRESSES

    lines = ["| address | arguments | does |", "|---|---|---|"]
    lines += [f"| `{a.address}` | {a.arguments} | {a.does} |" for a in OSC_ADDRESSES]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, **_: object) -> str:
    if page.file.src_uri != OSC_PAGE:
        return markdown
    lines = markdown.split("\n")
    marked = [i for i, line in enumerate(lines) if line.startswith(OSC_MARKER)]
    if len(marked) != 1:
        raise PluginError(f"{OSC_PAGE}: needs one line starting {OSC_MARKER!r} for the OSC table")
    lines[marked[0]] = osc_markdown()
    return "\n".join(lines)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for uri, text in ((CLI_PAGE, cli_markdown()), (API_PAGE, api_markdown())):
        files.append(File.generated(config, uri, content=text))
    return files
