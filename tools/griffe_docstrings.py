"""Griffe extension for the API reference: lrjax's docstrings read as Markdown.

The docstrings are written for ``help()`` and doctest: ``>>>`` examples with their
output, reST literal blocks (a paragraph ending in ``::`` followed by an indented block)
and the roles ``:math:`...``` and ``:func:`...```.  Read as Markdown, an example's output
``[0.1, 0.05]`` is a link, an indented block is a paragraph and a role is literal text.
This extension fences the first two before mkdocstrings renders them (```` ```pycon ````
for examples, ```` ``` ```` for literal blocks) and shows a role's text as code; the
docstrings themselves are unchanged.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:math|func):`([^`]*)`")


def _indent(line: str) -> int:
  return len(line) - len(line.lstrip())


def fence(text: str) -> str:
  """``text`` with its doctest examples and literal blocks in Markdown code fences."""
  lines = text.splitlines()
  out: list[str] = []
  i, in_fence = 0, False
  while i < len(lines):
    line = lines[i]
    stripped = line.strip()
    if stripped.startswith("```"):
      in_fence = not in_fence
      out.append(line)
      i += 1
      continue
    if not in_fence and stripped.startswith(">>>"):
      pad = " " * _indent(line)
      block = []
      while i < len(lines) and lines[i].strip():
        block.append(lines[i])
        i += 1
      out += [f"{pad}```pycon", *block, f"{pad}```"]
      continue
    if not in_fence and stripped.endswith("::") and not stripped.startswith(">>>"):
      base = _indent(line)
      j = i + 1
      while j < len(lines) and not lines[j].strip():
        j += 1
      if j < len(lines) and _indent(lines[j]) > base:
        head = line.rstrip()[:-1]  # "Example::" -> "Example:"
        if head.strip() != ":":
          out.append(head)
        block = []
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
          block.append(lines[j])
          j += 1
        while block and not block[-1].strip():
          block.pop()
        inner = min(_indent(b) for b in block if b.strip())
        pad = " " * base
        out += ["", f"{pad}```", *[pad + b[inner:] if b.strip() else "" for b in block],
                f"{pad}```", ""]
        i = j
        continue
    out.append(line)
    i += 1
  return "\n".join(out)


class MarkdownDocstrings(griffe.Extension):
  """Fences the examples and literal blocks of every docstring (see the module)."""

  def on_object(self, *, obj, loader, **kwargs) -> None:  # noqa: ARG002 (griffe's hook)
    if obj.docstring is not None:
      obj.docstring.value = ROLE.sub(r"`\1`", fence(obj.docstring.value))
