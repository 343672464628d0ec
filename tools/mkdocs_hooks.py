"""MkDocs hook: the guides of the documentation site are sections of the README (and of
BUILD.md), included where a page says ``<!-- include: README.md#Quick start -->``
(``<!-- include: README.md#lrjax (intro) -->``: the section's text before its first
subheading, without its heading; ``(body)``: the whole section without its heading, for
a page titled as the section).

The README stays the one copy of each guide (its examples are run by the tests); a page
picks sections by their heading.  An included section ends at the next heading of its
level or above; its headings are shifted so that it starts at ``##`` under the page's
title.  Links are made right for the site: ``docs/x`` (the README's path to a page or
an image of the site) becomes ``x``; ``#anchor`` points at the page that includes that
section; a link to another file of the repository, which the site does not hold, becomes
its path in code.  A section that is not found stops the build (a renamed heading must
not leave a page empty).
"""

from __future__ import annotations

import re
from pathlib import Path

from markdown.extensions.toc import slugify
from mkdocs.exceptions import PluginError

INCLUDE = re.compile(r"^<!-- include: (?P<file>[^#]+)#(?P<heading>.+?)"
                     r"(?: \((?P<part>intro|body)\))? -->$", re.M)
HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$")
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")

_anchor_pages: dict[str, str] = {}  # slug of an included heading -> the page holding it


def _sections(text: str):
  """(level, title, start line, end line) of every heading outside code fences."""
  lines = text.splitlines()
  found, fence = [], None
  for i, line in enumerate(lines):
    stripped = line.lstrip()
    if stripped.startswith(("```", "~~~")):
      marker = stripped[:3]
      fence = None if fence == marker else (fence or marker)
      continue
    match = None if fence else HEADING.match(line)
    if match:
      found.append([len(match.group(1)), match.group(2), i, len(lines)])
  for k, (level, _, _, _) in enumerate(found):
    later = [s for s in found[k + 1:] if s[0] <= level]
    if later:
      found[k][3] = later[0][2]
  return lines, found


def _section(root: Path, file: str, heading: str, part: str | None = None) -> list[str]:
  lines, found = _sections((root / file).read_text())
  for level, title, start, end in found:
    if title == heading:
      if part == "intro":  # up to the first subheading, without the heading itself
        end = min([s for (_, _, s, _) in found if start < s < end], default=end)
      if part is not None:
        start += 1
        level += 1  # its subheadings start at ## under the page's title
      shift = 2 - level
      out: list[str] = []
      fence = None
      for line in lines[start:end]:
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
          marker = stripped[:3]
          fence = None if fence == marker else (fence or marker)
        match = None if fence else HEADING.match(line)
        out.append(f"{'#' * max(1, len(match.group(1)) + shift)} {match.group(2)}"
                   if match else line)
      return out
  raise PluginError(f"{file} has no heading {heading!r} (included by the docs)")


def _links(text: str, page_src: str) -> str:
  def fix(match):
    bang, label, target = match.groups()
    if re.match(r"^[a-z]+:", target) or target.startswith("/"):
      return match.group(0)  # a URL
    if target.startswith("#"):
      page = _anchor_pages.get(target[1:])
      return f"{bang}[{label}]({page}{target})" if page and page != page_src else match.group(0)
    if target.startswith("docs/"):
      return f"{bang}[{label}]({target[len('docs/'):]})"
    return f"{label} (`{target}`)"  # a file of the repository, not of the site
  return LINK.sub(fix, text)


def on_files(files, config):
  """Which page includes which heading (for ``#anchor`` links across pages)."""
  _anchor_pages.clear()
  root = Path(config["config_file_path"]).parent
  for file in files.documentation_pages():
    text = Path(file.abs_src_path).read_text()
    for include in INCLUDE.finditer(text):
      _, found = _sections((root / include["file"]).read_text())
      for _, title, start, end in found:
        if title == include["heading"] and include["part"] != "intro":
          inside = [t for (lv, t, s, _) in found if start <= s < end]
          for t in inside:
            _anchor_pages.setdefault(slugify(t, "-"), file.src_uri)
  return files


def on_page_markdown(markdown, page, config, files):
  root = Path(config["config_file_path"]).parent
  if not INCLUDE.search(markdown):
    return markdown

  def include(match):
    lines = _section(root, match["file"], match["heading"], match["part"])
    return _links("\n".join(lines), page.file.src_uri)
  return INCLUDE.sub(include, markdown)
