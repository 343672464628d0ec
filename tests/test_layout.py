"""The layout of `lrjax.train` says what each part may import (BUILD.md, "Layout").

Read from the source (``ast``), nothing imported: a file of the compiled engine that
imported the host loop, a controller that imported the engine, or a front end that
called back into `lrjax.train.api` fails here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

TRAIN = Path(__file__).resolve().parents[1] / "lrjax" / "train"

# Part -> the parts of lrjax.train its files may import (besides their own).
ALLOWED = {
    "engine": set(),
    "search": set(),
    "reports": {"engine", "frontends.config"},
    "runner": {"engine", "search", "reports"},
    "frontends": {"engine", "search"},
}
TOP = ("api", "range_finder")  # lrjax.train's own modules: only __init__ and tests use them


def _imports(path: Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module)
      names |= {f"{node.module}.{a.name}" for a in node.names}
  return names


def _target(name: str) -> str | None:
  """The part of lrjax.train that ``name`` lies in (``engine``, ``frontends.config``,
  ``api`` ...), or None outside it."""
  parts = name.split(".")
  if parts[:2] != ["lrjax", "train"] or len(parts) < 3:
    return None
  return parts[2]


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_what_its_layer_allows(part):
  files = sorted((TRAIN / part).glob("*.py"))
  assert files, part
  bad = []
  for path in files:
    for name in _imports(path):
      target = _target(name)
      if target is None or target == part:
        continue
      allowed = ALLOWED[part]
      full = ".".join(name.split(".")[2:4])
      if target not in allowed and full not in allowed:
        bad.append(f"{path.relative_to(TRAIN)} imports {name}")
  assert not bad, bad


def test_nothing_inside_calls_back_into_the_entry_point():
  for part in ALLOWED:
    for path in (TRAIN / part).glob("*.py"):
      assert not {n for n in _imports(path) if _target(n) in TOP}, path
  for name in ("engine", "runner", "search", "reports"):
    for path in (TRAIN / name).glob("*.py"):
      assert "lrjax.cli" not in _imports(path), path


LRJAX = TRAIN.parent
# The command line's own modules: the library under them never imports them.
COMMAND_LINE = {"cli.py", "__main__.py"}


def test_nothing_in_the_library_imports_the_command_line():
  """The data facts the CLI shows (dataset names, default models, tasks) live in
  `lrjax.data`; `lrjax.cli` is imported by nothing below it (no import runs upward)."""
  bad = [str(path.relative_to(LRJAX)) for path in sorted(LRJAX.rglob("*.py"))
         if path.name not in COMMAND_LINE and any(
             n == "lrjax.cli" or n.startswith("lrjax.cli.") for n in _imports(path))]
  assert not bad, bad


# The parts of lrjax.train that read the data catalogue (`lrjax.data`): the front ends
# (the sweep file's dataset names and default models); the engine, the host loop, the
# search and the reports take a `Dataset` as given.
DATA_READERS = {"frontends"}


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_only_the_front_ends_read_the_data_catalogue(part):
  reads = [path.name for path in sorted((TRAIN / part).glob("*.py"))
           if any(n == "lrjax.data" or n.startswith("lrjax.data.") for n in _imports(path))]
  if part in DATA_READERS:
    assert "sweep_file.py" in reads  # the dataset names and default models of a file
  else:
    assert not reads, reads


def test_the_sweep_file_loads_without_the_command_line():
  code = ("import lrjax.train.frontends.sweep_file, sys; "
          "assert 'lrjax.cli' not in sys.modules, 'lrjax.cli was imported'")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr
