#!/usr/bin/env bash
# Builds lrjax's wheel and sdist (python -m build), installs the wheel into a fresh virtual
# environment (the base install: jax, optax, chex and numpy at the versions of
# constraints.txt) and checks what a user of the wheel gets: lrjax imports from it, its
# version is the source's, `lrjax --version` runs, py.typed and the LICENSE are inside,
# and the sdist holds the LICENSE too.  Exits non-zero on the first failure.
#
#   tools/check_wheel.sh                 # PYTHON=.venv/bin/python by default (needs `build`)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
work=$(mktemp -d "${TMPDIR:-/tmp}/lrjax-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! "$PY" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1; then
  cat "$work/build.log"; echo "check_wheel: python -m build failed" >&2; exit 1
fi
wheel=$(ls "$work"/dist/lrjax-*.whl)
sdist=$(ls "$work"/dist/lrjax-*.tar.gz)
want=$("$PY" -c 'import ast, pathlib
tree = ast.parse(pathlib.Path("lrjax/__init__.py").read_text())
print(next(n.value.value for n in tree.body if isinstance(n, ast.Assign)
           and n.targets[0].id == "__version__"))')

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check -c constraints.txt "$wheel"
cd "$work"  # away from the source tree: the import must find the installed wheel
"$work/venv/bin/python" - "$want" <<'PYEOF'
import importlib.metadata as metadata
import pathlib
import sys

import lrjax

want = sys.argv[1]
assert lrjax.__version__ == want == metadata.version("lrjax"), (
    lrjax.__version__, want, metadata.version("lrjax"))
package = pathlib.Path(lrjax.__file__).parent
assert "site-packages" in package.parts, f"lrjax imported from {package}, not the wheel"
assert (package / "py.typed").is_file(), "py.typed is not in the wheel"
files = [str(f) for f in metadata.files("lrjax")]
assert any(f.endswith("licenses/LICENSE") for f in files), "LICENSE is not in the wheel"
print(f"wheel: lrjax {lrjax.__version__} imports from {package}, with py.typed and LICENSE")
PYEOF
printed=$("$work/venv/bin/lrjax" --version)
if [ "$printed" != "lrjax $want" ]; then
  echo "check_wheel: lrjax --version printed '$printed', not 'lrjax $want'" >&2; exit 1
fi
echo "wheel: lrjax --version: $printed"
tar tzf "$sdist" >"$work/sdist.txt"  # listed first: grep -q would end tar with SIGPIPE
grep -q "^lrjax-$want/LICENSE$" "$work/sdist.txt" || {
  echo "check_wheel: the sdist has no LICENSE" >&2; exit 1; }
echo "sdist: $(basename "$sdist") with LICENSE"
