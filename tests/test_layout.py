"""The package's layout as docs/design.md draws it: imports go one way (no cycle, and between
folders only downwards in ``LAYERS``), and the audio process loads only the mixer side.

The import graph is read from the source with ``ast`` (every import, also those inside functions
and ``if TYPE_CHECKING:`` blocks), so a cycle is found whether or not a test happens to import
the modules in the order that breaks.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"gansynth_instrument": REPO / "gansynth_instrument"}


def module_files() -> dict[str, Path]:
    modules = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (a ``from package import module`` counts as the
    module; the package itself is left out: its ``__init__`` imports lazily)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t not in PACKAGES}
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported(name, path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_reader_finds_a_cycle_and_what_imports_what() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    assert "gansynth_instrument.notes.cache" in graph["gansynth_instrument.live.engine"]
    assert "gansynth_instrument.live.mixer" in graph["gansynth_instrument.live.audio_process"]


def test_imports_go_one_way() -> None:
    assert find_cycle(import_graph()) is None


# The folders, lowest first: a module may import from its own folder and the ones before it.
# "core" is the package's top-level helpers (errors, fileio, midi_spec, ...); "entry" is cli.py
# and __main__.py; export/ (checkpoint → ONNX) builds on the model's contract and is used by the
# trainer and the export command only.
LAYERS = [
    "core",
    "model",
    "export",
    "notes",
    "presets",
    "live",
    "offline",
    "surfaces",
    "training",
    "commands",
    "parsers",
    "entry",
]
ENTRY = {"gansynth_instrument.cli", "gansynth_instrument.__main__"}


def layer(module: str) -> str:
    """The folder of ``LAYERS`` a module belongs to."""
    package, _, rest = module.partition(".")
    if module in ENTRY:
        return "entry"
    folder = rest.partition(".")[0]
    return folder if (PACKAGES[package] / folder).is_dir() else "core"


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Each import from a folder to one above it in ``LAYERS``, as 'importer -> imported'."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    return sorted(
        f"{name} -> {target}"
        for name, targets in graph.items()
        if name not in PACKAGES
        for target in targets
        if rank[layer(name)] < rank[layer(target)]
    )


def test_the_direction_reader_finds_an_import_upwards() -> None:
    engine, cache = "gansynth_instrument.live.engine", "gansynth_instrument.notes.cache"
    assert [layer(m) for m in (engine, cache, "gansynth_instrument.errors")] == [
        "live",
        "notes",
        "core",
    ]
    assert wrong_way({engine: {cache}, cache: set()}) == []
    assert wrong_way({engine: set(), cache: {engine}}) == [f"{cache} -> {engine}"]


def test_every_folder_has_its_place_in_the_layers() -> None:
    folders = {path.name for path in PACKAGES["gansynth_instrument"].iterdir()}
    folders = {
        name
        for name in folders
        if (PACKAGES["gansynth_instrument"] / name / "__init__.py").is_file()
    }
    assert folders <= set(LAYERS), folders - set(LAYERS)


def test_imports_between_folders_go_down_the_layers() -> None:
    assert wrong_way(import_graph()) == []


def test_the_exporter_and_the_instrument_meet_at_one_level() -> None:
    """export/ imports only the core and model/ (the ONNX contract it writes); only the trainer
    and the commands import export/."""
    graph = import_graph()
    for name, targets in graph.items():
        for target in targets:
            if layer(name) == "export" and layer(target) != "export":
                assert layer(target) in {"core", "model"}, f"{name} -> {target}"
            if layer(target) == "export" and layer(name) != "export":
                assert layer(name) in {"training", "commands"}, f"{name} -> {target}"


def test_the_folders_packages_import_nothing() -> None:
    """Importing one module of a folder (the audio child's mixer) loads no other module with it."""
    graph = import_graph()
    for folder in LAYERS:
        init = f"gansynth_instrument.{folder}"
        if init in graph and folder != "commands":  # commands/ holds the commands' shared helpers
            assert graph[init] == set(), init


def modules_loaded(code: str) -> set[str]:
    """The modules a fresh Python has loaded after running ``code``."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    run = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return set(run.stdout.split())


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def test_the_audio_process_loads_neither_the_cache_nor_its_libraries() -> None:
    """What the spawned audio child can import (lazy imports included), and what it does import:
    the console script's module, then audio_process."""
    child = reachable(import_graph(), "gansynth_instrument.live.audio_process")
    assert "gansynth_instrument.live.mixer" in child
    mixer_side = {"audio", "audio_process", "audio_mix", "stream_meters"}
    mixer_side |= {"command_sender", "compiled_mixer", "mixer", "protocol"}
    # what a note is (its samples, its level; levels names Timbre for its types only)
    notes = {"notes.note", "notes.levels", "notes.timbre", "model.latent"}
    allowed = {f"gansynth_instrument.live.{name}" for name in mixer_side}
    allowed |= {f"gansynth_instrument.{name}" for name in notes} | {"gansynth_instrument.live"}
    outside = {name for name in child - allowed if layer(name) != "core"}
    assert outside == set(), outside
    loaded = modules_loaded(
        "import gansynth_instrument.cli, gansynth_instrument.live.audio_process"
    )
    assert "gansynth_instrument.live.mixer" in loaded
    heavy = {
        "gansynth_instrument.notes.cache",
        "gansynth_instrument.live.voices",
        "gansynth_instrument.live.engine",
        "gansynth_instrument.model.runtime",
        "soxr",
        "tqdm",
        "platformdirs",
        "onnxruntime",
        "yaml",
        "mido",
        "rtmidi",
        "aiohttp",
    }
    assert loaded & heavy == set()


def test_the_public_api_is_what_the_package_docstring_promises() -> None:
    import gansynth_instrument

    assert set(gansynth_instrument.__all__) == {"__version__", *gansynth_instrument._EXPORTS}
    for name in gansynth_instrument.__all__:
        assert name in gansynth_instrument.__doc__ or name == "__version__", name
        assert getattr(gansynth_instrument, name) is not None
    assert gansynth_instrument.load_model.__module__ == "gansynth_instrument.model.runtime"


def test_the_command_line_imports_nothing_heavy_before_a_command_runs() -> None:
    """``gansynth-instrument --help`` stays fast: the package and the parser load no NumPy,
    onnxruntime or audio library; each command imports its own module when it runs."""
    loaded = modules_loaded("from gansynth_instrument.cli import build_parser; build_parser()")
    assert loaded & {"numpy", "onnx", "onnxruntime", "sounddevice", "rtmidi", "yaml"} == set()
    assert not any(name.startswith("gansynth_instrument.commands") for name in loaded)


def test_every_command_has_its_module() -> None:
    """``cli.run_command`` runs ``commands/COMMAND.py``: a command added without one fails here,
    not in a user's hands."""
    from gansynth_instrument.cli import build_parser

    (commands,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"play", "render", "bake"} <= set(commands.choices)
    for name in commands.choices:
        module = importlib.import_module(f"gansynth_instrument.commands.{name}")
        assert callable(module.run), name


def test_every_folder_is_installed() -> None:
    """pyproject lists the packages by hand (presets/ installs under another name), so a new
    folder left out of that list would be missing from an installed wheel."""
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    root = PACKAGES["gansynth_instrument"]
    folders = {
        ".".join(["gansynth_instrument", *init.parent.relative_to(root).parts])
        for init in root.rglob("__init__.py")
    }
    assert [name for name in sorted(folders) if f'"{name}"' not in pyproject] == []
