"""The README's map of the tree matches the tree: every path it names exists, and every stage
folder of the package and every plugin is on it."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layout() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Layout"):text.index("\n## ", text.index("## Layout") + 1)]


def _named_paths(layout: str) -> set:
    """The paths in the first column of the map, with `a`, `b` cells split and `a/b.py` kept."""
    found = set()
    for row in re.findall(r"^\| (.+?) \|", layout, re.M):
        cells = re.findall(r"`([^`]+)`", row)
        base = ""
        for cell in cells:
            if "/" in cell:
                base = cell.rsplit("/", 1)[0] + "/" if cell.endswith(".py") else ""
                found.add(cell.rstrip("/"))
            else:  # `_cpu.py` after `neuron_core/_jit.py`: the same folder
                found.add(base + cell)
    return found


def test_every_path_on_the_map_exists():
    missing = sorted(p for p in _named_paths(_layout()) if not (ROOT / p).exists())
    assert not missing, f"README's Layout names paths that are not in the tree: {missing}"


def test_every_stage_folder_and_plugin_is_on_the_map():
    named = _named_paths(_layout())
    folders = [f"neuron_core/{p.name}" for p in (ROOT / "neuron_core").iterdir()
               if (p / "__init__.py").exists()]
    plugins = [p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()]
    layout = _layout()
    assert sorted(f for f in folders if f not in named) == []
    assert sorted(p for p in plugins if f"`{p}`" not in layout) == []


def test_the_runtime_modules_the_map_names_exist():
    layout = _layout()
    row = next(line for line in layout.splitlines() if line.startswith("| `neuron_core/runtime`"))
    for name in re.findall(r"`([a-z_]+(?:\.py|/))`", row):
        assert (ROOT / "neuron_core" / "runtime" / name).exists(), name


def test_every_module_of_the_main_stages_is_named():
    """The compiler, runtime, NEFF and estimate rows name each of their modules, and the map names
    every top-level module of the package."""
    named = _named_paths(_layout())
    layout = _layout()
    missing = [f"neuron_core/{p.name}" for p in (ROOT / "neuron_core").glob("*.py")
               if p.name != "__init__.py" and f"neuron_core/{p.name}" not in named]
    for stage in ("compiler", "runtime", "neff", "estimate"):
        row = next(line for line in layout.splitlines()
                   if line.startswith(f"| `neuron_core/{stage}`"))
        missing += [f"neuron_core/{stage}/{p.name}" for p in (ROOT / "neuron_core" / stage).iterdir()
                    if p.name not in ("__init__.py", "__pycache__") and (p.suffix == ".py" or p.is_dir())
                    and f"`{p.name}{'/' if p.is_dir() else ''}`" not in row]
    assert not missing, f"README's Layout does not name: {missing}"
