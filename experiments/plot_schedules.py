"""Plots of the schedules of `lrjax.schedules`.

    python experiments/plot_schedules.py --out results/schedules

writes

* ``report_sequences.png``: the report's Figure 1, seq1..seq4 with r0 = 0.01 over
  n = 1..50;
* ``schedules_grid.png``: the survey's comparison figure, every schedule over 100
  epochs (one subplot each);
* ``porting_grid.png``: the PyTorch / Keras schedulers lrjax ports and today's practice
  (warm-ups, warmup-stable-decay, inverse sqrt, momentum cycled against the rate), in
  a second figure so that each stays readable.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax.numpy as jnp
import numpy as np

from lrjax import schedules as S
from lrjax.train.reports import plotting

plt = plotting.pyplot()


def report_sequences(r0: float = 0.01, num: int = 50):
  """(label, n, lr) for the report's Figure 1."""
  n = jnp.arange(1, num + 1)
  return [(name, np.asarray(n), np.asarray(S.REPORT_SEQUENCES[name](r0)(n)))
          for name in ("seq1", "seq2", "seq3", "seq4")]


def comparison(epochs: int = 100):
  """(title, schedule, log-scale) for the survey's comparison figure."""
  return [
      ("step decay\n0.1 * 0.5^floor(t/10)", S.step_decay(0.1, 0.5, 10), False),
      ("Keras step decay\n1.0 * 0.5^floor((1+t)/10)", S.keras_step_decay(1.0, 0.5, 10), False),
      ("exponential\n1.0 * exp(-0.05 t)", S.exponential_decay(1.0, 0.05), False),
      ("inverse time\n0.1 / (1 + 0.1 t)", S.inverse_time_decay(0.1, 0.1), False),
      (f"polynomial (power 2)\n0.1 (1 - t/{epochs})^2",
       S.polynomial_decay(0.1, epochs, power=2.0), False),
      ("Keras time-based\n0.1 / (1 + 0.01 iterations)", S.keras_time_based_decay(0.1, 0.01),
       False),
      (f"cosine annealing\n0.1 -> 0.001 over {epochs}", S.cosine_annealing(0.1, epochs, 0.001),
       False),
      ("warm restarts (SGDR)\nT_0 = 10, T_mult = 2", S.cosine_warm_restarts(0.1, 10, 2, 0.001),
       False),
      ("CLR triangular\n0.001-0.006, step 10", S.triangular(0.001, 0.006, 10), False),
      ("CLR triangular2", S.triangular2(0.001, 0.006, 10), False),
      ("CLR exp_range\ngamma = 0.99", S.exp_range(0.001, 0.006, 10, gamma=0.99), False),
      ("CLR Welch window", S.welch(0.001, 0.006, 10), False),
      ("CLR Hann window", S.hann(0.001, 0.006, 10), False),
      ("one cycle\n0.08 -> 0.8 -> 0.08 -> 0.008", S.one_cycle(0.08, 0.8, 41, 95, 10.0), False),
      (f"LR range test (log scale)\n1e-4 -> 10 over {epochs}",
       S.lr_range_test(1e-4, 10.0, epochs), True),
  ]


def porting(epochs: int = 100):
  """(title, [(label, schedule), ...], log-scale) for the porting figure."""
  third = epochs // 3
  return [
      ("PyTorch MultiStepLR\nmilestones 30, 60, 80; gamma 0.5",
       [("", S.from_torch("MultiStepLR", lr=0.1, milestones=[30, 60, 80], gamma=0.5))], False),
      ("PyTorch SequentialLR\nLinearLR(10) then CosineAnnealingLR",
       [("", S.from_torch("SequentialLR", lr=0.1, milestones=[10], schedulers=[
           ("LinearLR", {"start_factor": 0.1, "total_iters": 10}),
           ("CosineAnnealingLR", {"T_max": epochs - 10})]))], False),
      ("PyTorch ChainedScheduler\nConstantLR(0.1, 10) x ExponentialLR(0.97)",
       [("", S.from_torch("ChainedScheduler", lr=0.1, schedulers=[
           ("ConstantLR", {"factor": 0.1, "total_iters": 10}),
           ("ExponentialLR", {"gamma": 0.97})]))], False),
      (f"CosineAnnealingLR past T_max = {third}\n(periodic=True vs lrjax's hold)",
       [("periodic (PyTorch)", S.cosine_annealing(0.1, third, 0.001, periodic=True)),
        ("hold (default)", S.cosine_annealing(0.1, third, 0.001))], False),
      ("ExponentialLR gamma 1.08 (log)\ncapped at lr_cap = 0.5",
       [("", S.exponential_lr(1e-3, 1.08, lr_cap=0.5))], True),
      ("CyclicLR exp_range gamma 1.01\ncapped at lr_cap = 0.012",
       [("", S.exp_range(0.001, 0.006, 10, 1.01, lr_cap=0.012))], False),
      ("Keras PiecewiseConstantDecay\n[30, 70] -> [0.1, 0.05, 0.01]",
       [("", S.from_keras("PiecewiseConstantDecay", boundaries=[30, 70],
                          values=[0.1, 0.05, 0.01]))], False),
      ("Keras CosineDecay with warm-up\n0 -> 0.1 in 10, alpha 0.1",
       [("", S.from_keras("CosineDecay", initial_learning_rate=0.0, decay_steps=epochs - 10,
                          alpha=0.1, warmup_target=0.1, warmup_steps=10))], False),
      ("Keras CosineDecayRestarts\nT0 10, t_mul 2, m_mul 0.7",
       [("", S.from_keras("CosineDecayRestarts", initial_learning_rate=0.1,
                          first_decay_steps=10, t_mul=2.0, m_mul=0.7))], False),
      ("warm-up in front of step decay\nlinear / cosine / exponential, 15 steps",
       [(kind, S.warmup(S.step_decay(0.1, 0.5, 25), 15, init_lr=0.005, kind=kind))
        for kind in ("linear", "cosine", "exponential")], False),
      ("warmup-stable-decay\ncool-downs over the last 20%",
       [(c, S.warmup_stable_decay(0.1, 10, int(0.7 * epochs), epochs - 10 - int(0.7 * epochs),
                                  cooldown=c)) for c in ("linear", "cosine", "1-sqrt")], False),
      ("inverse sqrt (Transformer)\nwarm-up 10, peak 0.1",
       [("", S.inverse_sqrt(0.1, 10))], False),
      ("one-cycle momentum (PyTorch)\nagainst its rate (dashed, x 5)",
       [("momentum", S.one_cycle_momentum(epochs)),
        ("5 x rate", lambda t: 5.0 * S.one_cycle_torch(0.1, epochs)(t))], False),
      ("cyclical momentum (PyTorch CyclicLR)\nagainst its rate (dashed, x 100)",
       [("momentum", S.cyclical_momentum(10)),
        ("100 x rate", lambda t: 100.0 * S.triangular(0.001, 0.006, 10)(t))], False),
  ]


def plot_panels(path: pathlib.Path, entries, epochs: int, dpi: int, title: str,
                xlabel: str = "step") -> None:
  """One panel per entry ``(name, [(label, schedule), ...], log_scale)``."""
  cols = 4
  rows = -(-len(entries) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.9 * rows))
  t = jnp.arange(epochs)
  for ax, (name, curves, log) in zip(axes.flat, entries, strict=False):  # a full last row
    for label, sched in curves:
      style = "--" if label.startswith(("5 x", "100 x")) else "-"
      ax.plot(np.asarray(t), np.asarray(sched(t)), style, linewidth=1.4,
              label=label or None)
    if any(label for label, _ in curves):
      ax.legend(fontsize=7)
    ax.set_title(name, fontsize=9)
    if log:
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)
  for ax in axes.flat[len(entries):]:
    ax.axis("off")
  for ax in axes.flat[len(entries) - cols:len(entries)]:
    ax.set_xlabel(xlabel, fontsize=8)
  fig.suptitle(title, fontsize=12)
  plotting.save_figure(fig, path, dpi=dpi)


def plot_report_sequences(path: pathlib.Path, dpi: int) -> None:
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for name, n, lr in report_sequences():
    ax.plot(n, lr, marker="o", markersize=3, linewidth=1.2, label=name)
  ax.set_title("Decaying sequences (report, Figure 1), r0 = 0.01")
  ax.set_xlabel("n")
  ax.set_ylabel("learning rate r_n")
  ax.grid(alpha=0.3)
  ax.legend()
  plotting.save_figure(fig, path, dpi=dpi)


def plot_grid(path: pathlib.Path, epochs: int, dpi: int) -> None:
  entries = [(title, [("", sched)], log) for title, sched, log in comparison(epochs)]
  plot_panels(path, entries, epochs, dpi, f"Learning-rate schedules over {epochs} epochs",
              xlabel="epoch (step)")


def main(argv=None) -> list[pathlib.Path]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results/schedules"),
                      help="output folder (created)")
  parser.add_argument("--epochs", type=int, default=100, help="length of the comparison")
  parser.add_argument("--dpi", type=int, default=110)
  args = parser.parse_args(argv)
  args.out.mkdir(parents=True, exist_ok=True)
  paths = [args.out / "report_sequences.png", args.out / "schedules_grid.png",
           args.out / "porting_grid.png"]
  plot_report_sequences(paths[0], args.dpi)
  plot_grid(paths[1], args.epochs, args.dpi)
  plot_panels(paths[2], porting(args.epochs), args.epochs, args.dpi,
              f"PyTorch / Keras schedulers and today's practice over {args.epochs} steps")
  for path in paths:
    print(path)
  return paths


if __name__ == "__main__":
  main(sys.argv[1:])
