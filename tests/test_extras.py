"""`pip install lrjax` (no extras) gives the library; the engine names its extra."""

import subprocess
import sys
import textwrap

# Makes the train extra's packages unimportable, as in an install without the extra.
_BLOCK_TRAIN = textwrap.dedent("""
    import sys
    class _Block:
      BLOCKED = ("flax", "orbax", "tensorflow_datasets", "array_record", "matplotlib",
                 "tqdm", "PIL")
      def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
          raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None
    sys.meta_path.insert(0, _Block())
""")


def _run(code: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", _BLOCK_TRAIN + textwrap.dedent(code)],
                        capture_output=True, text=True, timeout=120)


def test_library_works_without_the_train_extra():
  proc = _run("""
      import optax, jax.numpy as jnp, lrjax
      rate = lrjax.schedules.seq1(0.1)(jnp.asarray(3))
      tx = optax.chain(optax.identity(), lrjax.strategies.by_epoch(lrjax.schedules.seq1(0.1)))
      state = tx.init(jnp.zeros(2))
      updates, state = tx.update(jnp.ones(2), state, valid_loss=jnp.asarray(1.0))
      assert float(updates[0]) < 0.0
      heavy = [m for m in ("flax", "orbax", "tensorflow_datasets", "matplotlib", "tqdm")
               if m in sys.modules]
      assert not heavy, heavy
      print("rate", float(rate))
  """)
  assert proc.returncode == 0, proc.stderr
  assert "rate" in proc.stdout


def test_engine_without_the_extra_names_it():
  for module in ("lrjax.train", "lrjax.models", "lrjax.data"):
    proc = _run(f"import {module}")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "ImportError" in last and "lrjax[train]" in last and "flax" in last, last


def test_cli_without_the_extra_is_one_line():
  proc = _run("""
      from lrjax import cli
      sys.exit(cli.main(["sweep"]))
  """)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "pip install 'lrjax[train]'" in lines[0], proc.stderr


def test_dir_lists_the_lazy_subpackages_without_importing_them():
  proc = _run("""
      import lrjax
      names = dir(lrjax)
      assert {"models", "data", "train", "sweep", "schedules", "errors"} <= set(names), names
      assert names == sorted(names) and "__version__" in names  # the module's own names too
      loaded = [m for m in ("lrjax.models", "lrjax.data", "lrjax.train") if m in sys.modules]
      assert not loaded, loaded
      print("ok")
  """)
  assert proc.returncode == 0, proc.stderr
  assert "ok" in proc.stdout


def test_help_works_without_the_extra():
  """The dataset names live in `lrjax.data` (which needs the extra): --help still works,
  without their list."""
  proc = _run("""
      from lrjax import cli
      try:
        cli.main(["sweep", "--help"])
      except SystemExit as stop:
        assert stop.code == 0, stop.code
      assert "lrjax.data" not in sys.modules
  """)
  assert proc.returncode == 0, proc.stderr
  assert "--dataset" in proc.stdout and "model name (None: per dataset)" in " ".join(
      proc.stdout.split())
