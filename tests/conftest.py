"""Shared test fixtures: small generated data, never the shared datasets.

Also the suite's compile settings (tests are mostly XLA compile time on a CPU, each on
small models and data):

* XLA's CPU backend at optimization level 0 (``--xla_backend_optimization_level=0``,
  unless XLA_FLAGS already sets a level): LLVM's optimizations are most of a CPU
  compile, and these programs run for milliseconds.  A third to a half less CPU time
  on the compile-bound files; the few run-bound ones (tests/test_benchmark.py) run
  slower.  ``XLA_FLAGS=--xla_backend_optimization_level=2 pytest`` tests XLA's default.
* XLA's persistent compilation cache in a fresh per-session folder: many tests build
  the same programs again (a new closure per `lrjax.sweep` call, so `jax.jit`'s
  in-memory cache misses); the persistent cache keys on the compiled program itself,
  so the second build is a load.  Exported through the environment, so the command
  lines the tests start in subprocesses load what this process compiled.  Nothing is
  kept between runs, and no test sees another run's cache.  Under pytest-xdist (`-n 2`,
  the README's command) each worker process has its own folder.
"""

import os
import subprocess
import tempfile

_OPT_LEVEL = "--xla_backend_optimization_level"
if _OPT_LEVEL not in os.environ.get("XLA_FLAGS", ""):
  # Read when the CPU backend starts (the first computation, after this file is loaded).
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_OPT_LEVEL}=0".strip()
os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="lrjax_tests_xla_")
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture(scope="session")
def blobs():
  """A small learnable 10-class image dataset (Gaussian class templates + noise)."""
  from lrjax import data
  return data.synthetic("tiny", num_train=640, num_test=200, seed=0)


@pytest.fixture
def small_disk(tmp_path):
  """``small_disk(size)``: a new folder on a tmpfs of ``size`` (``"100k"``, ``"1m"``),
  unmounted after the test; the test is skipped where it cannot be mounted (not root,
  no mount namespace rights).  CI runs as root."""
  mounted = []

  def mount(size: str, name: str = "disk"):
    folder = tmp_path / name
    folder.mkdir()
    if os.geteuid() != 0:
      pytest.skip("mounting a small tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
      pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    mounted.append(folder)
    return folder

  yield mount
  for folder in reversed(mounted):
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)
