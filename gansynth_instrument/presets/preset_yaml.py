"""Safe YAML for preset and bank files: read untrusted files as plain data, write readable ones.

Files are shared between people, so they are read with a safe loader only (plain data, never
objects), without anchors or aliases, and with bounded size and depth: a bad file is a one-line
``PresetError`` naming it, never a hang or an object built from its text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gansynth_instrument.errors import PresetError

# Shared files are untrusted: a real preset is a few kB (a 256-value latent) and at most 3 levels
# deep (bank → morph → path); a bigger or deeper file is refused before it is parsed or walked.
MAX_FILE_BYTES = 1024 * 1024
MAX_NESTING = 8


class _Dumper(yaml.SafeDumper):
    """Block-style mappings, but lists (a 256-value latent, a morph path) on flowing lines."""


_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, True)
)
# PyYAML writes U+0085/U+2028/U+2029 raw under allow_unicode, and reads them back as line
# breaks: strings holding one are written double-quoted, where they are escaped.
_Dumper.add_representer(
    str,
    lambda dumper, data: dumper.represent_scalar(
        "tag:yaml.org,2002:str",
        data,
        style='"' if any(c in data for c in "\x85\u2028\u2029") else None,
    ),
)


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=100,
        allow_unicode=True,
    )


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data only) without anchors/aliases and with a depth limit.

    Aliases let a few hundred bytes stand for a structure with billions of items (a "billion
    laughs" file), which any walk of the value, even an error message's repr, then expands; deep
    nesting overflows the recursive composer. No preset needs either.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (*name) are not allowed", event.start_mark
            )
        if self._depth >= MAX_NESTING:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_NESTING} levels deep", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


def read_yaml(path: Path) -> object:
    """The plain data in a preset or bank file; any problem is one PresetError naming it."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # bounded: a huge file or /dev/zero is not read
        if len(data) > MAX_FILE_BYTES:
            raise PresetError(
                f"{path}: larger than {MAX_FILE_BYTES} bytes; preset and bank files are a few kB"
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise PresetError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PresetError(f"{path}: cannot read ({err})") from None
    try:
        return parse_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise PresetError(f"{path}: not valid YAML{line} ({problem})") from None


def parse_yaml(text: str) -> object:
    """Plain data from YAML text under ``read_yaml``'s limits (no aliases, bounded depth)."""
    return yaml.load(text, Loader=_SafeLoader)
