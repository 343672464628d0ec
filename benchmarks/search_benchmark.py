"""Time to quality: searches inside lrjax's compiled sweep against Optuna's own loop.

The same model, data and search space for every row (SGD over ``learning_rate``
log-uniform in [1e-3, 1] and ``momentum`` uniform in [0, 0.95], batch 64, at most
``--epochs`` epochs per configuration), on one machine:

  lrjax grid        the full grid (``--grid`` rates x momenta), every one to the end
  lrjax random      random search, as many configurations as the grid
  lrjax halving     successive halving (as many samples, reduction 3, rungs at 1, 3, ...)
  lrjax hyperband   Hyperband's brackets, side by side
  lrjax pbt         population-based training (population ``--population``)
  lrjax optuna <p>  an Optuna study (TPE) trained ``--at-once`` trials at a time, pruner
                    p (median, halving)
  optuna+jit <p>    Optuna's own ``study.optimize`` with the same sampler and pruner over a
                    per-step ``jax.jit`` loop (the step compiled once, the rate an argument)
  optuna+torch <p>  the same over a PyTorch eager loop (the loop most users write)

Columns: the best validation accuracy the row found, the model-epochs it trained, its
wall time (compiles included), the wall time until its best-so-far came within
``--tolerance`` (0.5 points) of the grid's best of the same round, and that time as a
ratio to the Optuna + PyTorch row with the matching pruner (halving and Hyperband
against Optuna's SuccessiveHalvingPruner, the others against its MedianPruner; above 1:
the row is faster).  Rows run interleaved in rounds (round r: seed r for every row's
data order, initialisation and sampler), repeated ``--rounds`` times; the table shows
medians, the targets per round.

  python benchmarks/search_benchmark.py --models mnist_cnn                # ~30 min
  python benchmarks/search_benchmark.py --models mnist_cnn cifar_cnn --rounds 3
  python benchmarks/search_benchmark.py --models tiny --train-size 256 --rounds 1 --epochs 3 --grid 2 2 --no-torch   # seconds
"""  # noqa: E501 (each command on one line: copied as it is, run by the tests)

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # sweep_benchmark's PyTorch nets

import lrjax  # noqa: E402
from lrjax import data as data_lib  # noqa: E402
from lrjax import models  # noqa: E402
from lrjax.train import search  # noqa: E402
from lrjax.train.engine.step import task_loss  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LR, MOMENTUM = (1e-3, 1.0), (0.0, 0.95)
BATCH = 64
DATASETS = {"mnist_cnn": "mnist", "cifar_cnn": "cifar10", "tiny": None}


def space():
  return search.search_space(learning_rate=search.log_uniform(*LR),
                             momentum=search.uniform(*MOMENTUM))


def optimizer_fn(h):
  return optax.sgd(h["learning_rate"], momentum=h["momentum"])


def load_data(model: str, args, seed: int):
  """Real data when the standard files are there (a seeded subset), else synthetic of
  the same shape (said so)."""
  name = DATASETS[model]
  dataset, note = None, ""
  if name is not None and not args.synthetic:
    for source in ([args.source_dir] if args.source_dir else [SHARED, None]):
      try:
        dataset = data_lib.load(name, source_dir=source, seed=0)
        note = f"{name} (real files)"
        break
      except (FileNotFoundError, ValueError):
        continue
  if dataset is None:
    shape = {"mnist": "mnist", "cifar10": "cifar10", None: "tiny"}[name]
    dataset = data_lib.synthetic(shape, num_train=args.train_size + args.valid_size,
                                 num_test=args.valid_size, seed=0, noise=1.0)
    note = f"synthetic {shape}"
  rng = np.random.default_rng(0)
  keep = np.sort(rng.permutation(len(dataset.train_x))[:args.train_size])
  dataset = dataset._replace(train_x=dataset.train_x[keep], train_y=dataset.train_y[keep])
  for split in ("valid", "test"):
    x, y = getattr(dataset, f"{split}_x"), getattr(dataset, f"{split}_y")
    keep = np.sort(rng.permutation(len(x))[:args.valid_size])
    dataset = dataset._replace(**{f"{split}_x": x[keep], f"{split}_y": y[keep]})
  return dataset, f"{note}, train/valid/test {len(dataset.train_x)}/{len(dataset.valid_x)}/" \
      f"{len(dataset.test_x)}"


class Timeline:
  """(seconds since the row started, best validation accuracy so far, model-epochs so
  far) after every epoch of the row."""

  def __init__(self):
    self.t0 = time.perf_counter()
    self.points: list[tuple[float, float, int]] = []
    self.best, self.model_epochs = -math.inf, 0

  def add(self, accuracies, trained: int):
    accuracies = [a for a in np.atleast_1d(accuracies) if np.isfinite(a)]
    if accuracies:
      self.best = max(self.best, max(accuracies))
    self.model_epochs += trained
    self.points.append((time.perf_counter() - self.t0, self.best, self.model_epochs))

  def time_to(self, target: float) -> float:
    return next((t for t, best, _ in self.points if best >= target), math.inf)

  @property
  def seconds(self) -> float:
    return self.points[-1][0] if self.points else 0.0


# -- lrjax rows -----------------------------------------------------------------------------

def lrjax_row(model, dataset, hparams, controller, epochs, seed):
  timeline = Timeline()

  def epoch_done(epoch, history):
    alive = history["alive"][epoch] > 0
    timeline.add(history["valid_acc"][epoch][alive], int(alive.sum()))

  lrjax.sweep(model, dataset, optimizer_fn, hparams, epochs=epochs, batch_size=BATCH,
              seeds=(seed,), controller=controller, progress=False, keep="none",
              on_epoch_end=epoch_done)
  return timeline


def grid_of(args):
  rates = np.geomspace(*LR, args.grid[0])
  momenta = np.linspace(*MOMENTUM, args.grid[1])
  return [{"learning_rate": float(r), "momentum": float(m)} for r in rates for m in momenta]


def lrjax_rows(args, model, dataset, seed) -> dict:
  n = args.grid[0] * args.grid[1]
  study = lambda pruner: search.optuna_search(  # noqa: E731
      _optuna().create_study(direction="maximize",
                             sampler=_optuna().samplers.TPESampler(seed=seed),
                             pruner=pruner), n_trials=n, at_once=args.at_once)
  return {
      "lrjax grid": lambda: lrjax_row(model, dataset, grid_of(args), None, args.epochs, seed),
      "lrjax random": lambda: lrjax_row(model, dataset, space(),
                                        search.random_search(n, seed=seed), args.epochs, seed),
      "lrjax halving": lambda: lrjax_row(model, dataset, space(), search.successive_halving(
          n, reduction=3, min_epochs=1, seed=seed), args.epochs, seed),
      "lrjax hyperband": lambda: lrjax_row(model, dataset, space(), search.hyperband(
          reduction=3, min_epochs=1, seed=seed), args.epochs, seed),
      "lrjax pbt": lambda: lrjax_row(model, dataset, space(), search.pbt(
          args.population, interval=1, seed=seed), args.epochs, seed),
      "lrjax optuna median": lambda: lrjax_row(
          model, dataset, space(), study(_optuna().pruners.MedianPruner()), args.epochs, seed),
      "lrjax optuna halving": lambda: lrjax_row(
          model, dataset, space(), study(_optuna().pruners.SuccessiveHalvingPruner()),
          args.epochs, seed),
  }


# -- Optuna's own loop ----------------------------------------------------------------------

def _optuna():
  import optuna
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  return optuna


def optuna_row(trainer_factory, pruner, args, n, seed):
  """``study.optimize`` (TPE, ``pruner``) of ``n`` trials; each trial trains a fresh
  model (``trainer_factory(lr, momentum, seed)`` -> ``epoch() -> valid acc``)."""
  optuna = _optuna()
  timeline = Timeline()
  study = optuna.create_study(direction="maximize",
                              sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)

  def objective(trial):
    lr = trial.suggest_float("learning_rate", *LR, log=True)
    momentum = trial.suggest_float("momentum", *MOMENTUM)
    epoch = trainer_factory(lr, momentum, seed + trial.number)
    acc = 0.0
    for e in range(args.epochs):
      acc = epoch()
      timeline.add(acc, 1)
      trial.report(acc, e + 1)
      if trial.should_prune():
        raise optuna.TrialPruned
    return acc

  study.optimize(objective, n_trials=n)
  return timeline


def jit_trainer(model, dataset):
  """A per-step ``jax.jit`` loop: the step compiled once (rate and momentum are
  arguments), a fresh initialisation per trial."""
  x, y = jax.device_put((dataset.train_x, dataset.train_y))
  vx, vy = jax.device_put((dataset.valid_x, dataset.valid_y))
  steps = len(dataset.train_x) // BATCH
  tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)

  @jax.jit
  def step(params, opt_state, idx, lr, momentum, key):
    def loss_fn(p):
      out = model.apply({"params": p}, x[idx], train=True, rngs={"dropout": key})
      return task_loss(out, y[idx], "classification")
    grads = jax.grad(loss_fn)(params)
    opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams,
                                                "learning_rate": lr, "momentum": momentum})
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  @jax.jit
  def accuracy(params):
    out = model.apply({"params": params}, vx, train=False)
    return jnp.mean(jnp.argmax(out, -1) == vy)

  def factory(lr, momentum, seed):
    params = model.init(jax.random.PRNGKey(seed), x[:1], train=False)["params"]
    holder = {"p": params, "o": tx.init(params), "e": 0}

    def epoch():
      key = jax.random.PRNGKey(seed * 1000 + holder["e"])
      perm = jax.random.permutation(key, len(dataset.train_x))
      p, o = holder["p"], holder["o"]
      for i in range(steps):
        p, o = step(p, o, perm[i * BATCH:(i + 1) * BATCH], lr, momentum,
                    jax.random.fold_in(key, i))
      holder.update(p=p, o=o, e=holder["e"] + 1)
      return float(accuracy(p))

    return epoch

  return factory


def torch_trainer(model_name, dataset, threads):
  """A PyTorch eager loop of the same network (the benchmarks' own, sweep_benchmark.py),
  or None without torch."""
  try:
    import torch
    import torch.nn.functional as F
  except Exception:  # noqa: BLE001 - any import failure means "not available"
    return None
  import sweep_benchmark
  to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
  tx, ty = to_t(dataset.train_x), torch.from_numpy(dataset.train_y.astype(np.int64))
  vx, vy = to_t(dataset.valid_x), torch.from_numpy(dataset.valid_y.astype(np.int64))
  steps = len(tx) // BATCH
  make_net = sweep_benchmark.torch_net(model_name, dataset.train_x.shape[1:])

  def factory(lr, momentum, seed):
    torch.manual_seed(seed)
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)

    def epoch():
      torch.set_num_threads(threads)
      net.train()
      perm = torch.randperm(len(tx))
      for i in range(steps):
        idx = perm[i * BATCH:(i + 1) * BATCH]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(tx[idx]), ty[idx]).backward()
        opt.step()
      net.eval()
      with torch.no_grad():
        return float((net(vx).argmax(1) == vy).float().mean())

    return epoch

  return factory


def optuna_rows(args, model_name, model, dataset, seed) -> dict:
  optuna = _optuna()
  n = args.grid[0] * args.grid[1]
  pruners = {"median": optuna.pruners.MedianPruner,
             "halving": optuna.pruners.SuccessiveHalvingPruner}
  rows = {}
  jit = jit_trainer(model, dataset)
  for name, pruner in pruners.items():
    rows[f"optuna+jit {name}"] = (lambda p=pruner: optuna_row(jit, p(), args, n, seed))
  torch_factory = None if args.no_torch else torch_trainer(model_name, dataset, args.threads)
  if torch_factory is not None:
    for name, pruner in pruners.items():
      rows[f"optuna+torch {name}"] = (lambda p=pruner: optuna_row(torch_factory, p(), args, n,
                                                                  seed))
  return rows


# -- the table ------------------------------------------------------------------------------

def reference_row(row: str) -> str:
  """The Optuna + PyTorch row a row is compared with (its pruner's kind)."""
  return "optuna+torch halving" if ("halving" in row or "hyperband" in row) \
      else "optuna+torch median"


def run(model_name: str, args) -> list[dict]:
  model = (models.get_model("logistic") if model_name == "tiny"
           else models.get_model(model_name))
  rounds = []
  for seed in range(args.rounds):
    dataset, note = load_data(model_name, args, seed)
    rows = {**lrjax_rows(args, model, dataset, seed),
            **optuna_rows(args, model_name, model, dataset, seed)}
    if args.rows:
      rows = {k: v for k, v in rows.items() if k == "lrjax grid" or k in args.rows}
    print(f"{model_name}, round {seed + 1}/{args.rounds}: {note}", flush=True)
    timelines = {}
    for name, fn in rows.items():
      timelines[name] = fn()
      t = timelines[name]
      print(f"  {name:22s} best {t.best:.4f}  {t.model_epochs:4d} model-epochs  "
            f"{t.seconds:8.1f} s", flush=True)
    rounds.append(timelines)
  grid_best = [r["lrjax grid"].best for r in rounds]
  names = list(rounds[0])
  table = []
  for name in names:
    per_round = [r[name] for r in rounds]
    to_quality = [t.time_to(g - args.tolerance) for t, g in zip(per_round, grid_best, strict=True)]
    ref = reference_row(name)
    # The reference's time to quality; one that never got there is bounded by its wall
    # time (the ratio is then a lower bound, marked ">").
    ratios, bounded = [], False
    for r, g, q in zip(rounds, grid_best, to_quality, strict=True):
      if ref not in r or not math.isfinite(q) or q <= 0:
        continue
      theirs = r[ref].time_to(g - args.tolerance)
      if not math.isfinite(theirs):
        theirs, bounded = r[ref].seconds, True
      ratios.append(theirs / q)
    table.append({
        "model": model_name, "row": name,
        "best_valid_acc": statistics.median(t.best for t in per_round),
        "best_minus_grid": [float(t.best - g) for t, g in zip(per_round, grid_best, strict=True)],
        "model_epochs": statistics.median(t.model_epochs for t in per_round),
        "seconds": statistics.median(t.seconds for t in per_round),
        "seconds_to_quality": statistics.median(to_quality),
        "vs_optuna_torch": statistics.median(ratios) if ratios else None,
        "vs_optuna_torch_is_lower_bound": bounded,
        "rounds": len(per_round), "note": note, "device": jax.devices()[0].platform,
    })
  print_table(model_name, table, args)
  return table


def print_table(model_name, table, args):
  grid = next(r for r in table if r["row"] == "lrjax grid")
  print(f"\n{model_name}: medians over {args.rounds} round(s); quality = within "
        f"{args.tolerance * 100:.1f} points of the grid's best; ratio = the matching "
        f"Optuna + PyTorch row's time to quality / this row's")
  print(f"  {'row':22s} {'best acc':>9s} {'model-epochs':>13s} {'wall s':>9s} "
        f"{'to quality s':>13s} {'vs optuna+torch':>16s}")
  for r in table:
    mark = ">" if r["vs_optuna_torch_is_lower_bound"] else " "
    ratio = (f"{mark}{r['vs_optuna_torch']:14.2f}x" if r["vs_optuna_torch"]
             else "            n/a")
    print(f"  {r['row']:22s} {r['best_valid_acc']:9.4f} {r['model_epochs']:13.0f} "
          f"{r['seconds']:9.1f} {r['seconds_to_quality']:13.1f} {ratio}")
  for name in ("lrjax halving", "lrjax hyperband"):
    row = next((r for r in table if r["row"] == name), None)
    if row is not None:
      # Accuracies are counts of images: a difference of exactly 0.3 points is within (up
      # to float rounding, far below one image).
      close = all(d >= -0.003 - 1e-6 for d in row["best_minus_grid"])
      share = row["model_epochs"] / grid["model_epochs"]
      print(f"  target: {name} within 0.3 points of the grid's best in every round "
            f"({'met' if close else 'not met'}: "
            f"{[round(float(d) * 100, 2) for d in row['best_minus_grid']]}"
            f" points) with at most 1/3 of its model-epochs ({share:.2f}: "
            f"{'met' if share <= 1 / 3 else 'not met'})")
  ratios = [r["vs_optuna_torch"] for r in table if r["row"].startswith("lrjax ") and
            r["row"] != "lrjax grid" and r["vs_optuna_torch"]]
  if ratios:
    print(f"  target: every lrjax search row at least 3x faster to quality than Optuna + "
          f"PyTorch with the same pruner: slowest {min(ratios):.2f}x "
          f"({'met' if min(ratios) >= 3 else 'not met'})")


def parser():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--models", nargs="+", default=["mnist_cnn"], choices=sorted(DATASETS))
  p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (seeds)")
  p.add_argument("--epochs", type=int, default=9, help="epochs per configuration")
  p.add_argument("--grid", type=int, nargs=2, default=[9, 3], metavar=("RATES", "MOMENTA"))
  p.add_argument("--population", type=int, default=9, help="PBT's population")
  # Optuna's pruners judge a trial against the trials completed before it: the more run
  # at once, the fewer have completed when they are judged (9 at once: none before epoch
  # 9).  On a CPU the plan runs one call per core anyway, so a few at once lose nothing.
  p.add_argument("--at-once", type=int, default=3, help="Optuna trials per lrjax sweep "
                 "(default 3: a CPU runs 2 calls at once; on a GPU give more)")
  p.add_argument("--train-size", type=int, default=4096)
  p.add_argument("--valid-size", type=int, default=1000, help="validation (and test) size")
  p.add_argument("--tolerance", type=float, default=0.005)
  p.add_argument("--threads", type=int, default=2, help="PyTorch's threads")
  p.add_argument("--rows", nargs="*", default=None, help="only these rows (and the grid)")
  p.add_argument("--source-dir", default=None)
  p.add_argument("--synthetic", action="store_true")
  p.add_argument("--no-torch", action="store_true")
  p.add_argument("--json", default=None, help="write the table as JSON here")
  return p


def main(argv=None) -> list[dict]:
  args = parser().parse_args(argv)
  print(f"device: {jax.devices()[0].platform} x{jax.device_count()} "
        f"({_cpu()}); jax {jax.__version__}", flush=True)
  table = [row for name in args.models for row in run(name, args)]
  if args.json:
    Path(args.json).write_text(json.dumps(table, indent=1))
  return table


def _cpu() -> str:
  import sweep_benchmark
  return sweep_benchmark.cpu_model()


if __name__ == "__main__":
  main(sys.argv[1:])
