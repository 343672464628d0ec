"""The documentation site's two helpers (the ``dev`` extra: skipped without MkDocs):
tools/mkdocs_hooks.py includes README sections in the guides, tools/griffe_docstrings.py
fences the docstrings' examples for the API reference."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name):
  spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def hooks():
  pytest.importorskip("mkdocs")
  return _load("mkdocs_hooks")


@pytest.fixture(scope="module")
def docstrings():
  pytest.importorskip("griffe")
  return _load("griffe_docstrings")


README = """# Title

Intro text.

## First

See [the porting table](docs/porting.md), ![a plot](docs/plot.png), [BUILD](BUILD.md)
and [below](#second-part).

```bash
# a comment, not a heading
```

### Inside

More.

## Second part

Last.
"""


def test_a_section_ends_at_the_next_heading_of_its_level(hooks, tmp_path):
  (tmp_path / "README.md").write_text(README)
  first = hooks._section(tmp_path, "README.md", "First")
  assert first[0] == "## First" and "### Inside" in first and "More." in first
  assert "# a comment, not a heading" in first  # a code comment is not a heading
  assert not any("Second part" in line for line in first)
  inside = hooks._section(tmp_path, "README.md", "Inside")
  assert inside[0] == "## Inside"  # shifted to start at ## under the page's title
  assert hooks._section(tmp_path, "README.md", "Title", "intro") == ["", "Intro text.", ""]
  body = hooks._section(tmp_path, "README.md", "First", "body")
  assert body[0] != "## First" and "## Inside" in body
  with pytest.raises(Exception, match="no heading 'Missing'"):
    hooks._section(tmp_path, "README.md", "Missing")


def test_links_are_rewritten_for_the_site(hooks):
  hooks._anchor_pages.clear()
  hooks._anchor_pages["second-part"] = "other.md"
  text = hooks._links(README, "page.md")
  assert "[the porting table](porting.md)" in text
  assert "![a plot](plot.png)" in text
  assert "BUILD (`BUILD.md`)" in text  # a repository file, not a page of the site
  assert "[below](other.md#second-part)" in text
  assert hooks._links("[x](https://example.org/a)", "page.md") == "[x](https://example.org/a)"


def test_examples_and_literal_blocks_are_fenced(docstrings):
  text = ("Sum of two.\n\n>>> add(1, 2)\n3\n\nThe format::\n\n  a = 1\n  b = 2\n\n"
          "After, with :math:`x^2`.")
  fenced = docstrings.fence(text).splitlines()
  assert fenced[2:6] == ["```pycon", ">>> add(1, 2)", "3", "```"]
  assert "The format:" in fenced and "The format::" not in fenced
  start = fenced.index("a = 1") - 1
  assert fenced[start] == "```" and fenced[start + 3] == "```"  # dedented, fenced
  assert docstrings.ROLE.sub(r"`\1`", ":math:`x^2`") == "`x^2`"
  untouched = "```python\n>>> inside a fence\n```"
  assert docstrings.fence(untouched) == untouched
