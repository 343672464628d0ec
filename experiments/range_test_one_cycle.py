"""LR range test (both library versions) on MNIST and CIFAR-10, and one cycle on CIFAR-10.

    python experiments/range_test_one_cycle.py --quick --out results/range_test_one_cycle

The range-test / one-cycle document (lr-range-test-one-cycle.md), with the library:

1. **Range test** (`lrjax.train.range_test`, Smith 2015 / fastai's ``lr_find``): one
   run whose rate grows exponentially after every mini-batch from ``--init-lr`` (1e-4)
   to ``--max-lr`` (10) over ``--range-steps`` steps, the loss smoothed (EMA 0.98,
   bias-corrected) and cut at 4x its best.  Suggested rate: the document's rule, one
   order of magnitude below the rate of the lowest smoothed loss (fastai's
   ``minimum``); fastai's ``steep`` and ``valley`` are printed too.
2. **Vectorized range test** (`lrjax.train.range_test_vectorized`): ``--grid`` constant
   rates on the same log range, trained side by side from the same initialisation on
   the same batches for ``--grid-steps`` steps, one vmapped program; each rate's loss
   is its mean training loss over the last 10% of the steps; the same rules give its
   suggestions (here the best constant rate is ``at_minimum``).
3. **One cycle** on CIFAR-10 through `lrjax.sweep` with optax's SGD: Smith's
   ``one_cycle(max/10, max, s, T, 10)`` (`lrjax.schedules.one_cycle`, two equal linear
   steps of ``s = round(41/95 T)`` iterations, then annihilation to 1/10 of the lower
   bound, reached at the run's last step ``T``) with the momentum cycled inversely
   0.95 -> 0.85 -> 0.95
   (`lrjax.schedules.one_cycle_linear_momentum`) and weight decay 1e-4
   (``optax.add_decayed_weights``, PyTorch's SGD weight_decay), ``max`` = the range
   test's suggestion; against the same cycle at fixed momentum 0.9, the cycle peaking
   at the vectorized test's best rate, and fixed rates at the upper and lower bound
   (momentum 0.9, the same weight decay).

Deviations from the document (said in the output too): the report's CNNs (the
document used ResNet-56 on CIFAR-10), batch 128 (document: 512), the one-cycle
comparison on a CIFAR-10 subset for a few epochs (document: the full set, 95 epochs).

Writes into ``--out``: ``range_test_<dataset>.png``, ``one_cycle.png``, ``summary.md``
and ``summary.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import lrjax  # noqa: E402
from lrjax import schedules  # noqa: E402
from lrjax.models import get_model  # noqa: E402
from lrjax.train import range_test, range_test_vectorized  # noqa: E402
from lrjax.train.reports import plotting

MODELS = {"mnist": "mnist_cnn", "cifar10": "cifar_cnn"}
DOCUMENT_SCALE = ("the document: ResNet-56 on the full CIFAR-10, batch 512, momentum 0.9, "
                  "weight decay 1e-4, one cycle 0.08 -> 0.8 -> 0.08 over 41 + 41 epochs "
                  "and 13 epochs of annihilation (95 epochs), ~91.3% test accuracy")


def sgd_momentum(momentum: float = 0.9):
  """``lr -> optax.sgd(lr, momentum)``: the range tests' optimizer."""
  return lambda lr: optax.sgd(lr, momentum=momentum)


def one_cycle_optimizer(h):
  """Weight decay then SGD with injected rate and momentum (numbers or schedules)."""
  return optax.chain(
      optax.add_decayed_weights(h["weight_decay"]),
      optax.inject_hyperparams(optax.sgd)(learning_rate=h["learning_rate"],
                                          momentum=h["momentum"]))


def cycle_steps(total_steps: int) -> int:
  """The document's step length, 41 of 95 epochs: two steps slightly shorter than T."""
  return max(1, min(total_steps // 2, int(round(total_steps * 41 / 95))))


# ---------------------------------------------------------------------- range tests
def run_range_tests(name, args, batch):
  dataset, note = common.get_dataset(name, args, train_size=2000 if args.quick else None,
                                     test_size=args.test_size or (500 if args.quick else None))
  model = get_model(args.model or MODELS[name])
  batch = min(batch, len(dataset.train_x))
  grid = np.geomspace(args.init_lr, args.max_lr, args.grid)
  t0 = time.perf_counter()
  # fastai's EMA 0.98, as RESULTS.md recorded it (the library's default follows the length)
  ramp = range_test(model, dataset, sgd_momentum(), min_lr=args.init_lr, max_lr=args.max_lr,
                    smoothing=0.98,
                    num_steps=args.range_steps, batch_size=batch, seed=0)
  t1 = time.perf_counter()
  vec = range_test_vectorized(model, dataset, sgd_momentum(), grid,
                              num_steps=args.grid_steps, batch_size=batch, seed=0)
  t2 = time.perf_counter()
  out = {"data": note, "model": args.model or MODELS[name], "batch": batch,
         "train_examples": len(dataset.train_x),
         "range": {"steps": args.range_steps, "seconds": t1 - t0,
                   "kept": int(ramp.kept.sum()), "diverged": ramp.diverged,
                   "suggestions": ramp.suggestions._asdict(),
                   "lr": ramp.lrs, "loss": ramp.losses, "smoothed": ramp.smoothed},
         "vectorized": {"steps": args.grid_steps, "seconds": t2 - t1, "lr": grid,
                        "loss": vec.losses, "kept": vec.kept,
                        "valid_loss": vec.valid_losses,
                        "suggestions": vec.suggestions._asdict()}}
  print(f"{name}: range test {ramp.suggestions}; vectorized {vec.suggestions}; "
        f"{t1 - t0:.0f} s + {t2 - t1:.0f} s", flush=True)
  return out, dataset, note


def plot_range_tests(path, name, r):
  plt = plotting.pyplot()
  fig, ax = plt.subplots(figsize=(8, 4.2))
  ramp, vec = r["range"], r["vectorized"]
  ax.plot(ramp["lr"], ramp["loss"], color="tab:blue", alpha=0.25, lw=0.8,
          label="range test: mini-batch loss")
  ax.plot(ramp["lr"], ramp["smoothed"], color="tab:blue", lw=2,
          label="range test: smoothed (EMA 0.98)")
  kept = np.asarray(vec["kept"])
  ax.plot(np.asarray(vec["lr"])[kept], np.asarray(vec["loss"])[kept], "o-",
          color="tab:orange", label=f"{len(vec['lr'])} constant rates, {vec['steps']} steps: "
          "mean loss of the last 10%")
  for key, style, who in (("minimum", "--", ramp), ("at_minimum", ":", vec)):
    value = who["suggestions"][key]
    label = ("range test: minimum / 10 " if who is ramp else "vectorized: best rate ")
    ax.axvline(value, ls=style, color="tab:purple" if who is ramp else "tab:orange",
               label=f"{label}{value:.3g}")
  ax.set_xscale("log")
  finite = np.concatenate([np.asarray(ramp["smoothed"])[np.isfinite(ramp["smoothed"])],
                           np.asarray(vec["loss"])[kept]])
  ax.set_ylim(0.9 * finite.min(), 1.1 * finite.max())
  ax.set_xlabel("learning rate (log)")
  ax.set_ylabel("training loss")
  ax.set_title(f"LR range tests, {r['model']} on {name} ({r['train_examples']} train), "
               f"batch {r['batch']}, SGD momentum 0.9", fontsize=9)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=7)
  plotting.save_figure(fig, path, dpi=80)


# ----------------------------------------------------------------------- one cycle
def one_cycle_settings(max_lr, best_constant, total, weight_decay):
  # steps 0 .. total - 1: the cycle's end (its annihilated rate) is the last step
  last = max(total - 1, 2)
  step = cycle_steps(last)
  cycle = lambda peak: schedules.one_cycle(peak / 10, peak, step, last, 10.0)
  momentum = schedules.one_cycle_linear_momentum(step, last, base_momentum=0.85,
                                                 max_momentum=0.95)
  names, settings = [], []

  def add(name, lr, mom):
    names.append(name)
    settings.append({"learning_rate": lr, "momentum": mom, "weight_decay": weight_decay})

  add(f"one cycle {max_lr:.3g}, momentum 0.95-0.85-0.95", cycle(max_lr), momentum)
  add(f"one cycle {max_lr:.3g}, momentum 0.9", cycle(max_lr), 0.9)
  add(f"one cycle {best_constant:.3g} (vectorized best), momentum 0.95-0.85-0.95",
      cycle(best_constant), momentum)
  add(f"fixed {max_lr:.3g} (max)", max_lr, 0.9)
  add(f"fixed {max_lr / 10:.3g} (min)", max_lr / 10, 0.9)
  return names, settings, {"step_size": step, "total_steps": last}


def _fmt(x, digits=4):
  return "" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def parse_args(argv=None):
  p = common.base_parser(__doc__.splitlines()[0], "results/range_test_one_cycle")
  p.add_argument("--batch-size", type=int, default=128)
  p.add_argument("--init-lr", type=float, default=1e-4, help="range test start")
  p.add_argument("--max-lr", type=float, default=10.0, help="range test end")
  p.add_argument("--range-steps", type=int, default=None, help="default 300 (quick 60)")
  p.add_argument("--grid", type=int, default=None, help="constant rates (default 8)")
  p.add_argument("--grid-steps", type=int, default=None, help="default 200 (quick 40)")
  p.add_argument("--datasets", default="mnist,cifar10")
  p.add_argument("--cycle-train-size", type=int, default=None,
                 help="CIFAR-10 training examples of the one-cycle comparison")
  p.add_argument("--weight-decay", type=float, default=1e-4)
  # --test-size: experiments/common.py's shared flags
  p.add_argument("--model", default=None,
                 help="one model for every dataset (default: mnist_cnn / cifar_cnn)")
  args = p.parse_args(argv)
  args.range_steps = args.range_steps or (60 if args.quick else 300)
  args.grid = args.grid or (5 if args.quick else 8)
  args.grid_steps = args.grid_steps or (40 if args.quick else 200)
  args.epochs = args.epochs or (2 if args.quick else 5)
  args.cycle_train_size = args.cycle_train_size or (1000 if args.quick else 10000)
  return args


def main(argv=None) -> dict:
  args = parse_args(argv)
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  t_start = time.perf_counter()
  md = ["# LR range test (library, both versions) and one cycle", "",
        f"Scale: {DOCUMENT_SCALE}. Here: the report's CNNs, batch {args.batch_size}, SGD "
        f"momentum 0.9; range test {args.init_lr:g} -> {args.max_lr:g} over "
        f"{args.range_steps} steps; vectorized: {args.grid} constant rates x "
        f"{args.grid_steps} steps.", "",
        "| dataset | data | range test: minimum/10 (document) | steep | valley | lowest "
        "loss at | vectorized: best rate | its /10 | steep | valley | seconds (range + "
        "vectorized) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
  summary = {"args": vars(args), "range_tests": {}}
  cifar = None
  for name in args.datasets.split(","):
    r, dataset, note = run_range_tests(name, args, args.batch_size)
    summary["range_tests"][name] = r
    plot_range_tests(out / f"range_test_{name}.png", name, r)
    s, v = r["range"]["suggestions"], r["vectorized"]["suggestions"]
    md.append(f"| {name} | {note}, {r['train_examples']} train | **{s['minimum']:.3g}** | "
              f"{s['steep']:.3g} | {s['valley']:.3g} | {s['at_minimum']:.3g} | "
              f"**{v['at_minimum']:.3g}** | {v['minimum']:.3g} | {v['steep']:.3g} | "
              f"{v['valley']:.3g} | {r['range']['seconds']:.0f} + "
              f"{r['vectorized']['seconds']:.0f} |")
    if name == "cifar10":
      cifar = (dataset, note, r)
    # partial results first: a long run that is stopped keeps the range tests
    (out / "summary.md").write_text("\n".join(md) + "\n")
    common.write_json(out / "summary.json", summary)
  md += [""]
  for name, r in summary["range_tests"].items():
    vec = r["vectorized"]
    md += [f"{name}, constant rates ({vec['steps']} steps): " + ", ".join(
        f"{lr:.3g}: {_fmt(l, 3) or 'diverged'}"
        for lr, l in zip(vec["lr"], vec["loss"], strict=True))
        + f"; range test kept {r['range']['kept']} of {r['range']['steps']} steps"
        + (" (stopped at 4x the best smoothed loss)" if r["range"]["diverged"] else ""), ""]

  if cifar is not None:
    dataset, note, r = cifar
    if args.cycle_train_size < len(dataset.train_x):
      rng = np.random.default_rng(0)
      keep = np.sort(rng.permutation(len(dataset.train_x))[:args.cycle_train_size])
      dataset = dataset._replace(train_x=dataset.train_x[keep], train_y=dataset.train_y[keep])
    steps = len(dataset.train_x) // args.batch_size
    total = args.epochs * steps
    max_lr = r["range"]["suggestions"]["minimum"]
    best = r["vectorized"]["suggestions"]["at_minimum"]
    names, settings, cycle = one_cycle_settings(max_lr, best, total, args.weight_decay)
    t0 = time.perf_counter()
    res = lrjax.sweep(get_model(args.model or MODELS["cifar10"]), dataset, one_cycle_optimizer,
                      settings, epochs=args.epochs, batch_size=args.batch_size,
                      progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    h = res.history
    plotting.plot_curves(
        h, names, out / "one_cycle.png", fields=("train_loss", "valid_loss", "test_acc"),
        initial=res.initial, task=res.task,
        title=f"CIFAR-10 ({len(dataset.train_x)} train), {args.model or MODELS['cifar10']}, "
              f"batch {args.batch_size}, wd {args.weight_decay:g}, {args.epochs} epochs; "
              f"cycle step {cycle['step_size']} of {total} iterations")
    md += ["## One cycle on CIFAR-10 (lrjax.sweep, optax SGD + add_decayed_weights)", "",
           f"Data: {note}, random {len(dataset.train_x)} training examples; "
           f"{args.epochs} epochs of {steps} steps; cycle step {cycle['step_size']} of "
           f"{total} iterations, annihilation to 1/10 of the lower bound; weight decay "
           f"{args.weight_decay:g}; {seconds:.0f} s.", "",
           "| setting | final test acc | best test acc | final valid loss | final train "
           "loss | final lr |", "|---|---|---|---|---|---|"]
    rows = []
    for k, name in enumerate(names):
      row = {"name": name, "final_test_acc": float(h["test_acc"][-1, k]),
             "best_test_acc": float(np.nanmax(h["test_acc"][:, k])),
             "final_valid_loss": float(h["valid_loss"][-1, k]),
             "final_train_loss": float(h["train_loss"][-1, k]),
             "final_lr": float(h["lr"][-1, k])}
      rows.append(row)
      md.append(f"| {name} | {_fmt(row['final_test_acc'])} | {_fmt(row['best_test_acc'])} "
                f"| {_fmt(row['final_valid_loss'])} | {_fmt(row['final_train_loss'])} | "
                f"{row['final_lr']:.3g} |")
    summary["one_cycle"] = {"rows": rows, "cycle": cycle, "max_lr": max_lr,
                            "vectorized_best": best, "seconds": seconds,
                            "history": {k: v for k, v in h.items()}}
  summary["wall_seconds"] = time.perf_counter() - t_start
  md += ["", f"Total wall time: {summary['wall_seconds']:.0f} s."]
  (out / "summary.md").write_text("\n".join(md) + "\n")
  common.write_json(out / "summary.json", summary)
  print("\n".join(md), flush=True)
  return summary


if __name__ == "__main__":
  main()
