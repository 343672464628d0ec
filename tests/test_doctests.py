"""The docstrings' examples of every lrjax module run as doctests.

Every module under `lrjax` is imported and its docstring examples (``>>>``) are run
with `doctest` (ELLIPSIS and NORMALIZE_WHITESPACE), so a CI run of the suite also
checks the documentation.  A module that cannot be imported because an optional
dependency is missing is left out; the public modules of the core packages
(schedules, strategies, adaptive) must have examples.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lrjax

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# ``python -m lrjax`` runs the CLI on import: not a library module.
NOT_LIBRARY = ("lrjax.__main__",)
MUST_HAVE_EXAMPLES = ("lrjax.schedules.", "lrjax.strategies.", "lrjax.adaptive.")


def _doctests(module):
  finder = doctest.DocTestFinder(exclude_empty=True)
  return [t for t in finder.find(module, module.__name__) if t.examples]


def _must_have_examples(module) -> bool:
  """Public, non-package modules of the core packages document themselves by example."""
  name = module.__name__
  private = name.rsplit(".", 1)[-1].startswith("_")
  return name.startswith(MUST_HAVE_EXAMPLES) and not private and not hasattr(
      module, "__path__")


def _collect():
  """Modules to run (with examples, or required to have them); those not importable."""
  to_run, not_importable = [], []
  for info in pkgutil.walk_packages(lrjax.__path__, "lrjax."):
    if info.name in NOT_LIBRARY:
      continue
    try:
      module = importlib.import_module(info.name)
    except ImportError as err:  # an optional dependency of that module is missing
      not_importable.append(f"{info.name}: {err}")
      continue
    if _doctests(module) or _must_have_examples(module):
      to_run.append(info.name)
  return sorted(to_run), not_importable


MODULES, NOT_IMPORTABLE = _collect()


def _run(tests, out=None):
  runner = doctest.DocTestRunner(optionflags=OPTIONS)
  for test in tests:
    runner.run(test, out=out)
  return runner.summarize(verbose=False)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
  tests = _doctests(importlib.import_module(name))
  assert tests, f"{name} has no docstring example"
  result = _run(tests)
  assert result.attempted > 0
  assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_core_packages_are_covered():
  for package in ("lrjax.schedules", "lrjax.strategies", "lrjax.adaptive"):
    assert any(n.startswith(package + ".") or n == package for n in MODULES), package
    assert not any(entry.startswith(package) for entry in NOT_IMPORTABLE), NOT_IMPORTABLE


def test_a_wrong_example_is_reported():
  """The runner used above does fail on a wrong example (the test is not vacuous)."""

  def documented():
    """
    >>> 1 + 1
    3
    """

  tests = doctest.DocTestFinder().find(documented, "documented", globs={})
  assert _run(tests, out=lambda _: None).failed == 1
