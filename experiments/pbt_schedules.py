"""Population-based training against the report's hand-designed schedules.

On the report's settings (Yang & Huang 2019: MNIST 54,000 / 6,000, 50 epochs; CIFAR-10
45,000 / 5,000, 25 epochs; plain SGD, batch 64, the report's CNNs), PBT searches the
learning rate inside one compiled sweep (`lrjax.train.search.pbt`): a population of 14
(the report's 14 settings), every ``--interval`` epochs the bottom quarter continues
from the top quarter's state with its rate multiplied by 0.8 or 1.2 (or redrawn, p =
0.25), the rate drawn log-uniformly from [1e-3, 0.3].  Each of ``--seeds`` whole
searches uses its own seed (initialisation, data order, the search's draws).

The best member's rate trajectory (`SweepResult.lr_schedule`, one rate per step along
its lineage) is then retrained from scratch with plain optax (``optax.sgd(schedule)``,
same seed), and compared with the report's best settings as this project measured them
(``experiments/results/report_<dataset>_full/comparison.json``), mean ± std over seeds.

Writes, per dataset, into ``--out/<dataset>``: ``seed_<s>/`` (each search's results and
checkpoints: the same command resumes), ``retrain_<s>/``, ``comparison.md`` / ``.json``
and ``schedules.png`` (the discovered schedules beside the report's four sequences).

    python experiments/pbt_schedules.py --dataset mnist            # ~3 h on a 2-core CPU
    python experiments/pbt_schedules.py --dataset cifar10          # ~4 h
    python experiments/pbt_schedules.py --quick                    # a few minutes
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (puts the checkout on sys.path)
import optax  # noqa: E402

import lrjax  # noqa: E402
from lrjax import models, schedules  # noqa: E402
from lrjax.train import search  # noqa: E402

DATASETS = {"mnist": {"model": "mnist_cnn", "epochs": 50, "title": "MNIST"},
            "cifar10": {"model": "cifar_cnn", "epochs": 25, "title": "CIFAR-10"}}
POPULATION, INTERVAL, LR_RANGE = 14, 2, (1e-3, 0.3)
BATCH_SIZE = 64  # as experiments/report_lr_decaying.py
REPORT_R0 = 0.01
RESULTS = common.REPO / "experiments" / "results"


def optimizer_fn(h):
  """Plain SGD, as the report's strategies; the state keeps the rate (the history and
  the discovered schedule read it)."""
  return optax.inject_hyperparams(optax.sgd)(learning_rate=h["learning_rate"])


def search_one(dataset, spec, seed: int, args, out: Path):
  """One whole PBT search (checkpointed: the same command resumes it)."""
  epochs = args.epochs or (common.QUICK_EPOCHS if args.quick else spec["epochs"])
  population = args.population or (4 if args.quick else POPULATION)
  interval = args.interval or (1 if args.quick else INTERVAL)
  space = search.search_space(learning_rate=search.log_uniform(*LR_RANGE))
  controller = search.pbt(population, interval=interval, burn_in=interval, seed=seed)
  return lrjax.sweep(models.get_model(spec["model"]), dataset, optimizer_fn, space,
                     epochs=epochs, batch_size=BATCH_SIZE, seeds=(seed,),
                     controller=controller, progress=not args.no_progress,
                     checkpoint_dir=None if args.quick else out / "checkpoints",
                     out_dir=out, keep="none")


def retrain(dataset, spec, result, member: int, seed: int, args, out: Path):
  """The member's discovered schedule, trained from scratch by plain optax."""
  schedule = result.lr_schedule(member)
  epochs = result.history["valid_acc"].shape[0]
  return lrjax.sweep(models.get_model(spec["model"]), dataset,
                     lambda h: optax.inject_hyperparams(optax.sgd)(learning_rate=schedule),
                     [{"schedule": "discovered"}], epochs=epochs, batch_size=BATCH_SIZE,
                     seeds=(seed,), progress=not args.no_progress,
                     checkpoint_dir=None if args.quick else out / "checkpoints",
                     out_dir=out, keep="none")


def report_rows(name: str) -> list[dict]:
  """The report's settings as this project measured them at full size (mean ± std)."""
  path = RESULTS / f"report_{name}_full" / "comparison.json"
  if not path.exists():
    return []
  return json.loads(path.read_text())["rows"]


def _mean_std(values) -> tuple[float, float]:
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def _text(values, digits=4) -> str:
  mean, std = _mean_std(values)
  return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def plot_schedules(lines: dict[int, np.ndarray], steps_per_epoch: int, epochs: int,
                   path: Path, title: str) -> Path:
  """The discovered rate per step (one line per seed) beside the report's sequences
  stepped once per epoch (By Epoch's reading) from r0 = 0.01."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from lrjax.train.reports import plotting
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for seed, rates in lines.items():
    ax.plot(np.arange(rates.size) / steps_per_epoch, rates, lw=1.5,
            label=f"PBT best member, seed {seed}")
  e = np.arange(epochs + 1)
  for k, seq in enumerate((schedules.seq1, schedules.seq2, schedules.seq3, schedules.seq4)):
    rates = np.asarray(seq(REPORT_R0)(e))
    ax.step(e, rates, where="post", ls="--", lw=1, color=f"C{k + 3}",
            label=f"report seq{k + 1} (r0 {REPORT_R0}, one step per epoch)")
  ax.set_yscale("log")
  ax.set_xlabel("epoch")
  ax.set_ylabel("learning rate")
  ax.set_title(title)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=7)
  return plotting.save_figure(fig, path)


def run_dataset(name: str, args) -> dict:
  spec = DATASETS[name]
  out = Path(args.out) / name
  out.mkdir(parents=True, exist_ok=True)
  dataset, note = common.quick_dataset(name, args)
  seeds = list(range(args.seeds or (1 if args.quick else 3)))
  t0 = time.perf_counter()
  rows, lines = [], {}
  for seed in seeds:
    result = search_one(dataset, spec, seed, args, out / f"seed_{seed}")
    member = result.best_index()
    again = retrain(dataset, spec, result, member, seed, args, out / f"retrain_{seed}")
    line = result.lineage(member)
    lines[seed] = result.lr_values(member)
    copies = int(sum((result.history["parent"][e, s] != s) for e, s in enumerate(line)
                     if s >= 0))
    rows.append({
        "seed": seed, "member": result.names[member],
        "search_valid_acc": result.summary[member]["final_valid_acc"],
        "search_test_acc": result.summary[member]["final_test_acc"],
        "retrain_valid_acc": again.summary[0]["final_valid_acc"],
        "retrain_test_acc": again.summary[0]["final_test_acc"],
        "retrain_convergence_epoch": again.summary[0]["convergence_epoch"],
        "lineage_copies": copies,
        "first_lr": float(lines[seed][0]), "last_lr": float(lines[seed][-1]),
        "model_epochs": int(np.nansum(result.history["alive"])),
        "search_seconds": float(np.nansum(result.epoch_seconds)),
    })
  wall = time.perf_counter() - t0
  measured = report_rows(name)
  epochs = args.epochs or (common.QUICK_EPOCHS if args.quick else spec["epochs"])
  steps = len(dataset.train_x) // BATCH_SIZE
  figure = plot_schedules(lines, steps, epochs, out / "schedules.png",
                          f"{spec['title']}: PBT's discovered schedules vs the report's sequences")
  lines_md = [
      f"### {spec['title']}: PBT over the learning rate vs the report's settings", "",
      f"PBT: population {args.population or (4 if args.quick else POPULATION)}, every "
      f"{args.interval or (1 if args.quick else INTERVAL)} epochs the bottom 25% continue "
      f"from the top 25% (rate x0.8 / x1.2, or redrawn with p 0.25), rate log-uniform in "
      f"{list(LR_RANGE)}, plain SGD, batch {BATCH_SIZE}, {spec['model']}, {epochs} epochs, "
      f"{len(seeds)} seed(s) of the whole search; data: {note} "
      f"(train/valid/test {len(dataset.train_x)}/{len(dataset.valid_x)}/"
      f"{len(dataset.test_x)}).", "",
      "| Schedule | Final valid acc | Final test acc |", "|---|---|---|",
      f"| PBT best member (in the search) | {_text([r['search_valid_acc'] for r in rows])} | "
      f"{_text([r['search_test_acc'] for r in rows])} |",
      f"| PBT's discovered schedule, retrained by plain optax | "
      f"{_text([r['retrain_valid_acc'] for r in rows])} | "
      f"{_text([r['retrain_test_acc'] for r in rows])} |"]
  best_designed = None
  for row in measured:
    mean, std = row.get("final_valid_acc_mean"), row.get("final_valid_acc_std") or 0.0
    test, test_std = row.get("final_test_acc_mean"), row.get("final_test_acc_std") or 0.0
    if mean is None:
      continue
    label = row["setting"] if row["setting"].startswith(row["group"]) else (
        f"{row['group']} {row['setting']}".strip())
    cells = f"{mean:.4f} ± {std:.4f} | {test:.4f} ± {test_std:.4f}"
    if row["setting"] in ("SGD", "Adam"):
      lines_md.append(f"| report benchmark {row['setting']} (rate 0.001; ours, full size) "
                      f"| {cells} |")
    elif best_designed is None or mean > best_designed[1]:
      best_designed = (label, mean, cells)
  if best_designed is not None:
    lines_md.append(f"| report's best designed schedule: {best_designed[0]} (ours, full "
                    f"size) | {best_designed[2]} |")
  lines_md += ["", "Per seed:", "", "| Seed | Best member | Copies along its line | "
               "First / last rate | Search valid acc | Retrained valid / test acc |",
               "|---|---|---|---|---|---|"]
  for r in rows:
    lines_md.append(f"| {r['seed']} | {r['member']} | {r['lineage_copies']} | "
                    f"{r['first_lr']:.3g} / {r['last_lr']:.3g} | {r['search_valid_acc']:.4f} | "
                    f"{r['retrain_valid_acc']:.4f} / {r['retrain_test_acc']:.4f} |")
  lines_md += ["", f"Wall time {wall:.0f} s for this command (searches and retrains; "
               f"resumed parts not counted again)."]
  table = "\n".join(lines_md) + "\n"
  (out / "comparison.md").write_text(table)
  payload = {"info": {"dataset": name, "note": note, "epochs": epochs, "seeds": seeds,
                      "wall_seconds": wall, "quick": bool(args.quick),
                      "best_designed": best_designed},
             "rows": rows, "figure": str(figure)}
  common.write_json(out / "comparison.json", payload)
  print(table, flush=True)
  return payload


def parse_args(argv=None):
  p = common.base_parser(__doc__.splitlines()[0], "results/pbt_schedules")
  p.add_argument("--dataset", choices=("mnist", "cifar10", "both"), default="both")
  p.add_argument("--population", type=int, default=None, help=f"(default {POPULATION})")
  p.add_argument("--interval", type=int, default=None, help=f"(default {INTERVAL})")
  return p.parse_args(argv)


def main(argv=None) -> dict:
  args = parse_args(argv)
  names = ("mnist", "cifar10") if args.dataset == "both" else (args.dataset,)
  return {name: run_dataset(name, args) for name in names}


if __name__ == "__main__":
  main(sys.argv[1:])
