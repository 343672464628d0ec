"""Command line: ``lrjax sweep ...`` / ``lrjax plot ...`` (also ``python -m lrjax``).

With no arguments, ``lrjax sweep`` trains the report's 14 settings (``--preset report``)
on a small built-in synthetic dataset for a few epochs (about a minute on a laptop CPU)
and writes the results table, CSV/JSON and plots to ``results/sweep``.

``lrjax sweep --config sweep.toml`` trains what a sweep file says (any model, optax
optimizer, schedule or strategy, grid: `lrjax.train.frontends.sweep_file` describes the format)
through `lrjax.sweep`; flags given on the command line override the file's values.

Runs lose nothing: checkpoints go to ``<out>/checkpoints`` by default, and running the
same command again resumes (or, with a larger --epochs, extends) the run; checkpoints of
another sweep or another dataset are refused.  Ctrl-C (or SIGTERM) lets the epoch in
progress finish, checkpoints it and prints the command that resumes; before the first
epoch (imports, data, compile) either ends the run at once, with the same command
printed (exit 130 / 143).  Two runs on the same folder are refused.  A folder that cannot
take the results (full, read-only) is one line; the checkpoint is kept and the printed
command writes them once there is room.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from lrjax.errors import ArgumentError, UsageError

PRESETS = ("report",)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
  """``--help`` with every option's default (and its choices, from argparse) and the
  description's line breaks kept."""


class _Parser(argparse.ArgumentParser):
  """An argparse parser whose errors are one line (no usage block): the flag, what is
  wrong and where to look; exit status 2 as argparse's."""

  sweep_parser: argparse.ArgumentParser | None = None  # the top parser's `sweep` command

  def error(self, message):
    self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _model_choices() -> list[str] | None:
  """The built-in models' names, for --help and the check of --model (None without the
  training extras: the missing extra is then the error reported)."""
  try:
    from lrjax.models.registry import MODELS
  except ImportError:
    return None
  return sorted(MODELS)


def _dataset_names() -> tuple[str, ...] | None:
  """The names --dataset takes (`lrjax.data.by_name`; None without the training extras:
  the missing extra is then the error reported)."""
  try:
    from lrjax.data import by_name
  except ImportError:
    return None
  return by_name.NAMES


def _default_models() -> str:
  """``synthetic: mnist_cnn, mnist: mnist_cnn, ...`` for --model's help ("per dataset"
  without the training extras)."""
  try:
    from lrjax.data import by_name
  except ImportError:
    return "per dataset"
  return "per dataset, " + ", ".join(f"{n}: {by_name.default_model(n)}" for n in by_name.NAMES)


def _model_name(text: str) -> str:
  return text.lower().replace("-", "_")  # as `lrjax.models.get_model` reads names


def _parser() -> _Parser:
  from lrjax import __version__
  parser = _Parser(prog="lrjax", description=__doc__, formatter_class=_HelpFormatter)
  parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
  sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

  sweep = sub.add_parser("sweep", help="train many learning-rate variants in one program",
                         description="Train many learning-rate variants in one compiled "
                                     "program and write their results and plots.",
                         formatter_class=_HelpFormatter)
  sweep.add_argument("--dataset", choices=_dataset_names(), default="synthetic",
                     help="the data: synthetic is built in, the others are prepared from "
                          "--source-dir or downloaded")
  sweep.add_argument("--source-dir", default=None,
                     help="folder with the dataset's standard files (offline use)")
  sweep.add_argument("--data-dir", default=None, help="where prepared datasets are cached")
  sweep.add_argument("--model", default=None, type=_model_name, choices=_model_choices(),
                     help=f"model name (None: {_default_models()})")
  sweep.add_argument("--conv-impl", default="auto",
                     choices=("auto", "xla", "canonical", "im2col"),
                     help="the models' convolutions: auto (fastest on this backend), XLA's, "
                          "canonical-layout gradients, or im2col matrix products (BUILD.md)")
  sweep.add_argument("--variants-per-call", type=int, default=0,
                     help="variants trained per compiled call (1: one after another; "
                          "0: automatic per backend, see BUILD.md)")
  sweep.add_argument("--concurrent-calls", type=int, default=0,
                     help="compiled calls of an epoch run at once (1: one after another; "
                          "0: automatic, one per core on a CPU, see BUILD.md)")
  sweep.add_argument("--eval-batch-size", type=int, default=0,
                     help="batch of the validation/test passes (0: per backend)")
  sweep.add_argument("--config", default=None, metavar="FILE",
                     help="a sweep file (TOML; format: lrjax.train.frontends.sweep_file, README): "
                          "model, data, optimizer, schedule, grid; flags given here "
                          "override the file's values (--epochs, --batch-size, --seeds, "
                          "--out, --dataset, --source-dir, --data-dir, --train-size, "
                          "--validation-fraction, --model, --observe-untrained-loss, "
                          "--tensorboard)")
  sweep.add_argument("--preset", "--variants", dest="preset", default="report",
                     choices=PRESETS,
                     help="which settings without --config: 'report' = the 14 settings "
                          "of the report (--variants: the same, its old name)")
  sweep.add_argument("--r0", type=float, default=0.01, help="initial rate of the sequences")
  sweep.add_argument("--benchmark-lr", type=float, default=0.001,
                     help="fixed rate of the SGD and Adam benchmarks")
  sweep.add_argument("--seeds", type=int, default=1, help="number of seeds per setting")
  sweep.add_argument("--epochs", type=int, default=10, help="epochs of training")
  sweep.add_argument("--batch-size", type=int, default=64,
                     help="minibatch size (at most the number of training examples)")
  sweep.add_argument("--train-size", type=int, default=None,
                     help="use a random (seeded) N of the training examples")
  sweep.add_argument("--validation-fraction", type=float, default=0.1,
                     help="fraction of the training examples held out for validation, "
                          "in (0, 1)")
  sweep.add_argument("--out", default="results/sweep",
                     help="folder for results.json, history.csv, summary.md and the plots")
  sweep.add_argument("--checkpoint-dir", default=None,
                     help="checkpoint here every --checkpoint-every epochs and resume from it "
                          "(None: OUT/checkpoints)")
  sweep.add_argument("--no-checkpoint", action="store_true",
                     help="do not checkpoint (an interrupted run then starts over)")
  sweep.add_argument("--checkpoint-every", type=int, default=1, help="epochs between checkpoints")
  sweep.add_argument("--tolerance", type=float, default=0.005,
                     help="convergence tolerance on validation accuracy")
  sweep.add_argument("--observe-untrained-loss", action=argparse.BooleanOptionalAction,
                     default=True,
                     help="loss_0 of by-cutoff/by-oscillate is the untrained model's "
                          "validation loss (the report's reading, default); "
                          "--no-observe-untrained-loss: the loss after epoch 1")
  sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
  sweep.add_argument("--tensorboard", default=None, metavar="DIR",
                     help="live metrics: one TensorBoard run per variant in DIR, written "
                          "after every epoch (tensorboard --logdir DIR; needs pip install "
                          "\"lrjax[tensorboard]\")")
  from lrjax import distributed  # a multi-process run's --coordinator, --num-processes, ...
  distributed.add_flags(sweep)
  # lrjax.launch parses its own arguments (the command after `--` is not lrjax's): see main
  sub.add_parser("launch", add_help=False,
                 help="run a command as N local processes of one jax.distributed run")

  parser.sweep_parser = sweep
  plot = sub.add_parser("plot", help="plot a sweep's results (several: overlaid)",
                        description="Redraw a sweep's plots from its results.json (written "
                                    "by lrjax sweep, a sweep file or lrjax.sweep(..., "
                                    "out_dir=...)); given several, overlay them, each "
                                    "series named after its folder.",
                        formatter_class=_HelpFormatter)
  plot.add_argument("results", nargs="+",
                    help="results.json or the folder holding it; several to compare them")
  plot.add_argument("--out", default=None,
                    help="folder for the PNGs (default: beside the results; with several, "
                         "a folder 'comparison' beside the first)")
  return parser


# Config/dataset argument -> the flag that sets it, to name the flag the user typed in
# the errors raised by the library's own checks (`lrjax.errors.ArgumentError`).
_FLAG_OF = {"epochs": "--epochs", "batch_size": "--batch-size",
            "eval_batch_size": "--eval-batch-size", "variants_per_call": "--variants-per-call",
            "concurrent_calls": "--concurrent-calls",
            "checkpoint_every": "--checkpoint-every", "convergence_tolerance": "--tolerance",
            "validation_fraction": "--validation-fraction", "learning_rate": "--r0",
            "name": "--model", "conv_impl": "--conv-impl"}


def _flag_error(error: ArgumentError) -> UsageError:
  """A library check's error as the user's flag error: the flag that set the argument
  named instead of the argument (the argument itself where no flag sets it)."""
  flag = _FLAG_OF.get(error.argument)
  return UsageError(error.message(flag) if flag else str(error))


def _check_flags(args) -> None:
  """The checks a flag's value needs before anything is built (UsageError otherwise)."""
  def require(ok: bool, flag: str, what: str, value):
    if not ok:
      raise UsageError(f"{flag} must be {what}, got {value!r}")

  require(args.epochs >= 1, "--epochs", "at least 1", args.epochs)
  require(args.batch_size >= 1, "--batch-size", "at least 1", args.batch_size)
  require(args.seeds >= 1, "--seeds", "at least 1", args.seeds)
  require(args.train_size is None or args.train_size >= 1, "--train-size", "at least 1",
          args.train_size)
  require(0.0 < args.validation_fraction < 1.0, "--validation-fraction",
          "between 0 and 1 (exclusive)", args.validation_fraction)
  for flag, value in (("--r0", args.r0), ("--benchmark-lr", args.benchmark_lr)):
    require(value > 0 and value < float("inf"), flag, "a positive number", value)
  require(args.tolerance >= 0, "--tolerance", "at least 0", args.tolerance)
  for flag, value in (("--variants-per-call", args.variants_per_call),
                      ("--concurrent-calls", args.concurrent_calls),
                      ("--eval-batch-size", args.eval_batch_size),
                      ("--checkpoint-every", args.checkpoint_every)):
    require(value >= 0, flag, "at least 0", value)
  if args.source_dir is not None and not Path(args.source_dir).is_dir():
    raise UsageError(f"--source-dir {args.source_dir!r} is not a folder")
  if args.tensorboard is not None:
    _check_tensorboard("--tensorboard")


def _check_tensorboard(name: str) -> None:
  """The live metrics' extra is installed (UsageError naming ``name`` otherwise)."""
  from lrjax import _extras
  try:
    _extras.require_tensorboard(name)
  except ImportError as err:
    raise UsageError(str(err)) from None


def _refuse_overwrite(out, name=None) -> None:
  """A run without a checkpoint must not overwrite another run's results in OUT
  (``name(dest)``: the flag or the sweep file's key that set it)."""
  from lrjax.train.reports import results
  name = name or _flag
  try:
    results.refuse_overwrite(out)
  except results.ResultsExistError as err:
    raise UsageError(f"{name('out')} {out}: {err}; give another folder or delete them "
                     f"first") from None


def _flag(dest: str) -> str:
  """The command-line flag of an argparse destination (``batch_size`` -> ``--batch-size``)."""
  return "--" + dest.replace("_", "-")


def _check_data(dataset, batch_size: int, validation_fraction: float, name=_flag,
                subset_note: str = "") -> None:
  """The checks that need the data: a minibatch fits, a validation set exists.

  ``name(dest)`` is what the user typed for a setting (a flag, or a sweep file's key).
  """
  n = len(dataset.train_x)
  if batch_size > n:
    raise UsageError(f"{name('batch_size')} {batch_size} is larger than the {n} training "
                     f"examples{subset_note}")
  if len(dataset.valid_x) == 0:
    raise UsageError(f"{name('validation_fraction')} {validation_fraction} leaves no "
                     "validation examples")


def _dataset_error(err, name=_flag) -> str:
  """A `lrjax.data.DatasetNotFoundError` as one line naming what to change (``name(dest)``:
  the flag, or the sweep file's key, that set ``dataset`` / ``source_dir``)."""
  if err.source_dir is None:
    return f"{err.summary}; then pass {name('source_dir')} DIR"
  text = f"{name('source_dir')} {err.source_dir}: no {err.dataset} files there ({err.missing})"
  if err.found_instead:
    text += (f"; it holds the files of {' or '.join(err.found_instead)}: use "
             f"{name('dataset')} {err.found_instead[0]}, or give the {err.dataset} files")
  return text


def _model_kwargs(args) -> dict:
  import dataclasses

  from lrjax import models
  from lrjax.data import by_name
  model = models.get_model(args.model or by_name.default_model(args.dataset))
  has_convs = "conv_impl" in {f.name for f in dataclasses.fields(model)}
  return {"conv_impl": args.conv_impl} if has_convs else {}


def checkpoint_dir(args) -> Path | None:
  """The run's checkpoint folder: --checkpoint-dir, else OUT/checkpoints, or None."""
  if args.no_checkpoint:
    return None
  return Path(args.checkpoint_dir) if args.checkpoint_dir else Path(args.out) / "checkpoints"


def resume_command(argv) -> str:
  """The command line that runs ``lrjax <argv>`` again (so resumes it)."""
  prog = ["lrjax"] if Path(sys.argv[0]).name == "lrjax" else [sys.executable, "-m", "lrjax"]
  return shlex.join(prog + list(argv))


def _check_out_folder(out, flag: str = "--out") -> None:
  """A results folder that does not exist yet must be creatable: its nearest existing
  parent takes a file (probed with a temporary one, removed at once, so a run refused
  later leaves nothing).  One that exists is checked by its lock (`FolderLock`)."""
  folder = Path(out).absolute()
  parent = folder
  while not parent.exists():
    parent = parent.parent
  if parent == folder:
    if not folder.is_dir():
      raise UsageError(f"{flag} {out} is a file, not a folder")
    return
  if not parent.is_dir():
    raise UsageError(f"{flag} {out} cannot be created: {parent} is a file")
  try:
    fd, probe = tempfile.mkstemp(dir=parent, prefix=".lrjax-write-probe-")
    os.close(fd)
    os.unlink(probe)
  except OSError as err:
    raise UsageError(f"{flag} {out} cannot be created: {parent} is not writable "
                     f"({err.strerror or err})") from None


def _join_run(args) -> None:
  """Joins a multi-process run (jax.distributed) before anything starts JAX: every
  process has to be in the run before the first device is used.  Inconsistent flags are
  the `UsageError` of `lrjax.distributed.check_flags`, naming them."""
  from lrjax import distributed
  distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                         timeout=args.distributed_timeout,
                         heartbeat_timeout=args.heartbeat_timeout)


def _check_device_flags(args) -> None:
  """The flag checks that need the devices the run sees (after `_join_run`)."""
  import jax

  from lrjax.train.engine import plan as plan_lib
  try:
    plan_lib.check_concurrent_calls(args.concurrent_calls, devices=len(jax.devices()))
  except ArgumentError as err:
    raise _flag_error(err) from None


def _sweep(args) -> int:
  from lrjax.data import DatasetNotFoundError, by_name
  from lrjax.train import SweepConfig, report_variants, run_sweep

  _check_flags(args)
  _check_out_folder(args.out)
  _join_run(args)
  _check_device_flags(args)
  if checkpoint_dir(args) is None:
    _refuse_overwrite(args.out)
  try:
    try:
      dataset = by_name.load(args.dataset, source_dir=args.source_dir, data_dir=args.data_dir,
                             validation_fraction=args.validation_fraction,
                             train_size=args.train_size)
    except DatasetNotFoundError as err:
      raise UsageError(_dataset_error(err)) from None
    _check_data(dataset, args.batch_size, args.validation_fraction,
                subset_note=" left by --train-size" if args.train_size else "")
    config = SweepConfig(
        model=args.model or by_name.default_model(args.dataset),
        variants=report_variants(args.r0, args.benchmark_lr, tuple(range(args.seeds))),
        epochs=args.epochs, batch_size=args.batch_size, task=by_name.task(args.dataset),
        convergence_tolerance=args.tolerance, checkpoint_every=args.checkpoint_every,
        model_kwargs=tuple(sorted(_model_kwargs(args).items())),
        observe_untrained_loss=args.observe_untrained_loss,
        variants_per_call=args.variants_per_call, concurrent_calls=args.concurrent_calls,
        eval_batch_size=args.eval_batch_size)
  except ArgumentError as err:  # the library's own checks of what the flags built
    raise _flag_error(err) from None
  provenance = {"train_size": args.train_size, "subset_seed": 0 if args.train_size else None,
                "validation_fraction": args.validation_fraction}
  started = time.perf_counter()
  result = run_sweep(config, dataset, checkpoint_dir=checkpoint_dir(args), out_dir=args.out,
                     progress=not args.no_progress, data_provenance=provenance,
                     tensorboard_dir=args.tensorboard)
  from lrjax import distributed
  if not distributed.is_writer():  # a multi-process run: process 0 prints the table
    return 0
  plots = result.plots  # written by the sweep with the other results files
  print(run_report(result, Path(args.out), plots, model=config.model, data=dataset,
                   seconds=time.perf_counter() - started, tensorboard=args.tensorboard))
  return 0


def _count(n: int, what: str) -> str:
  return f"{n} {what}{'' if n == 1 else 's'}"


def run_report(result, out: Path, plots, *, model: str, data, seconds: float,
               tensorboard=None) -> str:
  """What ``lrjax sweep`` prints at the end, in the user's words: the table (best
  variant marked), what ran and how long it took, which setting won, where the results
  are.  The execution plan stays in summary.md and results.json."""
  from lrjax.train.reports import metrics, results
  best = results.Best(result)
  settings = metrics.aggregate_seeds(result)
  seeds = {row["seeds"] for row in settings}
  seed_words = (_count(seeds.pop(), "seed") + " each" if len(seeds) == 1
                else f"{min(seeds)} to {max(seeds)} seeds")
  epochs = int(next(iter(result.history.values())).shape[0])
  compile_words = (f", {result.compile_seconds:.0f} s of it compiling"
                   if result.compile_seconds >= 1 else "")
  lines = [results.markdown_table(result.summary, best=best.variant)]
  if best.settings is not None:
    lines.append(results.seed_table(best.settings, best=best.setting))
  lines.append(
      f"Trained {_count(len(settings), 'setting')} ({seed_words}) of {model} on "
      f"{getattr(data, 'name', 'the data')} ({len(data.train_x)} training, "
      f"{len(data.valid_x)} validation examples) for {_count(epochs, 'epoch')}: "
      f"{seconds:.0f} s{compile_words}, on {result.device.split()[0]}.")
  lines += best.lines()
  files = ["summary.md", "results.json", "history.csv"] + [Path(p).name for p in plots or ()]
  lines.append(f"Results in {out.absolute()}: {', '.join(files)} "
               f"(compare runs: lrjax plot {out} OTHER_DIR).")
  if tensorboard is not None:
    lines.append(f"Live metrics: tensorboard --logdir {tensorboard}")
  return "\n".join(lines)


# Flags that set a sweep file's key (the flag wins where both are given), by dest.
_FILE_KEY_OF = {"epochs": "epochs", "batch_size": "batch_size", "seeds": "seeds",
                "out": "out", "dataset": "data.dataset", "source_dir": "data.source_dir",
                "data_dir": "data.data_dir", "train_size": "data.train_size",
                "validation_fraction": "data.validation_fraction", "model": "model.name",
                "conv_impl": "model.conv_impl",
                "observe_untrained_loss": "observe_untrained_loss",
                "tensorboard": "tensorboard_dir"}
# Flags of the preset's settings, meaningless with --config.
_PRESET_ONLY = {"preset": "--preset", "r0": "--r0", "benchmark_lr": "--benchmark-lr"}


def typed_flags(argv) -> set[str]:
  """The dests of the options typed in ``argv`` (not left at their defaults)."""
  parser = _parser()
  assert parser.sweep_parser is not None
  for action in parser.sweep_parser._actions:
    action.default = argparse.SUPPRESS  # an option not typed then leaves no attribute
  return set(vars(parser.parse_args(argv))) - {"command"}


class FileRunConfig:
  """``config`` of a --config run (`lrjax.sweep`'s ``config``, written to results.json):
  the sweep file's checked content."""

  def __init__(self, spec):
    from lrjax._describe import describe
    self.task = spec.task
    self._record = {
        "sweep_file": str(spec.path), "file": spec.table, "model": spec.model_name,
        "optimizer_fn": repr(spec.optimizer_fn), "task": spec.task, "epochs": spec.epochs,
        "batch_size": spec.batch_size, "seeds": list(spec.seeds),
        "data": dataclasses.asdict(spec.data), "hparams": describe(spec.hparams)}

  def to_dict(self) -> dict:
    return self._record


def file_checkpoint_dir(args, typed: set[str], out: Path) -> Path | None:
  """A --config run's checkpoint folder: --checkpoint-dir, else OUT/checkpoints."""
  if args.no_checkpoint:
    return None
  return Path(args.checkpoint_dir) if "checkpoint_dir" in typed else out / "checkpoints"


def _sweep_file(args, typed: set[str]) -> int:
  """``lrjax sweep --config FILE``: the file's sweep through `lrjax.sweep`, checkpointed
  under OUT/checkpoints as the preset's."""
  from lrjax.data import DatasetNotFoundError, by_name
  from lrjax.train.frontends import sweep_file

  for dest, flag in _PRESET_ONLY.items():
    if dest in typed:
      raise UsageError(f"--config and {flag} exclude each other: {flag} sets the preset's "
                       f"settings")
  _check_flags(args)
  _join_run(args)
  _check_device_flags(args)
  overrides = {key: getattr(args, dest) for dest, key in _FILE_KEY_OF.items() if dest in typed}
  try:
    spec = sweep_file.load(args.config, overrides)
  except sweep_file.SweepFileError as err:
    typed_dest = next((d for d, key in _FILE_KEY_OF.items() if key == err.key and d in typed),
                      None)
    if typed_dest is None:
      raise
    # The value came from the flag: name the flag the user typed.
    raise UsageError(f"{_flag(typed_dest)} {getattr(args, typed_dest)!r}: "
                     f"{err.message}") from None

  def name(dest: str) -> str:  # the flag or the file's key that set a value
    return _flag(dest) if dest in typed else f"{spec.path}: {_FILE_KEY_OF[dest]}"

  data = spec.data
  _check_out_folder(spec.out, "--out" if "out" in typed else f"{spec.path}: out")
  try:
    dataset = by_name.load(data.dataset, source_dir=data.source_dir, data_dir=data.data_dir,
                           validation_fraction=data.validation_fraction,
                           train_size=data.train_size)
  except DatasetNotFoundError as err:
    raise UsageError(_dataset_error(err, name)) from None
  _check_data(dataset, spec.batch_size, data.validation_fraction, name)
  out = spec.out
  provenance = {"train_size": data.train_size, "subset_seed": 0 if data.train_size else None,
                "validation_fraction": data.validation_fraction}
  if file_checkpoint_dir(args, typed, out) is None:
    _refuse_overwrite(out, name)
  if spec.tensorboard_dir is not None:
    _check_tensorboard("--tensorboard" if "tensorboard" in typed
                       else f"{spec.path}: tensorboard_dir")
  from lrjax.train import api
  started = time.perf_counter()
  try:
    result = api.run(
        spec.spec(eval_batch_size=args.eval_batch_size or None,
                  variants_per_call=args.variants_per_call or None,
                  concurrent_calls=args.concurrent_calls or None,
                  convergence_tolerance=args.tolerance,
                  checkpoint_every=args.checkpoint_every),
        dataset, progress=not args.no_progress,
        checkpoint_dir=file_checkpoint_dir(args, typed, out), out_dir=out,
        data_provenance=provenance, config=FileRunConfig(spec),
        tensorboard_dir=spec.tensorboard_dir)
  except UsageError as err:  # one of lrjax.sweep's checks (anything else is a bug: shown)
    raise UsageError(f"{spec.path}: {err}") from None
  from lrjax import distributed
  if not distributed.is_writer():  # a multi-process run: process 0 prints the table
    return 0
  plots = result.plots  # written by the sweep with the other results files
  print(run_report(result, out, plots, model=spec.model_name, data=dataset,
                   seconds=time.perf_counter() - started, tensorboard=spec.tensorboard_dir))
  return 0


def _results_folder(path: str) -> Path:
  given = Path(path)
  return given.parent if given.suffix == ".json" else given


class _Terminated(KeyboardInterrupt):
  """SIGTERM before the sweep's own handler is in place: as Ctrl-C, with its exit status."""

  signum = signal.SIGTERM


@contextlib.contextmanager
def _sigterm_as_interrupt():
  """Within: SIGTERM ends the command as Ctrl-C does (one line naming the command that
  resumes; exit 143), where its default would kill the process silently with -15 during
  imports, data loading or compiling.  The sweep's loop installs its own handler for the
  epochs (stop after the epoch in progress is checkpointed) and puts this one back.  Left
  alone when SIGTERM is already handled (an embedding program's), or off the main thread.

  A signal's exception raised while Python runs a callback that cannot raise (JAX's gc
  callback, a ``__del__``) is printed as "Exception ignored" and lost, and the run went on
  to its end (Ctrl-C too): such an interrupt is sent again, to be raised at an ordinary
  line."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def terminated(signum, frame):  # pylint: disable=unused-argument
    raise _Terminated

  def again(unraisable):
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
      # From another thread, a moment later: sent from here, the handler would run (and
      # raise) inside this hook, which cannot raise either.
      signum = getattr(unraisable.exc_value, "signum", signal.SIGINT)
      resend = threading.Timer(0.05, os.kill, (os.getpid(), signum))
      resend.daemon = True
      resend.start()
      return
    hook(unraisable)

  previous = None
  if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    previous = signal.signal(signal.SIGTERM, terminated)
  hook, sys.unraisablehook = sys.unraisablehook, again
  try:
    yield
  finally:
    sys.unraisablehook = hook
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)


def _interrupted(stop: KeyboardInterrupt, argv, checkpointed: bool) -> int:
  """One line for a Ctrl-C / SIGTERM that ended the command at once; its exit status."""
  signum = getattr(stop, "signum", signal.SIGINT)
  how = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
  kept = (f"; resume from the last checkpoint with: {resume_command(argv)}" if checkpointed
          else "; nothing was checkpointed (--no-checkpoint)" if argv[:1] == ["sweep"]
          else "")
  print(f"lrjax: interrupted{how}{kept}", file=sys.stderr)
  return 128 + signum




def _plot(args) -> int:
  """``lrjax plot DIR [DIR ...]``: one run's plots beside it, or several overlaid."""
  from lrjax.train.reports import plotting, results
  loaded = []
  for path in args.results:
    try:
      loaded.append(results.load(path))
    except (FileNotFoundError, ValueError) as err:
      raise UsageError(str(err)) from None
  folders = [_results_folder(p) for p in args.results]
  if len(loaded) == 1:
    paths = plotting.plot_run(loaded[0], Path(args.out) if args.out else folders[0])
  else:
    out = Path(args.out) if args.out else folders[0].resolve().parent / "comparison"
    try:
      paths = plotting.plot_runs(loaded, plotting.run_labels(folders), out)
    except ValueError as err:  # runs of different tasks, one folder twice
      raise UsageError(str(err)) from None
  for path in paths:
    print(path)
  return 0


def _one_line_warnings() -> None:
  """lrjax's own warnings (a diverged variant) as one line each on stderr."""
  import warnings
  previous = warnings.showwarning
  if getattr(previous, "lrjax_one_line", False):
    return

  def show(message, category, filename, lineno, file=None, line=None):
    if category.__module__.startswith("lrjax."):
      print(f"lrjax: warning: {message}", file=sys.stderr, flush=True)
    else:
      previous(message, category, filename, lineno, file, line)

  show.lrjax_one_line = True  # type: ignore[attr-defined]  # a marker: installed once
  warnings.showwarning = show


def main(argv=None) -> int:
  command = argv is None  # the process's own command line (not a caller's list)
  argv = sys.argv[1:] if argv is None else list(argv)
  _one_line_warnings()
  if argv[:1] == ["launch"]:  # its own parser (the command after `--` is not parsed)
    from lrjax import launch
    return launch.main(argv[1:])
  with _sigterm_as_interrupt():  # first: imports and compiling take seconds
    try:
      code = _main(argv)
    except KeyboardInterrupt as stop:  # before `sweep`'s own handling (its imports)
      code = _interrupted(stop, argv, argv[:1] == ["sweep"] and "--no-checkpoint" not in argv)
  if command and code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
    # Interrupted during a compile, XLA's threads may still be working while the
    # interpreter finalizes, which then crashes (SIGSEGV: exit 139 after the resume line;
    # seen before this change too).  Everything is written and closed by now (saves are
    # synchronous, locks die with the process): leave without finalizing.
    with contextlib.suppress(Exception):
      sys.stdout.flush()
      sys.stderr.flush()
    os._exit(code)
  return code


def _main(argv) -> int:
  parser = _parser()
  args = parser.parse_args(argv)
  if args.command == "sweep" and args.no_checkpoint and args.checkpoint_dir:
    parser.error("--no-checkpoint and --checkpoint-dir exclude each other")
  from lrjax import _extras
  try:
    _extras.require_train("the lrjax command")
  except ImportError as error:  # a missing extra is the user's install, not a bug
    print(f"lrjax: error: {error}", file=sys.stderr)
    return 2
  if args.command == "sweep":
    from lrjax._atomic import OutputWriteError
    from lrjax.data.errors import CorruptDatasetError
    from lrjax.distributed import DistributedError
    from lrjax.train.frontends.sweep_file import SweepFileError
    from lrjax.train.reports.plotting import PlotsNotWritten
    from lrjax.train.runner.checkpoint import CheckpointError, CheckpointSaveError, FolderLostError
    from lrjax.train.runner.loop import SweepInterrupted
    try:
      if args.config is not None:
        return _sweep_file(args, typed_flags(argv))
      return _sweep(args)
    except SweepFileError as err:  # the file's key, named by the error itself
      print(f"lrjax sweep: error: {str(err).rstrip('.')}", file=sys.stderr)
      return 2
    except SweepInterrupted as stop:
      print(f"lrjax: {stop}; resume with: {resume_command(argv)}", file=sys.stderr)
      return 128 + stop.signum
    except KeyboardInterrupt as stop:  # a second Ctrl-C, or one before checkpointing started
      return _interrupted(stop, argv, checkpoint_dir(args) is not None)
    except PlotsNotWritten as err:  # after results.json: `lrjax plot` draws them again
      print(f"lrjax: error: {err}; the results files are written: draw the plots again with: "
            f"{resume_command(['plot', str(Path(err.out).absolute())])}", file=sys.stderr)
      return 1
    except OutputWriteError as err:  # the results (after training): the checkpoint is kept
      kept = ("nothing was checkpointed (--no-checkpoint)" if args.no_checkpoint else
              f"the checkpoint is kept: make room (or fix the folder) and write them with: "
              f"{resume_command(argv)}")
      print(f"lrjax: error: {err}; {kept}", file=sys.stderr)
      return 1
    except CorruptDatasetError as err:  # a damaged source file or prepared copy
      print(f"lrjax: error: {str(err).rstrip('.')}.", file=sys.stderr)
      return 1
    except UsageError as err:  # the user's flag: one line naming it, like argparse's
      print(f"lrjax sweep: error: {str(err).rstrip('.')} (see lrjax sweep --help)",
            file=sys.stderr)
      return 2
    except DistributedError as err:  # unreachable coordinator, processes disagree
      print(f"lrjax: error: {err}.", file=sys.stderr)
      return 1
    except CheckpointError as err:
      # A damaged, foreign or unwritable checkpoint folder is the user's to fix: one line
      # saying what happened and what to do (and where the completed epochs went), no
      # traceback.
      notes = list(getattr(err, "__notes__", ()))
      if notes and isinstance(err, CheckpointSaveError) and not isinstance(
          err, FolderLostError):  # a save failed midway: the last good step resumes
        notes.append(f"make room (or fix the folder) and resume with: {resume_command(argv)}")
      text = "; ".join([str(err).rstrip(".")] + notes)
      print(f"lrjax: error: {text}.", file=sys.stderr)
      return 1
  try:
    return _plot(args)
  except UsageError as err:
    print(f"lrjax plot: error: {str(err).rstrip('.')} (see lrjax plot --help)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
