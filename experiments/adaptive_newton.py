"""Adaptive learning rate by Newton's method (Gorti & Ravaut, adaptive-lr-newton.md).

    python experiments/adaptive_newton.py --quick --out results/adaptive_newton

Methods (all through the vmapped sweep engine, each optimizer its own compiled group,
run one call at a time, so ``history["group_seconds"]`` is that method's wall-clock per
epoch):

* ``SGD``: the paper's *basic method*, plain SGD at the fixed initial rate;
* ``Newton eps=1e-5``: second order (eq. 16-18) with the paper's eps = 1e-5.  In
  float32 its second difference is rounding noise, so the update is mostly the
  smoothed (eq. 18) first-order-like step (see `lrjax.adaptive.newton`);
* ``Newton eps=1e-2``: the same with a finite-difference step large enough for float32
  (a real second-order step on eta);
* ``HD-SGD``: the first-order method (hypergradient descent, eq. 5-8, alpha = 1e-3);
* ``Adam 1e-3`` (section 5.4), and optax's parameter-free ``DoG``, ``Prodigy`` and
  ``Mechanic`` (Mechanic around SGD with base rate 1; DoG/Prodigy at their default
  multiplier 1): these do not depend on the initial rate and run once per task.

Tasks: linear regression on Boston housing, multinomial logistic regression on
Fashion-MNIST, LeNet-5 on CIFAR-10 (batch 32, initial rate 0.01: Figure 1), ResNet-18
with dropout on CIFAR-10 (batch 256, initial rates 0.1 and 0.01: Figures 2 and 4).
Figure 3 is the learned eta of LeNet and ResNet.  Follow-ups: section 5.1, Newton
restarted from the eta it converged to (and SGD fixed at that eta); section 5.4, Newton
against Adam at 1e-3.

``--quick`` (a few minutes on a CPU): Boston (all of it), Fashion-MNIST and CIFAR-10
subsets, few epochs; ResNet-18 only when named in ``--tasks`` and then a tiny config
(8 filters, one block per stage).  Full mode trains the real ResNet-18 (a GPU job).

Writes into ``--out``: ``summary.md`` (tables), ``summary.json``, ``per_epoch.csv``
(task, sweep, epoch, method: train/valid/test loss and accuracy, eta, seconds), the
figures (``fig1_lenet_lr0.01.png``, ``fig2_resnet_lr0.1.png``, ``fig3_learned_eta.png``,
``fig4_resnet_lr0.01.png``, ``<task>_lr<r>.png``, ``eta_<task>.png``,
``sec5_1_restart.png``, ``sec5_4_adam.png``) and each sweep's engine files in
``<task>/<sweep>/``.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

from lrjax.train.api import run_sweep  # noqa: E402
from lrjax.train.frontends.config import SweepConfig, Variant  # noqa: E402
from lrjax.train.reports import plotting  # noqa: E402

PAPER_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class Task:
  name: str
  dataset: str
  model: str
  kind: str  # classification / regression
  batch_size: int
  epochs: int
  quick_epochs: int
  rates: tuple[float, ...]
  train_size: int | None = None  # full mode (None: all)
  quick_train_size: int | None = None
  test_size: int | None = None
  quick_test_size: int | None = None
  model_kwargs: tuple = ()
  quick_model_kwargs: tuple = ()
  title: str = ""


TASKS = {
    "boston": Task("boston", "boston_housing", "linear", "regression", 32, 100, 40,
                   (0.01, 0.1), title="linear regression, Boston housing"),
    "fashion": Task("fashion", "fashion_mnist", "logistic", "classification", 64, 10, 3,
                    (0.01, 0.1), quick_train_size=6000, quick_test_size=2000,
                    title="logistic regression, Fashion-MNIST"),
    "lenet": Task("lenet", "cifar10", "lenet5", "classification", 32, 30, 3, (0.01,),
                  quick_train_size=3000, quick_test_size=1000,
                  model_kwargs=(("conv_impl", "auto"),),
                  quick_model_kwargs=(("conv_impl", "auto"),),
                  title="LeNet-5, CIFAR-10"),
    "resnet": Task("resnet", "cifar10", "resnet18", "classification", 256, 50, 2,
                   (0.1, 0.01), quick_train_size=1024, quick_test_size=500,
                   model_kwargs=(("dropout_rate", 0.2),),
                   quick_model_kwargs=(("dropout_rate", 0.2), ("num_filters", 8),
                                       ("stage_sizes", (1, 1, 1, 1))),
                   title="ResNet-18 + dropout, CIFAR-10"),
}
QUICK_TASKS = ("boston", "fashion", "lenet")
FULL_TASKS = ("boston", "fashion", "lenet", "resnet")


# ---------------------------------------------------------------------------- data
def load_data(name: str, args, *, train_size: int | None, test_size: int | None,
              seed: int = 0):
  """The dataset, cut to random seeded subsets (see `common.get_dataset`)."""
  return common.get_dataset(name, args, train_size=train_size, test_size=test_size, seed=seed)


# ------------------------------------------------------------------------ variants
def newton_name(eps: float) -> str:
  return f"Newton eps={eps:g}" + (" (paper)" if eps == PAPER_EPS else "")


def rate_variants(rate: float, newton_eps, hyper_lr: float, with_fixed: bool = True):
  """SGD, Newton (one per eps) and HD-SGD from the initial rate ``rate``."""
  variants = []
  if with_fixed:
    variants.append(Variant("SGD", "constant", "fixed", rate, "sgd"))
  for eps in newton_eps:
    variants.append(Variant(newton_name(eps), learning_rate=rate, optimizer="newton",
                            optimizer_kwargs={"eps": eps}))
  variants.append(Variant("HD-SGD", learning_rate=rate, optimizer="hypergradient_sgd",
                          optimizer_kwargs={"hyper_lr": hyper_lr}))
  return variants


def reference_variants():
  """Methods that do not depend on the initial rate (run once per task)."""
  return [Variant("Adam 1e-3", "constant", "fixed", 1e-3, "adam"),
          Variant("DoG", learning_rate=1.0, optimizer="dog"),
          Variant("Prodigy", learning_rate=1.0, optimizer="prodigy"),
          Variant("Mechanic", learning_rate=1.0, optimizer="mechanic")]


# The seconds per epoch compared between methods are each group's own: one call at a
# time, not beside another method's call (lrjax.train.engine.plan, concurrent_calls).
ONE_METHOD_AT_A_TIME = 1


# ------------------------------------------------------------------------ analysis
def _nanmean(a):
  a = np.asarray(a, np.float64)
  return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def method_rows(result, task: Task, sweep: str) -> list[dict]:
  """One row per variant of a sweep: final/best metrics, eta, seconds per epoch."""
  h = result.history
  rows = []
  for k, v in enumerate(result.config.variants):
    secs = h["group_seconds"][:, k]
    secs = secs[1:] if secs.size > 1 else secs  # the first epoch warms caches up
    test_acc, test_loss = h["test_acc"][:, k], h["test_loss"][:, k]
    cls = task.kind == "classification"
    finite = np.isfinite(test_acc if cls else test_loss)
    if finite.any():
      best = int(np.nanargmax(test_acc)) if cls else int(np.nanargmin(test_loss))
    else:
      best = None
    rows.append({
        "task": task.name, "sweep": sweep, "method": v.name, "optimizer": v.optimizer,
        "initial_lr": v.learning_rate, "epochs": int(h["train_loss"].shape[0]),
        "final_train_loss": float(h["train_loss"][-1, k]),
        "final_test_loss": float(test_loss[-1]),
        "best_test_loss": float(np.nanmin(test_loss)) if np.isfinite(test_loss).any()
        else float("nan"),
        "final_train_acc": float(h["train_acc"][-1, k]),
        "final_test_acc": float(test_acc[-1]),
        "best_test_acc": float(test_acc[best]) if cls and best is not None else float("nan"),
        "best_epoch": None if best is None else best + 1,
        "final_eta": float(h["lr"][-1, k]),
        "eta_min": float(np.nanmin(result.step_history["step_lr"][:, k]))
        if np.isfinite(result.step_history["step_lr"][:, k]).any() else float("nan"),
        "eta_max": float(np.nanmax(result.step_history["step_lr"][:, k]))
        if np.isfinite(result.step_history["step_lr"][:, k]).any() else float("nan"),
        "seconds_per_epoch": _nanmean(secs),
        "nonfinite": bool(h["nonfinite"][-1, k]),
    })
  return rows


def _f(x, spec=".4f"):
  return "" if x is None or not np.isfinite(x) else format(x, spec)


def markdown_table(rows: list[dict], task: Task) -> str:
  cls = task.kind == "classification"
  sgd_secs = {r["sweep"]: r["seconds_per_epoch"] for r in rows if r["method"] == "SGD"}
  ref = next(iter(sgd_secs.values()), float("nan"))
  if cls:
    head = ("| Sweep | Method | eta0 | Final test acc | Best test acc (epoch) | "
            "Final train acc | Final train loss | Final test loss | Final eta | "
            "eta range (steps) | s/epoch | x SGD | Non-finite |")
  else:
    head = ("| Sweep | Method | eta0 | Final test MSE | Best test MSE (epoch) | "
            "Final train MSE | Final eta | eta range (steps) | s/epoch | x SGD | "
            "Non-finite |")
  lines = [head, "|" + "---|" * (head.count("|") - 1)]
  for r in rows:
    eta_range = ("" if not np.isfinite(r["eta_min"]) else
                 f"{r['eta_min']:.3g} .. {r['eta_max']:.3g}")
    ratio = r["seconds_per_epoch"] / sgd_secs.get(r["sweep"], ref)
    common_tail = (f"{_f(r['final_eta'], '.3g')} | {eta_range} | "
                   f"{_f(r['seconds_per_epoch'], '.3g')} | {_f(ratio, '.2f')} | "
                   f"{'yes' if r['nonfinite'] else ''} |")
    if cls:
      best = "" if r["best_epoch"] is None else f"{r['best_test_acc']:.4f} ({r['best_epoch']})"
      lines.append(f"| {r['sweep']} | {r['method']} | {r['initial_lr']:.3g} | "
                   f"{_f(r['final_test_acc'])} | {best} | {_f(r['final_train_acc'])} | "
                   f"{_f(r['final_train_loss'])} | {_f(r['final_test_loss'])} | "
                   + common_tail)
    else:
      best = "" if r["best_epoch"] is None else f"{r['best_test_loss']:.4g} ({r['best_epoch']})"
      lines.append(f"| {r['sweep']} | {r['method']} | {r['initial_lr']:.3g} | "
                   f"{_f(r['final_test_loss'], '.4g')} | {best} | "
                   f"{_f(r['final_train_loss'], '.4g')} | " + common_tail)
  return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots
STYLE = {"SGD": ("k", "-"), "HD-SGD": ("tab:green", "-"), "Adam 1e-3": ("tab:purple", "--"),
         "DoG": ("tab:brown", ":"), "Prodigy": ("tab:pink", ":"), "Mechanic": ("tab:olive", ":")}


NEWTON_COLORS = {1e-3: "tab:orange", 1e-2: "tab:red"}


def _style(variant):
  """A method's colour and line style, from its optimizer and hyperparameters."""
  if variant.optimizer == "newton":
    eps = dict(variant.optimizer_kwargs).get("eps")
    return ("tab:blue", "-") if eps == PAPER_EPS else (NEWTON_COLORS.get(eps, "tab:cyan"), "-")
  if variant.optimizer == "sgd":
    return ("k", "-") if variant.name == "SGD" else ("0.45", "-")
  return STYLE.get(variant.name, (None, "-"))


def _curves(results, task: Task):
  """(variant, history columns, step lr) of every variant of the given sweeps."""
  out = []
  for res in results:
    for k, v in enumerate(res.config.variants):
      out.append((v, {f: res.history[f][:, k] for f in res.history},
                  res.step_history["step_lr"][:, k, :]))
  return out


def _robust_top(curves) -> float:
  """An upper y limit that keeps diverged curves from flattening the others."""
  maxima = [float(np.nanmax(c)) for c in curves if np.isfinite(c).any()]
  return 3.0 * float(np.median(maxima)) if maxima else 1.0


def _label(name: str, h) -> str:
  return name + (" (diverged)" if np.asarray(h["nonfinite"])[-1] > 0 else "")


ETA_FLOOR = 1e-5  # learned-eta axes stop here; the guard's floor (1e-8) is off the chart


RAW_STEPS = 400  # longer per-step eta curves are drawn as window medians + 10-90% band


def _plot_eta(ax, step_lr, color, ls, label):
  """Per-step eta against the epoch; long noisy runs as a median line and a band."""
  lr = np.asarray(step_lr, np.float64).reshape(-1)
  if not np.isfinite(lr).any():
    return
  per_epoch = step_lr.shape[-1]
  x = np.arange(1, lr.size + 1) / per_epoch
  if lr.size <= RAW_STEPS:
    ax.plot(x, lr, color=color, ls=ls, lw=1.0, label=label)
    return
  w = max(1, lr.size // 150)
  n = lr.size // w * w
  blocks, xb = lr[:n].reshape(-1, w), x[:n].reshape(-1, w).mean(axis=1)
  with np.errstate(all="ignore"):
    lo, med, hi = np.nanpercentile(blocks, [10, 50, 90], axis=1)
  ax.fill_between(xb, lo, hi, color=color, alpha=0.15, lw=0)
  ax.plot(xb, med, color=color, ls=ls, lw=1.2, label=label)


def _eta_axis(ax):
  ax.set_yscale("log")
  lo, hi = ax.get_ylim()
  ax.set_ylim(max(lo, ETA_FLOOR), hi)


def plot_task(path, results, task: Task, title: str):
  """Paper Figures 1/2/4 layout: losses, accuracies and the learned eta per epoch."""
  plt = plotting.pyplot()
  cls = task.kind == "classification"
  panels = [("train_loss", "train loss"), ("test_loss", "test loss")]
  if cls:
    panels += [("train_acc", "train accuracy"), ("test_acc", "test accuracy")]
  panels += [("eta", "learned eta (per step)")]
  fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 4.6))
  curves = _curves(results, task)
  # Loss axes: diverged methods leave the chart instead of flattening it.
  limits = {}
  for field in ("train_loss", "test_loss"):
    top = _robust_top([h[field] for _, h, _ in curves])
    low = min((float(np.nanmin(h[field])) for _, h, _ in curves
               if np.isfinite(h[field]).any()), default=1.0)
    limits[field] = (0.9 * low, 0.55 * top) if cls else (0.8 * low, top)
  for v, h, step_lr in curves:
    color, ls = _style(v)
    epochs = np.arange(1, len(h["train_loss"]) + 1)
    label = _label(v.name, h)
    off = any(np.nanmax(h[f]) > limits[f][1] for f in limits if np.isfinite(h[f]).any())
    if off and "diverged" not in label:
      label += " (loss off chart)"
    for ax, (field, _) in zip(axes, panels, strict=True):
      if field == "eta":
        _plot_eta(ax, step_lr, color, ls, label)
      else:
        ax.plot(epochs, h[field], color=color, ls=ls, lw=1.4, label=label,
                marker="." if len(epochs) <= 12 else None)
  for ax, (field, label) in zip(axes, panels, strict=True):
    ax.set_title(label + ("\n(1e-8 floor = clipped; median + 10-90% band)"
                          if field == "eta" else ""), fontsize=9)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    if field == "eta":
      _eta_axis(ax)
    elif field in limits:
      if not cls:
        ax.set_yscale("log")
      ax.set_ylim(*limits[field])
  handles, labels = axes[0].get_legend_handles_labels()
  rows = -(-len(labels) // 5)
  fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8)
  fig.suptitle(title, fontsize=10)
  plotting.save_figure(fig, path, rect=(0, 0.055 * rows + 0.02, 1, 1))


def plot_eta(path, panels, title: str):
  """Learned eta per step, one panel per (label, results): the paper's Figure 3."""
  plt = plotting.pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
  for ax, (label, results, task) in zip(axes[0], panels, strict=True):
    for v, h, step_lr in _curves(results, task):
      if v.optimizer not in ("newton", "hypergradient_sgd"):
        continue
      color, ls = _style(v)
      _plot_eta(ax, step_lr, color, ls, _label(v.name, h))
    _eta_axis(ax)
    ax.set_title(label + "\n(1e-8 floor = clipped; median + 10-90% band)", fontsize=9)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  plotting.save_figure(fig, path)


def plot_restart(path, entries):
  """Section 5.1: eta and the test metric of the first run and of the restart."""
  plt = plotting.pyplot()
  fig, axes = plt.subplots(2, len(entries), figsize=(5.0 * len(entries), 6.8), squeeze=False)
  for j, (task, first, restart) in enumerate(entries):
    cls = task.kind == "classification"
    field = "test_acc" if cls else "test_loss"
    for res, tag in ((first, "first"), (restart, "restart")):
      for v, h, step_lr in _curves([res], task):
        if tag == "first" and v.optimizer != "newton":
          continue
        color, _ = _style(v)
        ls = "--" if tag == "first" else "-"
        label = _label(v.name if tag == "restart" else f"{v.name} (first run)", h)
        _plot_eta(axes[0][j], step_lr, color, ls, label)
        axes[1][j].plot(np.arange(1, len(h[field]) + 1), h[field], color=color, ls=ls,
                        label=label)
    _eta_axis(axes[0][j])
    axes[0][j].set_title(f"{task.title}: eta", fontsize=9)
    axes[1][j].set_title(f"{task.title}: {field.replace('_', ' ')}", fontsize=9)
    if not cls:
      both = [h[field] for res in (first, restart) for _, h, _ in _curves([res], task)]
      axes[1][j].set_yscale("log")
      axes[1][j].set_ylim(0.8 * min(float(np.nanmin(c)) for c in both if np.isfinite(c).any()),
                          _robust_top(both))
    for ax in axes[:, j]:
      ax.set_xlabel("epoch")
      ax.grid(alpha=0.3)
    axes[1][j].legend(fontsize=6)
  fig.suptitle("Section 5.1: Newton restarted from the eta it converged to "
               "(dashed: first run)", fontsize=10)
  plotting.save_figure(fig, path)


def plot_adam(path, entries):
  """Section 5.4: Newton against Adam at 1e-3 (and plain SGD), test metric per epoch."""
  plt = plotting.pyplot()
  fig, axes = plt.subplots(1, len(entries), figsize=(4.6 * len(entries), 3.6), squeeze=False)
  for ax, (task, results) in zip(axes[0], entries, strict=True):
    cls = task.kind == "classification"
    field = "test_acc" if cls else "test_loss"
    for res in results:
      rate = res.config.variants[0].learning_rate
      for v, h, _ in _curves([res], task):
        if v.name not in ("SGD", "Adam 1e-3") and v.optimizer != "newton":
          continue
        color, ls = _style(v)
        label = _label(v.name if v.name == "Adam 1e-3" else f"{v.name}, eta0={rate:g}", h)
        ax.plot(np.arange(1, len(h[field]) + 1), h[field], color=color,
                ls=ls if rate == results[0].config.variants[0].learning_rate else "-.",
                label=label)
    ax.set_title(f"{task.title}: {field.replace('_', ' ')}", fontsize=9)
    ax.set_xlabel("epoch")
    if not cls:
      shown = [line.get_ydata() for line in ax.get_lines()]
      ax.set_yscale("log")
      ax.set_ylim(0.8 * min(float(np.nanmin(c)) for c in shown if np.isfinite(c).any()),
                  _robust_top(shown))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
  fig.suptitle("Section 5.4: Newton vs Adam (lr 1e-3)", fontsize=10)
  plotting.save_figure(fig, path)


# ---------------------------------------------------------------------------- main
def parse_args(argv=None):
  p = common.base_parser(__doc__.splitlines()[0], "results/adaptive_newton")
  p.add_argument("--tasks", default=None,
                 help=f"comma-separated subset of {sorted(TASKS)} (default: quick "
                      f"{','.join(QUICK_TASKS)}; full {','.join(FULL_TASKS)})")
  p.add_argument("--newton-eps", default=f"{PAPER_EPS:g},1e-3,1e-2",
                 help="comma-separated eps of the Newton variants (paper: 1e-5)")
  p.add_argument("--hyper-lr", type=float, default=1e-3, help="alpha of HD-SGD")
  p.add_argument("--no-restart", action="store_true", help="skip section 5.1")
  p.add_argument("--no-reference", action="store_true",
                 help="skip Adam / DoG / Prodigy / Mechanic")
  # --test-size: experiments/common.py's shared flags
  p.add_argument("--lenet-train-size", type=int, default=None,
                 help="CIFAR-10 training examples for LeNet (random subset)")
  return p.parse_args(argv)


def run_task(task: Task, args, out: Path, newton_eps) -> dict:
  quick = args.quick
  epochs = args.epochs or (task.quick_epochs if quick else task.epochs)
  train_size = task.quick_train_size if quick else task.train_size
  if task.name == "lenet" and args.lenet_train_size:
    train_size = args.lenet_train_size
  test_size = args.test_size or (task.quick_test_size if quick else task.test_size)
  dataset, note = load_data(task.dataset, args, train_size=train_size, test_size=test_size)
  batch = min(task.batch_size, len(dataset.train_x))
  model_kwargs = dict(task.quick_model_kwargs if quick else task.model_kwargs)
  progress = not args.no_progress
  sweeps = []
  for i, rate in enumerate(task.rates):
    variants = rate_variants(rate, newton_eps, args.hyper_lr)
    if i == 0 and not args.no_reference:
      variants += reference_variants()
    config = SweepConfig(model=task.model, variants=tuple(variants), epochs=epochs,
                         batch_size=batch, task=task.kind, checkpoint_every=0,
                         model_kwargs=model_kwargs, concurrent_calls=ONE_METHOD_AT_A_TIME)
    sweep = f"lr{rate:g}"
    print(f"[{task.name}] {sweep}: {len(variants)} methods, {epochs} epochs, batch {batch}",
          flush=True)
    sweeps.append((sweep, run_sweep(config, dataset, out_dir=out / task.name / sweep,
                                    progress=progress)))

  restart = None
  if not args.no_restart:
    # Section 5.1: start Newton at the eta it converged to from the lowest initial rate
    # (the paper: ResNet from 0.01), read as the median eta of the last epoch's steps
    # (the per-step eta is noisy); SGD fixed at the largest-eps Newton's eta.
    first = dict(sweeps)[f"lr{min(task.rates):g}"]
    names = [v.name for v in first.config.variants]

    def converged_eta(eps):
      return float(np.nanmedian(first.step_history["step_lr"][-1, names.index(newton_name(eps))]))

    def diverged(eps):  # a first run that met NaN/inf converged to nothing: no restart
      return bool(first.history["nonfinite"][-1, names.index(newton_name(eps))])

    variants = []
    usable = [eps for eps in newton_eps if not diverged(eps)]
    for eps in newton_eps:
      if eps not in usable:
        print(f"[{task.name}] restart: {newton_name(eps)} diverged in the first run; "
              "not restarted", flush=True)
        continue
      eta = converged_eta(eps)
      if np.isfinite(eta) and eta > 0:
        variants.append(Variant(f"{newton_name(eps)} restart eta0={eta:.3g}",
                                learning_rate=eta, optimizer="newton",
                                optimizer_kwargs={"eps": eps}))
    eta_big = converged_eta(max(usable)) if usable else float("nan")
    if np.isfinite(eta_big) and eta_big > 0:
      variants.append(Variant(f"SGD fixed {eta_big:.3g}", "constant", "fixed", eta_big, "sgd"))
    if variants:
      config = SweepConfig(model=task.model, variants=tuple(variants), epochs=epochs,
                           batch_size=batch, task=task.kind, checkpoint_every=0,
                           model_kwargs=model_kwargs, concurrent_calls=ONE_METHOD_AT_A_TIME)
      print(f"[{task.name}] restart: {[v.name for v in variants]}", flush=True)
      restart = run_sweep(config, dataset, out_dir=out / task.name / "restart",
                          progress=progress)
      sweeps.append(("restart", restart))
  return {"task": task, "note": note, "epochs": epochs, "batch": batch,
          "model_kwargs": model_kwargs, "sweeps": sweeps, "restart": restart,
          "restart_from": f"lr{min(task.rates):g}",
          "train_size": len(dataset.train_x), "test_size": len(dataset.test_x)}


def write_per_epoch(path: Path, runs) -> None:
  fields = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
            "lr", "group_seconds", "nonfinite")
  with path.open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["task", "sweep", "method", "epoch"] +
                    [("eta" if x == "lr" else x) for x in fields])
    for run in runs:
      for sweep, res in run["sweeps"]:
        for k, v in enumerate(res.config.variants):
          for e in range(res.history["train_loss"].shape[0]):
            writer.writerow([run["task"].name, sweep, v.name, e + 1] +
                            [repr(float(res.history[x][e, k])) for x in fields])


def main(argv=None) -> dict:
  args = parse_args(argv)
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  names = (args.tasks.split(",") if args.tasks else
           list(QUICK_TASKS if args.quick else FULL_TASKS))
  unknown = [n for n in names if n not in TASKS]
  if unknown:
    raise SystemExit(f"unknown task(s) {unknown}; choose from {sorted(TASKS)}")
  if args.quick and "resnet" not in names:
    print("resnet: skipped in --quick (ResNet-18 on a CPU takes hours); add "
          "--tasks ...,resnet for a tiny ResNet (8 filters, 1 block per stage)", flush=True)
  newton_eps = tuple(float(x) for x in args.newton_eps.split(","))
  runs = [run_task(TASKS[n], args, out, newton_eps) for n in names]

  md = [f"# Adaptive learning rate by Newton's method ({'quick' if args.quick else 'full'} run)",
        "",
        f"Newton variants: eps = {', '.join(f'{e:g}' for e in newton_eps)}. eps = 1e-5 is "
        "the paper's value: in float32 its second difference is rounding noise, so the "
        "denominator is mostly smoothed (eq. 18) and the eta update becomes "
        "eta - (4 eps^2 / delta) f'(eta) = eta - 4e-4 f'(eta), a first-order (hypergradient-"
        "like) step on the look-ahead loss, not a Newton step. The larger eps give real "
        "Newton steps on eta (per mini-batch line minimisation). HD-SGD: first-order method, "
        "alpha = "
        f"{args.hyper_lr:g}. eta of DoG/Prodigy/Mechanic is not exposed (blank). "
        "s/epoch: wall-clock of the method's own compiled group per epoch (first epoch "
        "excluded), on a shared CPU; x SGD: ratio to plain SGD of the same sweep.", ""]
  summary = {"runs": []}
  all_rows = []
  for run in runs:
    task = run["task"]
    rows = [r for sweep, res in run["sweeps"] for r in method_rows(res, task, sweep)]
    all_rows += rows
    device = run["sweeps"][0][1].device
    md += [f"## {task.title}", "",
           f"Data: {run['note']}; {run['train_size']} train / {run['test_size']} test; "
           f"model {task.model} {run['model_kwargs'] or ''}; batch {run['batch']}; "
           f"{run['epochs']} epochs; device {device}.", "", markdown_table(rows, task)]
    for rate in task.rates:
      res = [r for s, r in run["sweeps"] if s == f"lr{rate:g}"]
      if rate != task.rates[0]:  # the rate-independent references are in the first sweep
        first = run["sweeps"][0][1]
        res = res + [_subset(first, ("Adam 1e-3", "DoG", "Prodigy", "Mechanic"))]
      stem = f"{task.name}_lr{rate:g}"
      if task.name == "lenet" and rate == 0.01:
        stem = "fig1_lenet_lr0.01"
      elif task.name == "resnet" and rate == 0.1:
        stem = "fig2_resnet_lr0.1"
      elif task.name == "resnet" and rate == 0.01:
        stem = "fig4_resnet_lr0.01"
      plot_task(out / f"{stem}.png", [r for r in res if r is not None], task,
                f"{task.title}, initial eta {rate:g}, batch {run['batch']}\n{run['note']}")
    plot_eta(out / f"eta_{task.name}.png",
             [(f"initial eta {s[2:]}" if s.startswith("lr") else s, [r], task)
              for s, r in run["sweeps"]], f"learned eta, {task.title}")
    summary["runs"].append({"task": task.name, "data": run["note"], "epochs": run["epochs"],
                            "batch": run["batch"], "device": device, "rows": rows})
  fig3 = [(f"{r['task'].title}, eta0 {s[2:]}", [res], r["task"]) for r in runs
          if r["task"].name in ("lenet", "resnet") for s, res in r["sweeps"] if s != "restart"]
  if fig3:
    plot_eta(out / "fig3_learned_eta.png", fig3, "Figure 3: learned eta")
  restarts = [(r["task"], dict(r["sweeps"])[r["restart_from"]], r["restart"]) for r in runs
              if r["restart"]]
  if restarts:
    plot_restart(out / "sec5_1_restart.png", restarts)
  plot_adam(out / "sec5_4_adam.png",
            [(r["task"], [res for s, res in r["sweeps"] if s != "restart"]) for r in runs])

  md += ["## Section 5.1: restart from the converged eta", "",
         "Converged eta = median of the per-step eta over the last epoch of the run from the "
         "lowest initial rate; Newton runs that met NaN/inf are not restarted; SGD is fixed "
         "at the eta of the largest non-diverged eps.", ""]
  for r in runs:
    if r["restart"] is None:
      continue
    first = {row["method"]: row for row in all_rows
             if row["task"] == r["task"].name and row["sweep"] == r["restart_from"]}
    rest = [row for row in all_rows if row["task"] == r["task"].name and
            row["sweep"] == "restart"]
    metric = "final_test_acc" if r["task"].kind == "classification" else "final_test_loss"
    for row in rest:
      base = first.get(row["method"].split(" restart")[0])
      md.append(f"- {r['task'].name}: {row['method']}: {metric} {_f(row[metric])}"
                + (f" (first run {_f(base[metric])}, eta {base['initial_lr']:g} -> "
                   f"{_f(base['final_eta'], '.3g')})" if base else "")
                + f"; eta over the restart {_f(row['eta_min'], '.3g')} .. "
                  f"{_f(row['eta_max'], '.3g')}")
  md += ["", "## Section 5.4: Newton vs Adam 1e-3", ""]
  for r in runs:
    metric = "final_test_acc" if r["task"].kind == "classification" else "final_test_loss"
    rows = {(row["sweep"], row["method"]): row for row in all_rows
            if row["task"] == r["task"].name}
    adam = next((row for (s, m), row in rows.items() if m == "Adam 1e-3"), None)
    newton = [row for (s, m), row in rows.items()
              if row["optimizer"] == "newton" and s != "restart"]
    if adam and newton:
      best = (max if metric == "final_test_acc" else min)(
          newton, key=lambda x: x[metric] if np.isfinite(x[metric]) else
          (-np.inf if metric == "final_test_acc" else np.inf))
      md.append(f"- {r['task'].name}: Adam 1e-3 {metric} {_f(adam[metric])} vs best Newton "
                f"({best['method']}, eta0 {best['initial_lr']:g}) {_f(best[metric])}; "
                f"s/epoch {_f(adam['seconds_per_epoch'], '.3g')} vs "
                f"{_f(best['seconds_per_epoch'], '.3g')}")
  (out / "summary.md").write_text("\n".join(md) + "\n")
  write_per_epoch(out / "per_epoch.csv", runs)
  common.write_json(out / "summary.json", common.jsonable(summary))
  print("\n".join(md), flush=True)
  return summary


def _subset(result, names):
  """A shallow SweepResult-like view holding only the variants called ``names``."""
  keep = [k for k, v in enumerate(result.config.variants) if v.name in names]
  if not keep:
    return None
  config = dataclasses.replace(result.config,
                               variants=tuple(result.config.variants[k] for k in keep))
  return dataclasses.replace(
      result, config=config,
      history={f: a[:, keep] for f, a in result.history.items()},
      step_history={f: a[:, keep] for f, a in result.step_history.items()})


if __name__ == "__main__":
  main()
