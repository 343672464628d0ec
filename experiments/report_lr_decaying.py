"""Yang & Huang, "Learning rate investigation" (2019): 4 sequences x 3 strategies + 2 benchmarks.

    python experiments/report_lr_decaying.py --out results/report_lr_decaying     # full
    python experiments/report_lr_decaying.py --quick --out results/report_quick   # CPU, minutes

The report's 14 settings (`lrjax.train.report_variants`: SGD with r0 = 0.01 and the
sequences seq1..seq4 advanced "By Epoch", "By Cutoff", "By Oscillate"; SGD and Adam at a
fixed 0.001), every seed of ``--seeds`` in the *same* vmapped sweep (two compiled
groups: SGD and Adam), on

* MNIST with the report's MnistCNN, 50 epochs (Figure 5 shows the first 50 epochs),
* CIFAR-10 with the report's CifarCNN, 25 epochs (Table 2's longest convergence is 25).

Choices the report leaves open, said in the output too: batch size 64 (not stated in the
report; 64 is the default of the PyTorch MNIST example the MNIST model follows), the
validation set is 10% of the training set drawn at random (the report only says it
split the data), Flax's default initialisers, dropout 0.25 in CifarCNN.  The
convergence epoch is the engine's (`lrjax.train.reports.metrics`): the first epoch after which
the validation accuracy stays within ``--tolerance`` (absolute, default 0.005) of its
final value; the report does not define its own.  The "optimal settings" of Figures 5
and 7b are chosen as the report does: within each strategy the sequence that converges
fastest and the one with the best final accuracy (seed means).

``--quick``: 1 seed, 3 epochs, a random 2,000-example training subset and 500
validation/test examples per dataset (a few minutes on a CPU for both datasets);
without the data files it falls back to a synthetic stand-in.

``--loss0``: which validation loss is By Cutoff's ``loss_0`` (``c_0 = 0.01 loss_0``).
``untrained`` (the default, the report's reading of Algorithm 2): the untrained model's,
observed before epoch 1 (`SweepConfig.observe_untrained_loss`); ``first-epoch``: no
observation before training, the loss after epoch 1 is the first (as
`lrjax.strategies.strategy` defines the strategies without an initial observation).
In the engine the choice changes only the strategies that read the loss: By Cutoff
(its ``c_0`` and its first comparison) and By Oscillate, whose first comparison is
``loss_1 > loss_0``: with ``untrained`` it advances after epoch 1 only where epoch 1
*raised* the validation loss above the untrained model's, which the run checks and
writes (``info.loss0_changes_oscillate``).  By Epoch and the benchmarks never read
the loss.  ``--strategies cutoff`` runs only the By Cutoff settings (e.g. the other
reading of ``loss_0`` beside a full run).  The reading and the settings are part of
the run's identity: checkpoints of one refuse to resume the other.

Writes into ``--out/<dataset>/``: the engine's ``results.json``, ``history.csv``,
``summary.md``; ``comparison.md``, ``comparison.csv``, ``comparison.json`` (ours, mean
± std over seeds, beside the report's Tables 1-2); figures ``fig1_sequences.png``,
per strategy ``fig2_by_epoch.png``, ``fig3_by_cutoff.png``, ``fig4_by_oscillate.png``
(MNIST) / ``fig6a_by_epoch.png``, ``fig6b_by_cutoff.png``, ``fig7a_by_oscillate.png``
(CIFAR-10), the optimal settings against the benchmarks ``fig5_optimal.png`` /
``fig7b_optimal.png``, and ``lr_curves.png``; ``observations.md`` / ``.json``: the
report's numbered observations checked against the seeds (`report_observations`, runs
of all 14 settings only).  ``--out/summary.md`` and
``summary.json`` hold both datasets.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

from lrjax.models import CONV_IMPLS  # noqa: E402
from lrjax.train.api import run_sweep  # noqa: E402
from lrjax.train.frontends.config import SweepConfig, report_variants  # noqa: E402
from lrjax.train.reports import plotting  # noqa: E402
from lrjax.train.runner.checkpoint import DifferentSweepError  # noqa: E402

# ------------------------------------------------------------------ the report's numbers
# Tables 1 and 2 of the report, typed in: (final validation accuracy, convergence epoch).
REPORT_TABLES = {
    "mnist": {
        "SGD": (0.98264, 34), "Adam": (0.98574, 30),
        "By Epoch seq1": (0.97608, 48), "By Epoch seq2": (0.98230, 38),
        "By Epoch seq3": (0.98263, 19), "By Epoch seq4": (0.98527, 40),
        "By Cutoff seq1": (0.98290, 32), "By Cutoff seq2": (0.98405, 28),
        "By Cutoff seq3": (0.98614, 29), "By Cutoff seq4": (0.98656, 22),
        "By Oscillate seq1": (0.98372, 25), "By Oscillate seq2": (0.98544, 27),
        "By Oscillate seq3": (0.98514, 24), "By Oscillate seq4": (0.98586, 30),
    },
    "cifar10": {
        "SGD": (0.7487, 25), "Adam": (0.7309, 17),
        "By Epoch seq1": (0.763, 8), "By Epoch seq2": (0.7696, 12),
        "By Epoch seq3": (0.7803, 11), "By Epoch seq4": (0.7679, 14),
        "By Cutoff seq1": (0.7714, 15), "By Cutoff seq2": (0.6438, 25),
        "By Cutoff seq3": (0.6004, 25), "By Cutoff seq4": (0.5848, 25),
        "By Oscillate seq1": (0.7677, 8), "By Oscillate seq2": (0.773, 11),
        "By Oscillate seq3": (0.7692, 15), "By Oscillate seq4": (0.7673, 12),
    },
}
REPORT_TABLE_NAMES = {"mnist": "Table 1: MNIST Comparison", "cifar10": "Table 2: CIFAR Comparison"}

GROUPS = (("Benchmark", ("SGD", "Adam")),
          ("By Epoch", tuple(f"By Epoch seq{i}" for i in range(1, 5))),
          ("By Cutoff", tuple(f"By Cutoff seq{i}" for i in range(1, 5))),
          ("By Oscillate", tuple(f"By Oscillate seq{i}" for i in range(1, 5))))
SETTINGS = tuple(name for _, names in GROUPS for name in names)
STRATEGIES = ("By Epoch", "By Cutoff", "By Oscillate")
# ``--strategies`` choices: the settings' rule (`Variant.rule`) and their table group.
STRATEGY_RULES = {"benchmarks": ("fixed", "Benchmark"), "epoch": ("epoch", "By Epoch"),
                  "cutoff": ("cutoff", "By Cutoff"), "oscillate": ("oscillate", "By Oscillate")}
# ``--loss0`` choices -> `SweepConfig.observe_untrained_loss`.
LOSS0_READINGS = {"untrained": True, "first-epoch": False}

# Per dataset: model, epochs (full), the report's figure numbers.
DATASETS = {
    "mnist": {"model": "mnist_cnn", "epochs": 50, "title": "MNIST",
              "figures": {"By Epoch": "fig2_by_epoch", "By Cutoff": "fig3_by_cutoff",
                          "By Oscillate": "fig4_by_oscillate", "optimal": "fig5_optimal"}},
    "cifar10": {"model": "cifar_cnn", "epochs": 25, "title": "CIFAR-10",
                "figures": {"By Epoch": "fig6a_by_epoch", "By Cutoff": "fig6b_by_cutoff",
                            "By Oscillate": "fig7a_by_oscillate", "optimal": "fig7b_optimal"}},
}
R0, BENCHMARK_LR = 0.01, 0.001
BATCH_SIZE = 64
CHOICES = ("Batch size 64 (the report does not state it; 64 is the PyTorch MNIST example's "
           "default). Validation = a random 10% of the training set. Flax default "
           "initialisers; CifarCNN dropout 0.25 (not stated in the report).")


# ------------------------------------------------------------------------ analysis
def named_settings() -> tuple:
  """The 14 settings, one variant each, named as in the tables (no seed suffix)."""
  return report_variants(R0, BENCHMARK_LR, seeds=(0,))


def select_variants(variants, strategies) -> tuple:
  """The variants whose rule is one of ``strategies`` (keys of `STRATEGY_RULES`), in
  their order."""
  rules = {STRATEGY_RULES[s][0] for s in strategies}
  return tuple(v for v in variants if v.rule in rules)


def present_groups(by_setting) -> tuple:
  """`GROUPS` restricted to the settings present in ``by_setting`` (a run of a subset
  of the strategies, ``--strategies``), empty groups left out."""
  groups = []
  for group, settings in GROUPS:
    kept = tuple(s for s in settings if s in by_setting)
    if kept:
      groups.append((group, kept))
  return tuple(groups)


def loss0_changes_oscillate(result) -> list[str] | None:
  """The By Oscillate variants whose validation loss after epoch 1 is above the
  untrained model's: only there does the ``--loss0`` reading change By Oscillate (the
  untrained reading advances after epoch 1, the other cannot).  None when the run did
  not record the untrained loss or trained no By Oscillate setting."""
  initial = (getattr(result, "initial", None) or {}).get("valid_loss")
  names = [v.name for v in result.config.variants if v.rule == "oscillate"]
  if initial is None or not names:
    return None
  first = np.asarray(result.history["valid_loss"])[0]
  return [v.name for k, v in enumerate(result.config.variants)
          if v.rule == "oscillate" and first[k] > initial[k]]


def aggregate(result, dataset_name: str) -> list[dict]:
  """One row per setting: mean/std over seeds of our numbers (the library's
  `aggregate_seeds`, settings by identity), beside the report's."""
  by_setting = common.seed_aggregates(result, named_settings())
  reference = REPORT_TABLES[dataset_name]
  stat = common.stat
  rows = []
  for group, settings in present_groups(by_setting):
    for setting in settings:
      agg = by_setting[setting]
      per_seed = agg["per_seed"]
      rep_acc, rep_conv = reference[setting]
      rows.append({
          "group": group, "setting": setting,
          "sequence": setting.split()[-1] if group != "Benchmark" else setting,
          "seeds": agg["seeds"],
          "final_valid_acc_mean": stat(agg, "final_valid_acc"),
          "final_valid_acc_std": stat(agg, "final_valid_acc", "std"),
          "convergence_epoch_mean": stat(agg, "convergence_epoch"),
          "convergence_epoch_std": stat(agg, "convergence_epoch", "std"),
          "final_test_acc_mean": stat(agg, "final_test_acc"),
          "final_test_acc_std": stat(agg, "final_test_acc", "std"),
          "best_valid_acc_mean": stat(agg, "best_valid_acc"),
          "final_lr_mean": stat(agg, "final_lr"),
          "sequence_advances_mean": stat(agg, "sequence_advances"),
          "nonfinite_seeds": int(agg["nonfinite_seeds"]),
          "per_seed_valid_acc": per_seed.get("final_valid_acc", []),
          "per_seed_convergence": per_seed.get("convergence_epoch", []),
          "report_acc": rep_acc, "report_convergence": rep_conv,
      })
  return rows


def _pick(rows, key: str, best: str) -> str:
  """The setting of ``rows`` with the min/max ``key`` (ties: better accuracy, then
  faster convergence)."""
  def sort_key(r):
    value = r[key]
    value = value if math.isfinite(value) else (math.inf if best == "min" else -math.inf)
    acc = r["acc"] if math.isfinite(r["acc"]) else -math.inf
    conv = r["conv"] if math.isfinite(r["conv"]) else math.inf
    return (value if best == "min" else -value, -acc, conv)
  return min(rows, key=sort_key)["setting"]


def optimal_settings(rows, source: str = "ours") -> dict[str, dict[str, str]]:
  """Per strategy, the fastest-converging and the most accurate setting (the report's
  first stage).  ``source``: "ours" (seed means) or "report" (Tables 1-2)."""
  picks = {}
  for strategy in STRATEGIES:
    group = [r for r in rows if r["group"] == strategy]
    if not group:  # not run (--strategies)
      continue
    if source == "ours":
      cand = [{"setting": r["setting"], "acc": r["final_valid_acc_mean"],
               "conv": r["convergence_epoch_mean"]} for r in group]
    else:
      cand = [{"setting": r["setting"], "acc": float(r["report_acc"]),
               "conv": float(r["report_convergence"])} for r in group]
    picks[strategy] = {"fastest": _pick(cand, "conv", "min"),
                       "most_accurate": _pick(cand, "acc", "max")}
  return picks


def overall_best(rows, source: str = "ours") -> dict[str, str]:
  cand = [{"setting": r["setting"],
           "acc": r["final_valid_acc_mean"] if source == "ours" else float(r["report_acc"]),
           "conv": r["convergence_epoch_mean"] if source == "ours"
           else float(r["report_convergence"])} for r in rows]
  return {"fastest": _pick(cand, "conv", "min"), "most_accurate": _pick(cand, "acc", "max")}


# ---------------------------------------------------------------------------- tables
def comparison_markdown(rows, info: dict) -> str:
  """The report's table layout (Method | Accuracy | Convergence, grouped), ours beside
  the report's."""
  seeds = rows[0]["seeds"]
  digits = 5 if info["dataset"] == "mnist" else 4
  stat = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"
  lines = [
      f"### {info['title']}: ours vs the report's {REPORT_TABLE_NAMES[info['dataset']]}",
      "",
      f"Ours: {info['model']}, {info['epochs']} epochs, batch {info['batch_size']}, "
      f"{stat}; data: {info['data_note']} (train/valid/test = {info['sizes']}). "
      f"Accuracy = final validation accuracy; Convergence = convergence epoch: the first "
      f"epoch after which validation accuracy stays within {info['tolerance']} (absolute) "
      f"of its final value. By Cutoff's loss_0: {LOSS0_TEXT[info.get('loss0', 'untrained')]} "
      f"(--loss0 {info.get('loss0', 'untrained')}). The report: {info['report_epochs']} "
      f"epochs, full data.",
      "",
      f"| Method | | Accuracy (ours) | Convergence (ours, tol {info['tolerance']}) "
      f"| Accuracy (report) | Convergence (report) |",
      "|---|---|---|---|---|---|",
  ]
  ours_best_acc = max((r for r in rows), key=lambda r: r["final_valid_acc_mean"]
                      if math.isfinite(r["final_valid_acc_mean"]) else -1)["setting"]
  ours_fast = min(r["convergence_epoch_mean"] for r in rows
                  if math.isfinite(r["convergence_epoch_mean"]))
  rep_best_acc = max(rows, key=lambda r: r["report_acc"])["setting"]
  rep_fast = min(r["report_convergence"] for r in rows)
  last_group = None
  for r in rows:
    group = r["group"] if r["group"] != last_group else ""
    last_group = r["group"]
    acc = common.mean_std_text(r["final_valid_acc_mean"], r["final_valid_acc_std"], seeds,
                               digits)
    conv = common.mean_std_text(r["convergence_epoch_mean"], r["convergence_epoch_std"], seeds, 0,
                integer=True)
    if r["setting"] == ours_best_acc:
      acc = f"**{acc}**"
    if r["convergence_epoch_mean"] == ours_fast:
      conv = f"**{conv}**"
    rep_acc = f"{r['report_acc']:.{digits}f}"
    rep_conv = f"{r['report_convergence']}"
    if r["setting"] == rep_best_acc:
      rep_acc = f"**{rep_acc}**"
    if r["report_convergence"] == rep_fast:
      rep_conv = f"**{rep_conv}**"
    flag = " (non-finite)" if r["nonfinite_seeds"] else ""
    lines.append(f"| {group} | {r['sequence']}{flag} | {acc} | {conv} | {rep_acc} | {rep_conv} |")
  lines += ["", "Bold: best accuracy / fastest convergence of each column.", ""]
  ours, report = info["optimal"], info["optimal_report"]
  lines += ["Optimal settings per strategy (the report's first stage), ours vs the report's "
            "table:", "",
            "| Strategy | Fastest (ours) | Fastest (report) | Most accurate (ours) "
            "| Most accurate (report) |", "|---|---|---|---|---|"]
  for strategy in (s for s in STRATEGIES if s in ours):
    lines.append(f"| {strategy} | {ours[strategy]['fastest'].split()[-1]} "
                 f"| {report[strategy]['fastest'].split()[-1]} "
                 f"| {ours[strategy]['most_accurate'].split()[-1]} "
                 f"| {report[strategy]['most_accurate'].split()[-1]} |")
  ob, rb = info["overall"], info["overall_report"]
  among = "" if len(rows) == len(SETTINGS) else f" (of the {len(rows)} settings run)"
  lines += ["", f"Overall fastest{among}: ours {ob['fastest']}, report {rb['fastest']}. "
            f"Overall most accurate{among}: ours {ob['most_accurate']}, report "
            f"{rb['most_accurate']}.", ""]
  return "\n".join(lines)


LOSS0_TEXT = {"untrained": "the untrained model's validation loss",
              "first-epoch": "the validation loss after epoch 1 (no untrained observation)"}

CSV_FIELDS = ("group", "setting", "sequence", "seeds", "final_valid_acc_mean",
              "final_valid_acc_std", "convergence_epoch_mean", "convergence_epoch_std",
              "final_test_acc_mean", "final_test_acc_std", "best_valid_acc_mean",
              "final_lr_mean", "sequence_advances_mean", "nonfinite_seeds", "report_acc",
              "report_convergence")


# --------------------------------------------------------------------------- figures
def plot_sequences(path: Path, r0: float = R0, num: int = 50) -> Path:
  """Figure 1: the four decaying sequences, r_n for n = 1..num."""
  from lrjax import schedules
  plt = plotting.pyplot()
  n = np.arange(1, num + 1)
  fig, ax = plt.subplots(figsize=(6, 4))
  for name in ("seq1", "seq2", "seq3", "seq4"):
    ax.plot(n, np.asarray(schedules.REPORT_SEQUENCES[name](r0)(n)), label=name, lw=1.5)
  ax.set_xlabel("n (sequence position)")
  ax.set_ylabel("learning rate r_n")
  ax.set_title(f"Figure 1: decaying sequences (r0 = {r0})")
  ax.grid(alpha=0.3)
  ax.legend()
  return plotting.save_figure(fig, path)


def _accuracy_panels(history, columns, settings, labels, path: Path, title: str,
                     styles=None) -> Path:
  """(a) validation accuracy over all epochs, (b) a closer look at the final epochs
  (``columns``: setting -> its seeds' columns of the history)."""
  plt = plotting.pyplot()
  epochs = np.arange(1, history["valid_acc"].shape[0] + 1)
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  tail = min(max(len(epochs) // 2, 2), len(epochs))
  tail_values = []
  for setting, label in zip(settings, labels, strict=True):
    style = (styles or {}).get(setting, {})
    for ax in axes:
      line = plotting.plot_seed_band(ax, epochs, history["valid_acc"][:, columns[setting]],
                                     label=label, lw=1.4, **style)
    tail_values.append(np.asarray(line.get_ydata())[-tail:])
  axes[0].set_title("(a) validation accuracy" + (" (seed mean ± std)"
                                                  if len(columns[settings[0]]) > 1 else ""))
  axes[1].set_title(f"(b) a closer look at the last {tail} epochs")
  axes[1].set_xlim(epochs[-tail] - 0.5 if len(epochs) > 1 else 0.5, epochs[-1] + 0.5)
  values = np.concatenate(tail_values)
  values = values[np.isfinite(values)]
  if values.size:
    lo, hi = float(values.min()), float(values.max())
    pad = max((hi - lo) * 0.1, 1e-3)
    axes[1].set_ylim(lo - pad, hi + pad)
  for ax in axes:
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  fig.suptitle(title)
  return plotting.save_figure(fig, path)


def plot_lr_curves(history, columns, path: Path, title: str) -> Path:
  """The rate in use in each epoch, one panel per strategy (first seed), benchmarks dashed."""
  plt = plotting.pyplot()
  epochs = np.arange(1, history["lr"].shape[0] + 1)
  strategies = [s for s in STRATEGIES if f"{s} seq1" in columns]
  fig, axes = plt.subplots(1, len(strategies), figsize=(14 * len(strategies) / 3 + 1, 3.8),
                           sharey=True, squeeze=False)
  axes = axes[0]
  for ax, strategy in zip(axes, strategies, strict=True):
    for i in range(1, 5):
      setting = f"{strategy} seq{i}"
      ax.plot(epochs, history["lr"][:, columns[setting][0]], label=f"seq{i}", lw=1.4,
              drawstyle="steps-mid", marker="." if len(epochs) < 30 else None)
    for bench in ("SGD", "Adam"):
      if bench not in columns:
        continue
      ax.plot(epochs, history["lr"][:, columns[bench][0]], "--", lw=1, color="gray",
              label=f"{bench} (fixed)" if bench == "SGD" else None)
    ax.set_yscale("log")
    ax.set_title(strategy)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3, which="both")
  axes[0].set_ylabel("learning rate in use")
  axes[0].legend(fontsize=8)
  seed_note = " (first seed)" if len(next(iter(columns.values()))) > 1 else ""
  fig.suptitle(f"{title}: learning rate per epoch{seed_note}")
  return plotting.save_figure(fig, path)


def make_figures(result, dataset_name: str, out: Path, optimal: dict) -> list[Path]:
  spec = DATASETS[dataset_name]
  title = spec["title"]
  history, columns = result.history, common.setting_columns(result, named_settings())
  paths = [plot_sequences(out / "fig1_sequences.png")]
  strategies = [s for s in STRATEGIES if f"{s} seq1" in columns]
  for strategy in strategies:
    settings = [f"{strategy} seq{i}" for i in range(1, 5)]
    paths.append(_accuracy_panels(
        history, columns, settings, [s.split()[-1] for s in settings],
        out / f"{spec['figures'][strategy]}.png",
        f"{title}: comparison of sequences under \"{strategy}\""))
  chosen = []
  for strategy in strategies:
    for kind in ("fastest", "most_accurate"):
      if optimal[strategy][kind] not in chosen:
        chosen.append(optimal[strategy][kind])
  labels = []
  for s in chosen:
    strategy = " ".join(s.split()[:2])
    tags = [k.replace("_", " ") for k in ("fastest", "most_accurate")
            if optimal[strategy][k] == s]
    labels.append(f"{s.split()[-1]} {strategy} ({', '.join(tags)})")
  benchmarks = [b for b in ("SGD", "Adam") if b in columns]
  settings = chosen + benchmarks
  labels += [f"{b} 0.001 (benchmark)" for b in benchmarks]
  styles = {"SGD": {"ls": "--", "color": "black"}, "Adam": {"ls": ":", "color": "black"}}
  if settings:
    paths.append(_accuracy_panels(history, columns, settings, labels,
                                  out / f"{spec['figures']['optimal']}.png",
                                  f"{title}: optimal settings of each strategy vs the "
                                  f"benchmarks", styles))
  if strategies:
    paths.append(plot_lr_curves(history, columns, out / "lr_curves.png", title))
  return paths


# ------------------------------------------------------------------------------ main
def parse_args(argv=None):
  p = common.base_parser(__doc__.splitlines()[0], "results/report_lr_decaying")
  p.add_argument("--dataset", choices=("mnist", "cifar10", "both"), default="both")
  p.add_argument("--tolerance", type=float, default=0.005,
                 help="convergence band on validation accuracy (absolute)")
  p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
  p.add_argument("--conv-impl", choices=CONV_IMPLS, default="auto",
                 help="convolutions (auto: the fastest per backend, see BUILD.md \"Speed\")")
  p.add_argument("--no-checkpoint", action="store_true",
                 help="full runs checkpoint into <out>/<dataset>/checkpoints and resume "
                      "from there; this turns that off")
  p.add_argument("--loss0", choices=tuple(LOSS0_READINGS), default="untrained",
                 help="By Cutoff's loss_0: the untrained model's validation loss (the "
                      "report's reading, default) or the loss after epoch 1 "
                      "(first-epoch); part of the run's identity")
  p.add_argument("--strategies", nargs="+", choices=tuple(STRATEGY_RULES),
                 default=list(STRATEGY_RULES),
                 help="run only these settings (default: all 14), e.g. `--strategies "
                      "cutoff` for the other --loss0 reading; part of the run's identity")
  p.add_argument("--no-figures", action="store_true", help="write no PNG figures")
  return p.parse_args(argv)


def run_dataset(name: str, args) -> dict:
  spec = DATASETS[name]
  out = Path(args.out) / name
  out.mkdir(parents=True, exist_ok=True)
  seeds = args.seeds or (1 if args.quick else 3)
  epochs = args.epochs or (common.QUICK_EPOCHS if args.quick else spec["epochs"])
  dataset, note = common.quick_dataset(name, args)
  strategies = [s for s in STRATEGY_RULES if s in args.strategies]  # canonical order
  config = SweepConfig(
      model=spec["model"],
      variants=select_variants(report_variants(R0, BENCHMARK_LR, seeds=tuple(range(seeds))),
                               strategies),
      epochs=epochs, batch_size=args.batch_size, task="classification",
      convergence_tolerance=args.tolerance,
      checkpoint_every=0 if (args.quick or args.no_checkpoint) else 1,
      model_kwargs={"conv_impl": args.conv_impl},
      # The checkpoint identity is this config: the reading is part of it.
      observe_untrained_loss=LOSS0_READINGS[args.loss0])
  checkpoint_dir = None if (args.quick or args.no_checkpoint) else out / "checkpoints"
  t0 = time.perf_counter()
  try:
    result = run_sweep(config, dataset, checkpoint_dir=checkpoint_dir, out_dir=out,
                       progress=not args.no_progress)
  except DifferentSweepError as err:
    raise SystemExit(refusal_message(err, args)) from None
  wall = time.perf_counter() - t0
  rows = aggregate(result, name)
  info = {
      "dataset": name, "title": spec["title"], "model": spec["model"], "epochs": epochs,
      "report_epochs": spec["epochs"], "batch_size": args.batch_size, "seeds": seeds,
      "tolerance": args.tolerance, "data_note": note,
      "sizes": f"{len(dataset.train_x)}/{len(dataset.valid_x)}/{len(dataset.test_x)}",
      "device": result.device, "compile_seconds": result.compile_seconds,
      "epoch_seconds_mean": float(np.nanmean(result.epoch_seconds))
      if np.isfinite(result.epoch_seconds).any() else None,
      "wall_seconds": wall, "quick": bool(args.quick), "choices": CHOICES,
      "loss0": args.loss0, "observe_untrained_loss": config.observe_untrained_loss,
      "strategies": strategies, "settings": [r["setting"] for r in rows],
      "loss0_changes_oscillate": loss0_changes_oscillate(result),
      "optimal": optimal_settings(rows, "ours"),
      "optimal_report": optimal_settings(rows, "report"),
      "overall": overall_best(rows, "ours"), "overall_report": overall_best(rows, "report"),
  }
  table = comparison_markdown(rows, info)
  (out / "comparison.md").write_text(table)
  common.write_csv(out / "comparison.csv", rows, CSV_FIELDS)
  common.write_json(out / "comparison.json", {"info": info, "rows": rows,
                                              "report_table": REPORT_TABLES[name]})
  figures = [] if args.no_figures else make_figures(result, name, out, info["optimal"])
  print(table, flush=True)
  observations = None
  if set(info["settings"]) == set(SETTINGS):
    import report_observations  # here: it imports this module
    observations = report_observations.write(
        report_observations.from_result(result, info=info), out)
    print(observations["markdown"], flush=True)
  else:
    print(f"{name}: no observations.md (the report's observations need all "
          f"{len(SETTINGS)} settings; this run has {len(info['settings'])})", flush=True)
  print(f"{name}: {wall:.0f} s wall ({result.device}, compile {result.compile_seconds:.1f} s); "
        f"wrote {out}", flush=True)
  return {"info": info, "rows": rows, "table": table,
          "figures": [str(p) for p in figures], "out": str(out),
          "observations": observations}


def refusal_message(err: Exception, args) -> str:
  """The engine's refusal of a checkpoint folder, with the flags that made it: the
  checkpoint identity is the `SweepConfig` (``--loss0`` is its
  ``observe_untrained_loss``, ``--strategies`` and ``--seeds`` its variants)."""
  text = str(err)
  if "observe_untrained_loss" in text:
    other = next(k for k, v in LOSS0_READINGS.items() if v != LOSS0_READINGS[args.loss0])
    return (f"report_lr_decaying.py: the checkpoints in {Path(args.out)} were written "
            f"with --loss0 {other}; this run asks for --loss0 {args.loss0} (another "
            f"reading of loss_0 is another run): give it another --out, or run with "
            f"--loss0 {other} to resume that one. ({text})")
  return (f"report_lr_decaying.py: {text} (the run's identity includes --loss0, "
          f"--strategies, --seeds, --batch-size and the data flags)")


def main(argv=None) -> dict:
  args = parse_args(argv)
  names = ("mnist", "cifar10") if args.dataset == "both" else (args.dataset,)
  out = Path(args.out)
  results = {name: run_dataset(name, args) for name in names}
  header = ["# Yang & Huang (2019), learning rate investigation: reproduction", "",
            f"Command: `python experiments/report_lr_decaying.py "
            f"{' '.join(sys.argv[1:] if argv is None else argv)}`", "",
            f"Settings: 4 sequences x 3 strategies (SGD, r0 = {R0}) + SGD and Adam fixed at "
            f"{BENCHMARK_LR}. {CHOICES} By Cutoff's loss_0: {LOSS0_TEXT[args.loss0]} "
            f"(--loss0 {args.loss0})." +
            (" QUICK RUN: few epochs on a data subset; not comparable in absolute terms "
             "with the report." if args.quick else ""), ""]
  for name in names:
    info = results[name]["info"]
    header += [results[name]["table"],
               f"Run: {info['device']}, compile {info['compile_seconds']:.1f} s, "
               f"{info['wall_seconds']:.0f} s wall"
               + (f", {info['epoch_seconds_mean']:.1f} s per epoch (all "
                  f"{len(info['settings'])} settings x {info['seeds']} seeds)"
                  if info["epoch_seconds_mean"] else "")
               + ".", ""]
  (out / "summary.md").write_text("\n".join(header))
  common.write_json(out / "summary.json", {n: {"info": r["info"], "rows": r["rows"]}
                                           for n, r in results.items()})
  return results


if __name__ == "__main__":
  main(sys.argv[1:])
