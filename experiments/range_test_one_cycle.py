"""LR range test and the one-cycle policy on CIFAR-10 (lr-range-test-one-cycle.md).

    python experiments/range_test_one_cycle.py --quick --out results/range_test_one_cycle

1. **Range test** (Smith 2015): one run whose rate grows exponentially after every
   mini-batch, ``lr_i = init (max / init)^(i / n)`` (`lrjax.schedules.lr_range_test`,
   rule ``step``), from ``--init-lr`` (1e-4) to ``--max-lr`` (10) over
   ``--range-epochs`` epochs.  The loss is smoothed by an exponential moving average
   (0.98, bias-corrected) and plotted against the rate on a log axis until it
   explodes (smoothed loss > 4x its minimum, or NaN).  Suggested rate: one order of
   magnitude below the rate of minimum loss (the document's rule).
2. **Parallel range test**, which the vmapped engine makes cheap: K fixed rates on the
   same log grid trained side by side for the same budget; the final training loss
   against the rate is put on the same figure.
3. **One cycle** (Smith 2018): ``one_cycle(max/10, max, s, T, 10)`` with max = the
   suggested rate, two equal linear steps of ``s = round(41/95 T)`` iterations (the
   document's 41 + 41 of 95 epochs) then annihilation to 1/10 of the lower bound,
   against the same cycle without annihilation (it stays at the lower bound), and
   fixed rates at the upper and at the lower bound.

Deviations from the document, said in the output too: the model is the report's
CifarCNN (the document used ResNet-56); no weight decay (the engine has none; the
document used 1e-4); momentum is kept at 0.9 (Smith also cycles momentum 0.95 -> 0.85
-> 0.95, which the engine's fixed-decay momentum cannot do); batch 128 on a CIFAR-10
subset instead of 512 on the full set (CPU budget).

Writes into ``--out``: ``range_test.png``, ``range_test.json``, ``one_cycle.png``,
``summary.md``, ``summary.json`` and the engine's files of both sweeps
(``range/``, ``one_cycle/``: results.json, history.csv, summary.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402
from lrjax.train.config import SweepConfig, Variant  # noqa: E402
from lrjax.train.sweep import run_sweep  # noqa: E402

MOMENTUM = {"momentum": 0.9}
DEVIATIONS = (
    "Model: the report's CifarCNN (the document's run used ResNet-56). No weight decay "
    "(the document: 1e-4; the engine has none). Momentum fixed at 0.9 (Smith also cycles "
    "momentum 0.95 -> 0.85 -> 0.95; the engine's momentum has a fixed decay). Batch "
    "{batch} on a CIFAR-10 subset (the document: 512 on the full set).")


# ---------------------------------------------------------------------------- data
def load_data(name: str, args, *, train_size: int | None, test_size: int | None,
              seed: int = 0):
  """The dataset, cut to random seeded subsets (see `common.get_dataset`)."""
  return common.get_dataset(name, args, train_size=train_size, test_size=test_size, seed=seed)


# ---------------------------------------------------------------------- range test
def ema_smooth(values, beta: float = 0.98) -> np.ndarray:
  """Bias-corrected exponential moving average (fastai's range-test smoothing).

  A non-finite value stops the average: it and everything after it are NaN.
  """
  values = np.asarray(values, np.float64)
  out = np.full(values.shape, np.nan)
  avg = 0.0
  for i, v in enumerate(values):
    if not np.isfinite(v):
      break
    avg = beta * avg + (1.0 - beta) * v
    out[i] = avg / (1.0 - beta ** (i + 1))
  return out


def analyse_range_test(lrs, losses, *, beta: float = 0.98, explode: float = 4.0,
                       skip_start: int = 0, bounds: tuple[float, float] | None = None
                       ) -> dict:
  """Minimum-loss rate, suggested rate and explosion point of a range test.

  Args:
    lrs, losses: the rate and the mini-batch loss of every step.
    beta: EMA factor of the smoothing.
    explode: the curve stops before the first step whose smoothed loss exceeds
      ``explode`` x the running minimum, or that is NaN.
    skip_start: steps ignored when looking for the minimum (the EMA's first steps).
    bounds: the tested range (default: the range of ``lrs``) the suggestion is kept in.

  Returns:
    A dict with the smoothed curve, ``stop`` (number of steps kept), ``min_lr``,
    ``min_loss``, ``suggested_lr`` (``min_lr / 10``, clipped into the tested range)
    and ``clipped`` (whether it was).
  """
  lrs = np.asarray(lrs, np.float64)
  smooth = ema_smooth(losses, beta)
  finite = np.isfinite(smooth)
  stop = int(np.argmin(finite)) if not finite.all() else len(smooth)
  stop = max(stop, 1)
  running_min = np.minimum.accumulate(np.where(finite, smooth, np.inf)[:stop])
  exploded = np.nonzero(smooth[:stop] > explode * running_min)[0]
  if exploded.size:
    stop = max(int(exploded[0]), 1)  # the curve ends before the first exploded step
  start = min(skip_start, stop - 1)
  best = start + int(np.nanargmin(smooth[start:stop]))
  min_lr = float(lrs[best])
  suggested = min_lr / 10.0
  lo, hi = bounds or (float(np.nanmin(lrs)), float(np.nanmax(lrs)))
  clipped = not lo <= suggested <= hi
  suggested = float(np.clip(suggested, lo, hi))
  return {"smoothed": smooth, "stop": stop, "min_index": best, "min_lr": min_lr,
          "min_loss": float(smooth[best]), "suggested_lr": suggested, "clipped": clipped,
          "exploded": bool(exploded.size) or stop < len(smooth)}


def range_variants(init_lr: float, max_lr: float, num_steps: int, grid: np.ndarray):
  variants = [Variant("range test", "lr_range_test", "step", init_lr, "momentum",
                      sequence_kwargs={"max_lr": max_lr, "num_steps": num_steps},
                      optimizer_kwargs=MOMENTUM)]
  for lr in grid:
    variants.append(Variant(f"fixed {lr:.3g}", "constant", "fixed", float(lr), "momentum",
                            optimizer_kwargs=MOMENTUM))
  return tuple(variants)


# ----------------------------------------------------------------------- one cycle
def cycle_steps(total_steps: int) -> int:
  """The document's step length, 41 of 95 epochs: two steps slightly shorter than T."""
  return max(1, min(total_steps // 2, int(round(total_steps * 41 / 95))))


def one_cycle_variants(max_lr: float, total_steps: int, seeds, *,
                       lower_div: float = 10.0, annihilation: float = 10.0):
  min_lr = max_lr / lower_div
  step = cycle_steps(total_steps)
  variants = []
  for seed in seeds:
    sfx = f"/s{seed}" if len(seeds) > 1 else ""
    cycle = {"max_lr": max_lr, "step_size": step, "total_steps": total_steps}
    variants += [
        Variant(f"one-cycle{sfx}", "one_cycle", "step", min_lr, "momentum", seed,
                sequence_kwargs={**cycle, "annihilation_factor": annihilation},
                optimizer_kwargs=MOMENTUM),
        Variant(f"cycle, no annihilation{sfx}", "one_cycle", "step", min_lr, "momentum",
                seed, sequence_kwargs={**cycle, "annihilation_factor": 1.0},
                optimizer_kwargs=MOMENTUM),
        Variant(f"fixed {max_lr:.3g} (max){sfx}", "constant", "fixed", max_lr, "momentum",
                seed, optimizer_kwargs=MOMENTUM),
        Variant(f"fixed {min_lr:.3g} (min){sfx}", "constant", "fixed", min_lr, "momentum",
                seed, optimizer_kwargs=MOMENTUM),
    ]
  return tuple(variants), {"min_lr": min_lr, "max_lr": max_lr, "step_size": step,
                           "total_steps": total_steps,
                           "final_lr": min_lr / annihilation}


# --------------------------------------------------------------------------- plots
def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_range_test(path, lrs, losses, info, grid, final_train, final_valid, budget: str,
                    title: str):
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(10, 4.8))
  stop = info["stop"]
  smooth = info["smoothed"][:stop]
  ax.plot(lrs[:stop], losses[:stop], color="tab:blue", alpha=0.25, lw=0.8,
          label="range test, mini-batch loss")
  ax.plot(lrs[:stop], smooth, color="tab:blue", lw=2,
          label="range test, smoothed (EMA 0.98)")
  # y range: the useful part (start of the test down to the lowest loss seen).
  seen = np.concatenate([smooth, final_train[np.isfinite(final_train)],
                         final_valid[np.isfinite(final_valid)]])
  ymin = 0.9 * float(np.nanmin(seen))
  ymax = 1.15 * float(np.nanmax(smooth))  # parallel runs above it did worse than no training
  on = np.isfinite(final_train) & (final_train <= ymax)
  ax.plot(grid[on], final_train[on], "o-", color="tab:orange", lw=1.5,
          label=f"parallel test: final train loss ({budget})")
  von = np.isfinite(final_valid) & (final_valid <= ymax)
  ax.plot(grid[von], final_valid[von], "s--", color="tab:green", lw=1, ms=4,
          label="parallel test: final valid loss")
  off = ~on
  if off.any():
    ax.plot(grid[off], np.full(off.sum(), ymax - 0.03 * (ymax - ymin)), "^",
            color="tab:red", ms=8, label="parallel test: diverged / off the chart")
  if info["exploded"] and stop < len(lrs):
    ax.axvline(lrs[stop], color="tab:red", ls="-.", lw=1,
               label=f"range test explodes (> 4x min) at {lrs[stop]:.3g}")
  ax.axvline(info["min_lr"], color="k", ls=":", lw=1.2,
             label=f"min smoothed loss at {info['min_lr']:.3g}")
  ax.axvline(info["suggested_lr"], color="tab:purple", ls="--", lw=1.5,
             label=f"suggested (min / 10) {info['suggested_lr']:.3g}")
  ax.set_xscale("log")
  ax.set_xlim(grid[0] / 1.5, grid[-1] * 1.5)
  ax.set_ylim(ymin, ymax)
  ax.set_xlabel("learning rate (log)")
  ax.set_ylabel("cross-entropy loss")
  ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_one_cycle(path, result, title: str):
  plt = _pyplot()
  h, names = result.history, result.names
  epochs = np.arange(1, h["train_loss"].shape[0] + 1)
  fig, axes = plt.subplots(1, 4, figsize=(17, 3.9))
  for k, name in enumerate(names):
    style = {"ls": "--" if "no annihilation" in name else "-",
             "lw": 2.2 if name.startswith("one-cycle") else 1.4}
    axes[0].plot(epochs, h["train_loss"][:, k], label=name, **style)
    axes[1].plot(epochs, h["valid_loss"][:, k], label=name, **style)
    axes[2].plot(epochs, h["test_acc"][:, k], label=name, **style)
    lr = result.step_history["step_lr"][:, k, :].reshape(-1)
    x = np.arange(1, lr.size + 1) / result.step_history["step_lr"].shape[2]
    axes[3].plot(x, lr, label=name, **style)
  for ax, t in zip(axes, ("train loss", "valid loss", "test accuracy",
                          "learning rate (per step)")):
    ax.set_title(t)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
  axes[3].set_ylim(bottom=0)
  axes[0].legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


# ---------------------------------------------------------------------------- main
def _fmt(x, digits=4):
  return "" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def one_cycle_table(result, meta) -> tuple[str, list[dict]]:
  h, names = result.history, result.names
  rows = []
  for k, name in enumerate(names):
    test_acc = h["test_acc"][:, k]
    secs = h["group_seconds"][1:, k] if h["group_seconds"].shape[0] > 1 else \
        h["group_seconds"][:, k]
    rows.append({
        "name": name,
        "final_test_acc": float(test_acc[-1]),
        "best_test_acc": float(np.nanmax(test_acc)) if np.isfinite(test_acc).any() else None,
        "best_epoch": int(np.nanargmax(test_acc)) + 1 if np.isfinite(test_acc).any() else None,
        "final_valid_acc": float(h["valid_acc"][-1, k]),
        "final_train_loss": float(h["train_loss"][-1, k]),
        "final_valid_loss": float(h["valid_loss"][-1, k]),
        "final_lr": float(h["lr"][-1, k]),
        "seconds_per_epoch": float(np.nanmean(secs)),
        "nonfinite": bool(h["nonfinite"][-1, k]),
    })
  lines = ["| Method | Final test acc | Best test acc (epoch) | Final valid acc | "
           "Final train loss | Final valid loss | Final lr | s/epoch (group) |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    best = "" if r["best_test_acc"] is None else f"{r['best_test_acc']:.4f} ({r['best_epoch']})"
    lines.append(f"| {r['name']} | {_fmt(r['final_test_acc'])} | {best} | "
                 f"{_fmt(r['final_valid_acc'])} | {_fmt(r['final_train_loss'])} | "
                 f"{_fmt(r['final_valid_loss'])} | {r['final_lr']:.3g} | "
                 f"{r['seconds_per_epoch']:.1f} |")
  # Seeds: mean over seeds per method.
  if any("/s" in n for n in names):
    base = sorted({n.rsplit("/s", 1)[0] for n in names})
    lines += ["", "Mean +- std over seeds:", "",
              "| Method | Final test acc | Best test acc |", "|---|---|---|"]
    for b in base:
      fin = np.array([r["final_test_acc"] for r in rows if r["name"].rsplit("/s", 1)[0] == b])
      best = np.array([r["best_test_acc"] or np.nan for r in rows
                       if r["name"].rsplit("/s", 1)[0] == b])
      lines.append(f"| {b} | {np.nanmean(fin):.4f} +- {np.nanstd(fin):.4f} | "
                   f"{np.nanmean(best):.4f} +- {np.nanstd(best):.4f} |")
  return "\n".join(lines) + "\n", rows


def parse_args(argv=None):
  p = common.base_parser(__doc__.splitlines()[0], "results/range_test_one_cycle")
  p.add_argument("--batch-size", type=int, default=None,
                 help="default 64 with --quick (more range-test steps), else 128")
  p.add_argument("--init-lr", type=float, default=1e-4, help="range test start")
  p.add_argument("--max-lr", type=float, default=10.0, help="range test end")
  p.add_argument("--range-epochs", type=int, default=None,
                 help="epochs of the range test and of the parallel test")
  p.add_argument("--grid", type=int, default=None,
                 help="number of fixed rates of the parallel range test")
  p.add_argument("--test-size", type=int, default=None,
                 help="validation/test examples kept (random subset)")
  p.add_argument("--model", default="cifar_cnn", help="cifar_cnn or lenet5")
  return p.parse_args(argv)


def main(argv=None) -> dict:
  args = parse_args(argv)
  quick = args.quick
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  range_epochs = args.range_epochs or (3 if quick else 2)
  cycle_epochs = args.epochs or (6 if quick else 8)
  num_grid = args.grid or (7 if quick else 9)
  seeds = tuple(range(args.seeds or 1))
  dataset, note = load_data("cifar10", args, train_size=2000 if quick else 15000,
                            test_size=args.test_size or (500 if quick else 2000))
  model_kwargs = {"conv_impl": "auto"}  # the fastest per backend (lrjax.models.default_conv_impl)
  batch = min(args.batch_size or (64 if quick else 128), len(dataset.train_x))
  steps = len(dataset.train_x) // batch
  progress = not args.no_progress

  # 1 + 2. range test and parallel range test, one sweep (same data order).
  range_steps = range_epochs * steps
  grid = np.geomspace(args.init_lr, args.max_lr, num_grid)
  config = SweepConfig(model=args.model, variants=range_variants(
      args.init_lr, args.max_lr, range_steps, grid), epochs=range_epochs, batch_size=batch,
      checkpoint_every=0, model_kwargs=model_kwargs)
  print(f"range test: {range_steps} steps from {args.init_lr:g} to {args.max_lr:g}; "
        f"parallel test: {num_grid} fixed rates, {range_epochs} epochs", flush=True)
  rres = run_sweep(config, dataset, out_dir=out / "range", progress=progress)
  lrs = rres.step_history["step_lr"][:, 0, :].reshape(-1).astype(np.float64)
  losses = rres.step_history["step_loss"][:, 0, :].reshape(-1).astype(np.float64)
  info = analyse_range_test(lrs, losses, skip_start=min(10, len(lrs) // 10),
                            bounds=(args.init_lr, args.max_lr))
  final_train = rres.history["train_loss"][-1, 1:]
  final_valid = rres.history["valid_loss"][-1, 1:]
  ok = np.isfinite(final_train)
  parallel_best = float(grid[np.nanargmin(np.where(ok, final_train, np.nan))]) if ok.any() \
      else None
  budget = f"{range_epochs} epochs = {range_steps} steps"
  title = (f"LR range test, {args.model} on CIFAR-10 ({len(dataset.train_x)} train), "
           f"batch {batch}, momentum 0.9\n{note}")
  plot_range_test(out / "range_test.png", lrs, losses, info, grid, final_train,
                  final_valid, budget, title)
  range_json = {
      "init_lr": args.init_lr, "max_lr": args.max_lr, "num_steps": range_steps,
      "lr": lrs, "loss": losses, "smoothed": info["smoothed"], "stop": info["stop"],
      "min_lr": info["min_lr"], "min_loss": info["min_loss"],
      "suggested_lr": info["suggested_lr"], "suggested_clipped": info["clipped"],
      "exploded": info["exploded"],
      "parallel": {"lr": grid, "final_train_loss": final_train,
                   "final_valid_loss": final_valid,
                   "final_valid_acc": rres.history["valid_acc"][-1, 1:],
                   "best_lr": parallel_best},
      "range_seconds": float(np.nansum(rres.history["group_seconds"][:, 0])),
      "parallel_seconds": float(np.nansum(rres.history["group_seconds"][:, 1])),
  }
  common.write_json(out / "range_test.json", common.jsonable(range_json))
  print(f"range test: min smoothed loss {info['min_loss']:.3f} at lr {info['min_lr']:.3g}; "
        f"suggested {info['suggested_lr']:.3g}; parallel best fixed rate "
        f"{parallel_best}", flush=True)

  # 3. one cycle with max = the suggested rate.
  total = cycle_epochs * steps
  variants, cycle = one_cycle_variants(info["suggested_lr"], total, seeds)
  config = SweepConfig(model=args.model, variants=variants, epochs=cycle_epochs,
                       batch_size=batch, checkpoint_every=0, model_kwargs=model_kwargs)
  print(f"one cycle: {cycle}", flush=True)
  cres = run_sweep(config, dataset, out_dir=out / "one_cycle", progress=progress)
  plot_one_cycle(out / "one_cycle.png", cres,
                 f"one cycle {cycle['min_lr']:.3g} -> {cycle['max_lr']:.3g} -> "
                 f"{cycle['min_lr']:.3g} (step {cycle['step_size']} of {total} iterations)"
                 f" -> {cycle['final_lr']:.3g}; {args.model}, CIFAR-10, batch {batch}, "
                 f"momentum 0.9\n{note}")
  table, rows = one_cycle_table(cres, cycle)

  md = [f"# LR range test and one cycle ({'quick' if quick else 'full'} run)", "",
        f"Data: {note}; train/valid/test = {len(dataset.train_x)}/{len(dataset.valid_x)}/"
        f"{len(dataset.test_x)}. Device: {rres.device}.", "",
        DEVIATIONS.format(batch=batch), "",
        "## Range test", "",
        f"- ramp {args.init_lr:g} -> {args.max_lr:g} over {range_steps} steps "
        f"({range_epochs} epochs), SGD momentum 0.9",
        f"- minimum smoothed loss {info['min_loss']:.3f} at lr = **{info['min_lr']:.3g}**",
        f"- suggested rate (one order lower) = **{info['suggested_lr']:.3g}**"
        + (" (clipped into the tested range)" if info["clipped"] else ""),
        "- loss explodes (smoothed > 4x min): "
        + (f"yes, at lr {lrs[info['stop']]:.3g} (curve drawn up to {lrs[info['stop'] - 1]:.3g})"
           if info["exploded"] and info["stop"] < len(lrs) else "no"),
        f"- parallel range test ({num_grid} fixed rates, {budget} each, one vmapped "
        f"program): lowest final train loss at lr = **{parallel_best if parallel_best is None else format(parallel_best, '.3g')}**",
        f"- wall time: range test {range_json['range_seconds']:.0f} s, parallel test "
        f"{range_json['parallel_seconds']:.0f} s ({num_grid} runs)", "",
        "| fixed lr | final train loss | final valid loss | final valid acc |",
        "|---|---|---|---|"]
  for lr, tl, vl, va in zip(grid, final_train, final_valid,
                            rres.history["valid_acc"][-1, 1:]):
    md.append(f"| {lr:.3g} | {_fmt(tl)} | {_fmt(vl)} | {_fmt(va)} |")
  md += ["", "## One cycle", "",
         f"one_cycle({cycle['min_lr']:.3g}, {cycle['max_lr']:.3g}, step_size="
         f"{cycle['step_size']}, total_steps={total}, annihilation 10 -> "
         f"{cycle['final_lr']:.3g}); {cycle_epochs} epochs of {steps} steps.", "", table]
  (out / "summary.md").write_text("\n".join(md) + "\n")
  summary = {"data": note, "device": rres.device, "range_test": {
      k: v for k, v in range_json.items() if k not in ("lr", "loss", "smoothed")},
      "one_cycle": {"schedule": cycle, "epochs": cycle_epochs, "rows": rows},
      "compile_seconds": rres.compile_seconds + cres.compile_seconds}
  common.write_json(out / "summary.json", common.jsonable(summary))
  print("\n".join(md), flush=True)
  return summary


if __name__ == "__main__":
  main()
