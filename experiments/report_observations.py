"""The report's numbered observations (Yang & Huang 2019, sections 4.2 and 4.3) as checks.

    python experiments/report_observations.py <out>/<dataset>

reads a folder written by ``experiments/report_lr_decaying.py`` (its ``results.json``;
``comparison.json`` where present, for the run's notes) and writes ``observations.md``
and ``observations.json`` beside it, printing the markdown.  The dataset (MNIST:
observations (1)-(7) of section 4.2, CIFAR-10: (1)-(7) of 4.3) is read from the run's
model.  ``report_lr_decaying.py`` calls it at the end of each dataset.

    python experiments/report_observations.py <out>/mnist --other-loss0 <out2>/mnist

also sets a run of the other ``--loss0`` reading (``report_lr_decaying.py --loss0
first-epoch --strategies cutoff --out <out2>``) beside the full one: per setting the
accuracy and convergence under each reading, whether they changed beyond noise, the
rankings of the sequences and the best of all 14 (``loss0_comparison.md/.json``).

Each observation is split into the claims it makes, each claim a function of the
per-seed results of the 14 settings: final and best validation accuracy, final test
accuracy, the convergence epoch under the run's rule (`lrjax.train.reports.metrics`:
the first epoch after which the validation accuracy stays within the run's tolerance of
its final value, recomputed here from the history with the run's tolerance), the
number of sequence advances, and, for the claims about curves, a stated reading of
the validation-accuracy curves (trend, early drops).  Every claim is decided the same
way from a mean over seeds and its noise band (``NOISE_Z`` standard errors):

* an ordering ("A converges faster than B", "A is the most accurate") holds for the
  difference ``d`` of the means, oriented so that the claim says ``d > 0``:
  **reproduced** when ``d - band > 0``, **not reproduced** when ``d + band < 0``,
  **within noise** otherwise (the band holds 0: the seeds cannot tell the order);
* a similarity ("similar final accuracy", ``|d| <= margin``): reproduced when
  ``|d| + band <= margin``, not reproduced when ``|d| - band > margin``, within noise
  otherwise;
* a count (sequence advances "fewer than 20"): the largest count over the seeds,
  no noise;
* with one seed there is no band: orderings and similarities say **needs seeds**.

The verdicts on accuracy are on the final validation accuracy (the report's "final
accuracy"); the same claim on the final test accuracy is shown beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402
import report_lr_decaying as report  # noqa: E402

from lrjax.train.reports import metrics  # noqa: E402
from lrjax.train.reports import results as results_lib  # noqa: E402

# --------------------------------------------------------------------- the definitions
# "Within noise": the noise band of a difference of two means over seeds is NOISE_Z
# standard errors of that difference, sqrt(s_a^2 / n_a + s_b^2 / n_b) with the sample
# std (ddof 1, as the comparison table's ±); 2 is the usual ~95% band.  A claim is
# decided only when the whole band d ± band is on one side of its boundary.
NOISE_Z = 2.0
# "Similar" accuracies: means at most 2 accuracy points apart.  The largest difference
# the report itself calls similar is 1.56 points (CIFAR-10 By Cutoff seq3 vs seq4,
# observation (7)); its whole MNIST spread, called "very small" in MNIST (6), is 1.05
# points; its CIFAR-10 spread, called "much clearer" in CIFAR (6), is 19.6 points.
SIMILAR_ACC = 0.02
# "The first few epochs" of CIFAR (4): the validation accuracy lost in drops (the sum of
# its decreases from one epoch to the next) over epochs 1..EARLY_EPOCHS.
EARLY_EPOCHS = 5
# "Trend" of CIFAR (2): the least-squares slope of the validation accuracy over the
# second half of the epochs (from epoch floor(E / 2) + 1), per seed.
TREND_FROM = 0.5

REPRODUCED, NOT_REPRODUCED, WITHIN_NOISE = "reproduced", "not reproduced", "within noise"
NEEDS_SEEDS, UNDECIDED = "needs seeds", "undecided"
# Combining the claims of one observation: the first of these that any claim has.
_PRECEDENCE = (NOT_REPRODUCED, NEEDS_SEEDS, UNDECIDED, WITHIN_NOISE, REPRODUCED)

MEASURES = ("final_valid_acc", "best_valid_acc", "final_test_acc", "convergence_epoch",
            "sequence_advances")
CURVES = ("valid_acc", "valid_loss", "lr", "index")
SECTIONS = {"mnist": "4.2", "cifar10": "4.3"}


class ReportError(ValueError):
  """The folder or the results are not a run of the report's 14 settings."""


# --------------------------------------------------------------------------- the data
@dataclasses.dataclass(frozen=True)
class Runs:
  """Per-seed results of the report's settings.

  Attributes:
    dataset: ``mnist`` or ``cifar10``.
    values: setting -> measure (`MEASURES`) -> one value per seed (NaN: none).
    curves: setting -> history field (`CURVES`) -> ``[epochs, seeds]``.
    epochs: epochs of the curves.
    tolerance: the convergence rule's tolerance.
    info: notes of the run (``loss0``, ``seeds``, ``data_note`` ...).
  """

  dataset: str
  values: Mapping[str, Mapping[str, np.ndarray]]
  curves: Mapping[str, Mapping[str, np.ndarray]] = dataclasses.field(default_factory=dict)
  epochs: int = 0
  tolerance: float = 0.005
  info: Mapping = dataclasses.field(default_factory=dict)

  @property
  def seeds(self) -> int:
    """The fewest seeds of any setting."""
    return min(len(next(iter(v.values()))) for v in self.values.values())

  def get(self, setting: str, measure: str) -> np.ndarray:
    return np.asarray(self.values[setting][measure], np.float64)

  def curve(self, setting: str, field: str = "valid_acc") -> np.ndarray:
    if setting not in self.curves or field not in self.curves[setting]:
      raise ReportError(f"the results hold no {field} curve of {setting!r}.")
    return np.asarray(self.curves[setting][field], np.float64)


def dataset_of(config) -> str:
  """The dataset of a run, from its model (`report_lr_decaying.DATASETS`)."""
  for name, spec in report.DATASETS.items():
    if spec["model"] == config.model:
      return name
  raise ReportError(f"the run's model {config.model!r} is none of the report's "
                    f"({', '.join(s['model'] for s in report.DATASETS.values())}).")


def from_history(config, history: Mapping[str, np.ndarray],
                 info: Mapping | None = None, *, require_all: bool = True) -> Runs:
  """`Runs` of a run of ``config`` (a `SweepConfig`) with ``history`` (``[epochs,
  variants]`` arrays): the summary recomputed by `lrjax.train.reports.metrics.summarize` with
  the config's tolerance, the seeds of each setting by `metrics.aggregate_seeds`.
  ``require_all``: refuse a run of fewer than the 14 settings (``--strategies``)."""
  try:
    settings = common.setting_names(types.SimpleNamespace(config=config),
                                    report.named_settings())
  except ValueError as err:
    raise ReportError(f"the results are not the report's settings: {err}") from None
  missing = [s for s in report.SETTINGS if s not in settings]
  if missing and require_all:
    raise ReportError(f"the results hold {len(set(settings))} of the report's "
                      f"{len(report.SETTINGS)} settings (missing: {', '.join(missing)}); "
                      f"the observations need all of them.")
  history = {k: np.asarray(v, np.float64) for k, v in history.items()}
  names = [v.name for v in config.variants]
  summary = metrics.summarize(history, names, task="classification",
                              tolerance=config.convergence_tolerance)
  for row, variant in zip(summary, config.variants, strict=True):
    row["seed"] = variant.seed
  aggregated = metrics.aggregate_seeds(summary, settings)
  values, curves = {}, {}
  for row in aggregated:
    values[row["setting"]] = {m: np.asarray([np.nan if x is None else x
                                             for x in row["per_seed"][m]], np.float64)
                              for m in MEASURES}
  columns: dict[str, list[int]] = {}
  for k, setting in enumerate(settings):
    columns.setdefault(setting, []).append(k)
  for setting, cols in columns.items():
    curves[setting] = {f: history[f][:, cols] for f in CURVES if f in history}
  epochs = next(iter(history.values())).shape[0]
  info = dict(info or {})
  info.setdefault("loss0", "untrained" if config.observe_untrained_loss else "first-epoch")
  info.setdefault("config_epochs", config.epochs)
  return Runs(dataset=dataset_of(config), values=values, curves=curves, epochs=epochs,
              tolerance=config.convergence_tolerance, info=info)


def from_result(result, info: Mapping | None = None) -> Runs:
  """`Runs` of a `run_sweep` result (``config`` and ``history``)."""
  return from_history(result.config, result.history, info)


def from_folder(folder: str | Path, *, require_all: bool = True) -> Runs:
  """`Runs` of a folder written by ``report_lr_decaying.py`` (any version that writes
  the engine's ``results.json``; ``comparison.json`` is read for the notes only)."""
  folder = Path(folder)
  if not folder.is_dir():
    raise ReportError(f"{folder} is not a folder.")
  if not (folder / "results.json").exists():
    raise ReportError(f"{folder} has no results.json (write it with "
                      f"experiments/report_lr_decaying.py).")
  try:
    loaded = results_lib.load(folder)
  except (ValueError, KeyError, TypeError) as err:
    raise ReportError(f"{folder / 'results.json'} cannot be read as a sweep's results: "
                      f"{err!r}") from None
  if loaded["config"] is None:
    raise ReportError(f"{folder / 'results.json'} has no SweepConfig (not a "
                      f"report_lr_decaying.py run).")
  info = {}
  comparison = folder / "comparison.json"
  if comparison.exists():
    try:
      info = dict(json.loads(comparison.read_text()).get("info", {}))
    except (ValueError, AttributeError):
      info = {}
  info["loss0"] = "untrained" if loaded["config"].observe_untrained_loss else "first-epoch"
  return from_history(loaded["config"], loaded["history"], info, require_all=require_all)


# ---------------------------------------------------------------- deciding one claim
@dataclasses.dataclass(frozen=True)
class Estimate:
  """A mean over seeds (or a difference of two) and its noise band (NOISE_Z standard
  errors; NaN with fewer than two seeds)."""

  mean: float
  band: float


def _finite(x) -> np.ndarray:
  x = np.asarray(x, np.float64).ravel()
  return x[np.isfinite(x)]


def _sem2(x: np.ndarray) -> float:
  """The squared standard error of the mean of ``x`` (NaN below two values)."""
  return float(np.var(x, ddof=1) / x.size) if x.size >= 2 else math.nan


def difference(a, b) -> Estimate:
  """``mean(a) - mean(b)`` over the finite seed values, with its noise band."""
  a, b = _finite(a), _finite(b)
  if a.size == 0 or b.size == 0:
    return Estimate(math.nan, math.nan)
  return Estimate(float(a.mean() - b.mean()), NOISE_Z * math.sqrt(_sem2(a) + _sem2(b)))


def level(a) -> Estimate:
  """``mean(a)`` with its noise band (a one-sample reading, e.g. a slope's sign)."""
  a = _finite(a)
  if a.size == 0:
    return Estimate(math.nan, math.nan)
  return Estimate(float(a.mean()), NOISE_Z * math.sqrt(_sem2(a)))


def above(est: Estimate, margin: float = 0.0) -> str:
  """The verdict on the claim ``est.mean > margin``."""
  if not math.isfinite(est.mean):
    return UNDECIDED
  if not math.isfinite(est.band):
    return NEEDS_SEEDS
  if est.mean - est.band > margin:
    return REPRODUCED
  if est.mean + est.band < margin:
    return NOT_REPRODUCED
  return WITHIN_NOISE


def close(est: Estimate, margin: float) -> str:
  """The verdict on the claim ``|est.mean| <= margin``."""
  if not math.isfinite(est.mean):
    return UNDECIDED
  if not math.isfinite(est.band):
    return NEEDS_SEEDS
  if abs(est.mean) + est.band <= margin:
    return REPRODUCED
  if abs(est.mean) - est.band > margin:
    return NOT_REPRODUCED
  return WITHIN_NOISE


def combine(verdicts: Sequence[str]) -> str:
  """One verdict for several claims: the first of `_PRECEDENCE` among them."""
  for verdict in _PRECEDENCE:
    if verdict in verdicts:
      return verdict
  raise ValueError(f"no verdicts to combine: {verdicts!r}")


# ------------------------------------------------------------------ claims (readings)
@dataclasses.dataclass
class Check:
  """One claim of an observation: its reading, the numbers that decide it, the verdict
  (and, for accuracy claims, the verdict of the same claim on the test accuracy)."""

  id: str
  claim: str
  numbers: str
  verdict: str
  test_verdict: str | None = None
  values: dict = dataclasses.field(default_factory=dict)


def _digits(measure: str) -> int:
  return 1 if measure in ("convergence_epoch", "sequence_advances") else 4


def _mean_std(x, measure: str) -> str:
  x = _finite(x)
  if x.size == 0:
    return "n/a"
  d = _digits(measure)
  return f"{x.mean():.{d}f}" + (f" ± {x.std(ddof=1):.{d}f}" if x.size > 1 else "")


def _delta(est: Estimate, digits: int) -> str:
  band = f" ± {est.band:.{digits}f}" if math.isfinite(est.band) else " (1 seed: no band)"
  return f"Δ {est.mean:+.{digits}f}{band}"


def _ordered(pairs: Sequence[tuple[str, Estimate]], margin: float = 0.0):
  """The verdict that every ``d`` of ``pairs`` is above ``margin``, and the pair that
  decides it (a failing one, else the one closest to failing)."""
  verdicts = [above(est, margin) for _, est in pairs]
  verdict = combine(verdicts)
  candidates = [p for p, v in zip(pairs, verdicts, strict=True) if v == verdict]
  # Reproduced: the pair closest to failing (lowest d - band); otherwise the pair most
  # against the claim (lowest d: the strongest rival by its mean).
  by_bound = verdict == REPRODUCED
  label, est = min(candidates, key=lambda p: (p[1].mean - p[1].band) if by_bound
                   else p[1].mean)
  return verdict, label, est


def _oriented(runs: Runs, claimed: str, other: str, measure: str, higher: bool) -> Estimate:
  a, b = runs.get(claimed, measure), runs.get(other, measure)
  return difference(a, b) if higher else difference(b, a)


def _best_setting(runs: Runs, settings: Sequence[str], measure: str, higher: bool) -> str:
  def key(s):
    x = _finite(runs.get(s, measure))
    m = x.mean() if x.size else (-math.inf if higher else math.inf)
    return -m if higher else m
  return min(settings, key=key)


def best(runs: Runs, claimed: str | Sequence[str], among: Sequence[str], measure: str,
         *, higher: bool, check_id: str, claim: str, test: bool = True) -> Check:
  """"``claimed`` is the best of ``among`` in ``measure``" (``higher``: larger is
  better; several claimed settings: the best of them beats every other)."""
  claimed = [claimed] if isinstance(claimed, str) else list(claimed)
  others = [s for s in among if s not in claimed]

  def decide(m):
    top = _best_setting(runs, claimed, m, higher)
    pairs = [(o, _oriented(runs, top, o, m, higher)) for o in others]
    return (top,) + _ordered(pairs)

  top, verdict, rival, est = decide(measure)
  word = "higher" if higher else "lower"
  numbers = (f"{top} {_mean_std(runs.get(top, measure), measure)} vs {rival} "
             f"{_mean_std(runs.get(rival, measure), measure)} ({word} is better): "
             f"{_delta(est, _digits(measure))}")
  test_verdict = None
  if test and measure == "final_valid_acc":
    test_verdict = decide("final_test_acc")[1]
  mean_ours = {s: _nanmean(runs.get(s, measure)) for s in among}
  ours_best = _best_setting(runs, among, measure, higher)
  numbers += f"; our best mean: {ours_best}"
  return Check(check_id, claim, numbers, verdict, test_verdict,
               {"measure": measure, "claimed": top, "rival": rival,
                "difference": est.mean, "band": est.band, "means": mean_ours})


def _nanmean(x) -> float:
  x = _finite(x)
  return float(x.mean()) if x.size else math.nan


def ranking(runs: Runs, order: Sequence[str], measure: str, *, higher: bool,
            check_id: str, claim: str) -> Check:
  """"``order`` is ranked best to worst in ``measure``": every pair in order."""
  pairs = [(f"{a} vs {b}", _oriented(runs, a, b, measure, higher))
           for i, a in enumerate(order) for b in order[i + 1:]]
  verdict, label, est = _ordered(pairs)
  means = ", ".join(f"{s.split()[-1]} {_mean_std(runs.get(s, measure), measure)}"
                    for s in order)
  numbers = f"{means}; deciding pair {label}: {_delta(est, _digits(measure))}"
  return Check(check_id, claim, numbers, verdict, None,
               {"measure": measure, "pair": label, "difference": est.mean, "band": est.band})


def beats(runs: Runs, winners: Sequence[str], losers: Sequence[str], measure: str, *,
          higher: bool, check_id: str, claim: str) -> Check:
  """"every one of ``winners`` beats every one of ``losers``"."""
  def decide(m):
    pairs = [(f"{w} vs {l}", _oriented(runs, w, l, m, higher)) for w in winners
             for l in losers]
    return _ordered(pairs)

  verdict, label, est = decide(measure)
  w, l = label.split(" vs ")
  numbers = (f"deciding pair: {w} {_mean_std(runs.get(w, measure), measure)} vs {l} "
             f"{_mean_std(runs.get(l, measure), measure)}: {_delta(est, _digits(measure))}")
  test_verdict = decide("final_test_acc")[0] if measure == "final_valid_acc" else None
  return Check(check_id, claim, numbers, verdict, test_verdict,
               {"measure": measure, "pair": label, "difference": est.mean, "band": est.band})


def spread(runs: Runs, settings: Sequence[str], measure: str = "final_valid_acc") -> tuple:
  """The settings of the highest and lowest mean and the `Estimate` of their gap."""
  top = _best_setting(runs, settings, measure, True)
  bottom = _best_setting(runs, [s for s in settings if s != top], measure, False)
  return top, bottom, difference(runs.get(top, measure), runs.get(bottom, measure))


def similar(runs: Runs, settings: Sequence[str], *, check_id: str, claim: str,
            margin: float = SIMILAR_ACC, measure: str = "final_valid_acc",
            opposite: bool = False) -> Check:
  """"the final accuracies of ``settings`` are similar": the gap between the highest
  and the lowest mean at most ``margin`` (``opposite``: the claim that it is larger)."""
  def decide(m):
    top, bottom, est = spread(runs, settings, m)
    return top, bottom, est, (above(est, margin) if opposite else close(est, margin))

  top, bottom, est, verdict = decide(measure)
  numbers = (f"highest {top} {_mean_std(runs.get(top, measure), measure)}, lowest "
             f"{bottom} {_mean_std(runs.get(bottom, measure), measure)}: gap "
             f"{_delta(est, 4)} against the margin {margin}")
  test_verdict = decide("final_test_acc")[3] if measure == "final_valid_acc" else None
  return Check(check_id, claim, numbers, verdict, test_verdict,
               {"measure": measure, "highest": top, "lowest": bottom,
                "difference": est.mean, "band": est.band, "margin": margin})


def fewer_updates(runs: Runs, settings: Sequence[str], limit: int, *, check_id: str,
                  claim: str) -> Check:
  """"the sequence advances fewer than ``limit`` times" in each of ``settings`` (the
  largest count over their seeds; a count, no noise)."""
  counts = {s: _finite(runs.get(s, "sequence_advances")) for s in settings}
  most = {s: int(c.max()) for s, c in counts.items() if c.size}
  if not most:
    return Check(check_id, claim, "no sequence advances recorded", UNDECIDED)
  worst = max(most, key=most.get)
  verdict = REPRODUCED if most[worst] < limit else NOT_REPRODUCED
  numbers = (f"most advances over the seeds: {worst} {most[worst]} (limit {limit}); "
             + ", ".join(f"{s} {m}" for s, m in most.items()))
  return Check(check_id, claim, numbers, verdict, None,
               {"most": most, "limit": limit, "epochs": runs.epochs})


# Curve readings: per setting, one value per seed.
def trend(runs: Runs, setting: str) -> np.ndarray:
  """Per seed, the least-squares slope (accuracy per epoch) of the validation accuracy
  over the second half of the epochs (`TREND_FROM`)."""
  curve = runs.curve(setting)
  start = int(curve.shape[0] * TREND_FROM)
  window = curve[start:]
  if window.shape[0] < 2:
    return np.full(curve.shape[1], np.nan)
  t = np.arange(window.shape[0], dtype=np.float64)
  out = []
  for k in range(window.shape[1]):
    y = window[:, k]
    ok = np.isfinite(y)
    if ok.sum() < 2:
      out.append(np.nan)
      continue
    # Least squares written out: a flat curve has slope 0 exactly (polyfit gives 1e-17).
    tc, yc = t[ok] - t[ok].mean(), y[ok] - y[ok].mean()
    out.append(float(np.sum(tc * yc) / np.sum(tc * tc)))
  return np.asarray(out)


def early_drop(runs: Runs, setting: str) -> np.ndarray:
  """Per seed, the validation accuracy lost in drops over epochs 1..`EARLY_EPOCHS`
  (the sum of its decreases from one epoch to the next)."""
  curve = runs.curve(setting)[:EARLY_EPOCHS]
  return np.nansum(np.clip(-np.diff(curve, axis=0), 0, None), axis=0)


def curve_gap(runs: Runs, a: str, b: str) -> float:
  """The mean over epochs of the gap between the seed-mean validation-accuracy curves
  of ``a`` and ``b`` (shown beside a similarity claim; not a verdict)."""
  ca, cb = np.nanmean(runs.curve(a), axis=1), np.nanmean(runs.curve(b), axis=1)
  return float(np.nanmean(np.abs(ca - cb)))


def _per_seed_mean(runs: Runs, settings: Sequence[str], reading: Callable) -> np.ndarray:
  """Per seed, the mean of ``reading(runs, s)`` over ``settings`` (seed k of every
  setting is the same seed: `report_variants` order)."""
  return np.nanmean(np.stack([reading(runs, s) for s in settings]), axis=0)


def signs(runs: Runs, positive: Sequence[str], negative: Sequence[str], reading: Callable,
          *, check_id: str, claim: str, unit: str) -> Check:
  """"``reading`` is above 0 for ``positive`` and below 0 for ``negative``" (one-sample
  bands)."""
  pairs = [(f"{s} > 0", level(reading(runs, s))) for s in positive]
  pairs += [(f"{s} < 0", level(-reading(runs, s))) for s in negative]
  verdict, label, est = _ordered(pairs)
  shown = ", ".join(f"{s.split()[-1]} {level(reading(runs, s)).mean:+.5f}"
                    for s in (*positive, *negative))
  numbers = f"{unit}: {shown}; deciding: {label}: {_delta(est, 5)}"
  return Check(check_id, claim, numbers, verdict, None,
               {"pair": label, "value": est.mean, "band": est.band})


def group_below(runs: Runs, group: Sequence[str], others: Sequence[str], *, check_id: str,
                claim: str, measure: str = "final_valid_acc") -> Check:
  """"``group``'s mean (over its settings, per seed) is below ``others``'"."""
  def decide(m):
    reading = lambda r, s: r.get(s, m)
    est = difference(_per_seed_mean(runs, others, reading),
                     _per_seed_mean(runs, group, reading))
    return est, above(est)

  est, verdict = decide(measure)
  reading = lambda r, s: r.get(s, measure)
  numbers = (f"mean of the {len(others)} others "
             f"{_nanmean(_per_seed_mean(runs, others, reading)):.4f} vs the {len(group)} "
             f"{_nanmean(_per_seed_mean(runs, group, reading)):.4f}: {_delta(est, 4)}")
  return Check(check_id, claim, numbers, verdict, decide("final_test_acc")[1],
               {"difference": est.mean, "band": est.band})


# -------------------------------------------------------------------- the observations
@dataclasses.dataclass
class Observation:
  number: int
  claim: str
  checks: list[Check]
  note: str = ""

  @property
  def verdict(self) -> str:
    return combine([c.verdict for c in self.checks])


def _seqs(strategy: str) -> list[str]:
  return [f"{strategy} seq{i}" for i in range(1, 5)]


def _strategy_best(runs, strategy, seq, measure, higher, check_id, claim) -> Check:
  return best(runs, f"{strategy} seq{seq}", _seqs(strategy), measure, higher=higher,
              check_id=check_id, claim=claim)


def _every_strategy(runs, seq, measure, higher, check_id, claim) -> Check:
  """``seq`` is the best (``higher``) or worst of the four under every strategy."""
  parts = [_strategy_best(runs, s, seq, measure, higher, check_id, claim)
           for s in report.STRATEGIES]
  verdict = combine([p.verdict for p in parts])
  tests = [p.test_verdict for p in parts if p.test_verdict]
  numbers = "; ".join(f"{s}: {p.verdict} ({p.numbers.split('; our best')[0]})"
                      for s, p in zip(report.STRATEGIES, parts, strict=True))
  return Check(check_id, claim, numbers, verdict, combine(tests) if tests else None,
               {s: p.values for s, p in zip(report.STRATEGIES, parts, strict=True)})


def _fast(runs, strategy, seq, check_id, claim):
  return _strategy_best(runs, strategy, seq, "convergence_epoch", False, check_id, claim)


def _accurate(runs, strategy, seq, check_id, claim):
  return _strategy_best(runs, strategy, seq, "final_valid_acc", True, check_id, claim)


def _seq34_similar(runs: Runs, limit: int | None) -> list[Check]:
  checks = []
  for letter, strategy in zip("ab", ("By Cutoff", "By Oscillate"), strict=True):
    a, b = f"{strategy} seq3", f"{strategy} seq4"
    check = similar(runs, [a, b], check_id=f"7{letter}",
                    claim=f"{strategy}: seq3 and seq4 reach similar final accuracy")
    check.numbers += f"; mean curve gap over the epochs {curve_gap(runs, a, b):.4f}"
    checks.append(check)
  if limit is not None:
    checks.append(fewer_updates(
        runs, [f"{s} seq{i}" for s in ("By Cutoff", "By Oscillate") for i in (3, 4)], limit,
        check_id="7c", claim=f"the rate is updated fewer than {limit} times there "
                             f"(where seq3 and seq4 are close)"))
  return checks


def mnist_observations(runs: Runs) -> list[Observation]:
  """Section 4.2, MNIST (1)-(7)."""
  all14 = list(report.SETTINGS)
  conv = {s: _mean_std(runs.get(s, "convergence_epoch"), "convergence_epoch")
          for s in all14}
  slowest, fastest, _ = spread(runs, all14, "convergence_epoch")
  obs = [
      Observation(1, "By Epoch: seq3 converges fastest, seq4 reaches the highest final "
                     "accuracy", [
          _fast(runs, "By Epoch", 3, "1a", "By Epoch: seq3 converges fastest"),
          _accurate(runs, "By Epoch", 4, "1b", "By Epoch: seq4 most accurate")]),
      Observation(2, "By Cutoff: seq4 converges fastest and is the most accurate", [
          _fast(runs, "By Cutoff", 4, "2a", "By Cutoff: seq4 converges fastest"),
          _accurate(runs, "By Cutoff", 4, "2b", "By Cutoff: seq4 most accurate")]),
      Observation(3, "By Oscillate: seq3 converges fastest and is the most accurate", [
          _fast(runs, "By Oscillate", 3, "3a", "By Oscillate: seq3 converges fastest"),
          _accurate(runs, "By Oscillate", 3, "3b", "By Oscillate: seq3 most accurate")]),
      Observation(4, "seq3 By Epoch converges fastest of all 14 settings (after 19 epochs)",
                  [best(runs, "By Epoch seq3", all14, "convergence_epoch", higher=False,
                        check_id="4", claim="seq3 By Epoch converges fastest of all 14")],
                  note=f"Convergence epoch of By Epoch seq3: ours "
                       f"{conv['By Epoch seq3']}, the report's 19 (its rule is not "
                       f"stated; ours: tolerance {runs.tolerance})."),
      Observation(5, "seq4 By Cutoff is the most accurate and beats both benchmarks; "
                     "under every strategy seq4 is the best and seq1 the worst", [
          best(runs, "By Cutoff seq4", all14, "final_valid_acc", higher=True,
               check_id="5a", claim="seq4 By Cutoff most accurate of all 14"),
          beats(runs, ["By Cutoff seq4"], ["SGD", "Adam"], "final_valid_acc", higher=True,
                check_id="5b", claim="seq4 By Cutoff beats SGD and Adam"),
          _every_strategy(runs, 4, "final_valid_acc", True, "5c",
                          "seq4 most accurate under every strategy"),
          _every_strategy(runs, 1, "final_valid_acc", False, "5d",
                          "seq1 least accurate under every strategy")]),
      Observation(6, "the differences among the settings are very small", [
          similar(runs, all14, check_id="6",
                  claim="final accuracies of the 14 settings within the margin")],
                  note=f"Not judged: convergence epochs, which range from "
                       f"{conv[fastest]} ({fastest}) to {conv[slowest]} ({slowest}) here "
                       f"and from 19 to 48 in the report's own Table 1."),
      Observation(7, "By Cutoff and By Oscillate: seq3 and seq4 behave similarly (the "
                     "rate is updated fewer than 20 times)", _seq34_similar(runs, 20)),
  ]
  return obs


def cifar_observations(runs: Runs) -> list[Observation]:
  """Section 4.3, CIFAR-10 (1)-(7)."""
  all14 = list(report.SETTINGS)
  cut, osc = _seqs("By Cutoff"), _seqs("By Oscillate")
  seq1s = [f"{s} seq1" for s in report.STRATEGIES]
  seq34 = [f"{s} seq{i}" for s in report.STRATEGIES for i in (3, 4)]
  decay = _seqs("By Epoch") + osc
  early = lambda r, s: early_drop(r, s)
  fluct = difference(_per_seed_mean(runs, seq34, early), _per_seed_mean(runs, seq1s, early))
  fluct_check = Check(
      "4c", f"seq3 and seq4 fluctuate more than seq1 in the first {EARLY_EPOCHS} epochs",
      f"validation accuracy lost in drops over epochs 1-{EARLY_EPOCHS}, mean over the "
      f"strategies: seq3/seq4 {_nanmean(_per_seed_mean(runs, seq34, early)):.4f}, seq1 "
      f"{_nanmean(_per_seed_mean(runs, seq1s, early)):.4f}: {_delta(fluct, 4)}",
      above(fluct), None, {"difference": fluct.mean, "band": fluct.band})
  conv = _mean_std(runs.get("By Epoch seq1", "convergence_epoch"), "convergence_epoch")
  conv_osc = _mean_std(runs.get("By Oscillate seq1", "convergence_epoch"),
                       "convergence_epoch")
  obs = [
      Observation(1, "By Epoch: seq1 converges fastest, seq3 reaches the highest final "
                     "accuracy", [
          _fast(runs, "By Epoch", 1, "1a", "By Epoch: seq1 converges fastest"),
          _accurate(runs, "By Epoch", 3, "1b", "By Epoch: seq3 most accurate")]),
      Observation(2, "By Cutoff: only seq1 converges, with an increasing trend (the "
                     "others fluctuate and decrease); seq1 is the most accurate", [
          _accurate(runs, "By Cutoff", 1, "2a", "By Cutoff: seq1 most accurate"),
          _fast(runs, "By Cutoff", 1, "2b", "By Cutoff: seq1 converges first"),
          signs(runs, ["By Cutoff seq1"], cut[1:], trend, check_id="2c",
                claim="By Cutoff: seq1's accuracy rises, seq2-4's fall (second half)",
                unit="slope of the validation accuracy per epoch over the second half")]),
      Observation(3, "By Oscillate: convergence seq1 < seq2 < seq4 < seq3; the four reach "
                     "similar final accuracy", [
          ranking(runs, [f"By Oscillate seq{i}" for i in (1, 2, 4, 3)], "convergence_epoch",
                  higher=False, check_id="3a",
                  claim="By Oscillate: convergence seq1 < seq2 < seq4 < seq3"),
          similar(runs, osc, check_id="3b",
                  claim="By Oscillate: the four final accuracies within the margin")]),
      Observation(4, "seq1 By Epoch and seq1 By Oscillate converge fastest of all (8 "
                     "epochs); seq1 fastest under every strategy; seq3 and seq4 fluctuate "
                     "in the first epochs", [
          best(runs, ["By Epoch seq1", "By Oscillate seq1"], all14, "convergence_epoch",
               higher=False, check_id="4a",
               claim="seq1 By Epoch or By Oscillate converges fastest of all 14"),
          _every_strategy(runs, 1, "convergence_epoch", False, "4b",
                          "seq1 converges fastest under every strategy"),
          fluct_check],
                  note=f"Convergence epoch of seq1: By Epoch {conv}, By Oscillate "
                       f"{conv_osc} (the report's 8; its rule is not stated; ours: "
                       f"tolerance {runs.tolerance})."),
      Observation(5, "seq3 By Epoch is the most accurate, well above both benchmarks; every "
                     "By Epoch and By Oscillate setting beats the benchmarks; By Cutoff is "
                     "worse (its rate is updated fewer than 5 times)", [
          best(runs, "By Epoch seq3", all14, "final_valid_acc", higher=True,
               check_id="5a", claim="seq3 By Epoch most accurate of all 14"),
          beats(runs, ["By Epoch seq3"], ["SGD", "Adam"], "final_valid_acc", higher=True,
                check_id="5b", claim="seq3 By Epoch beats SGD and Adam"),
          beats(runs, decay, ["SGD", "Adam"], "final_valid_acc", higher=True,
                check_id="5c", claim="all 8 By Epoch / By Oscillate settings beat both "
                                     "benchmarks"),
          group_below(runs, cut, decay, check_id="5d",
                      claim="By Cutoff's mean accuracy below By Epoch's and By Oscillate's"),
          fewer_updates(runs, cut, 5, check_id="5e",
                        claim="By Cutoff updates the rate fewer than 5 times")]),
      Observation(6, "unlike MNIST, the differences between the settings are much clearer",
                  [similar(runs, all14, check_id="6", opposite=True,
                           claim="the gap between the 14 final accuracies exceeds the "
                                 "margin")],
                  note="The reading of MNIST (6) reversed: the gap between the highest and "
                       "lowest mean final accuracy is larger than the similarity margin."),
      Observation(7, "as on MNIST, under By Cutoff and By Oscillate seq3 and seq4 behave "
                     "similarly", _seq34_similar(runs, 20)),
  ]
  return obs


OBSERVATIONS: dict[str, Callable[[Runs], list[Observation]]] = {
    "mnist": mnist_observations, "cifar10": cifar_observations}


# ------------------------------------------------------------- the other loss_0 reading
def changed(est: Estimate) -> str:
  """Whether a difference between the two readings is outside its noise band."""
  verdict = above(Estimate(abs(est.mean), est.band))
  return {REPRODUCED: "changed", NOT_REPRODUCED: "within noise"}.get(verdict, verdict)


def compare_loss0(full: Runs, other: Runs) -> dict:
  """The settings of ``other`` (a run of the other ``--loss0`` reading, e.g. ``--strategies
  cutoff``) beside the same settings of ``full`` (all 14): per setting the final
  accuracy and convergence epoch under each reading and whether they changed beyond
  noise; per strategy the ranking of the sequences (by mean) under each; and the
  fastest / most accurate of all 14 with ``other``'s settings in place of ``full``'s."""
  if full.dataset != other.dataset:
    raise ReportError(f"the two runs are of different datasets ({full.dataset}, "
                      f"{other.dataset}).")
  readings = full.info.get("loss0"), other.info.get("loss0")
  if readings[0] == readings[1]:
    raise ReportError(f"both runs use --loss0 {readings[0]}: give a run of the other "
                      f"reading.")
  if full.epochs != other.epochs:
    raise ReportError(f"the runs have {full.epochs} and {other.epochs} epochs.")
  common_settings = [s for s in report.SETTINGS if s in other.values
                     and s in full.values and s not in ("SGD", "Adam")]
  if not common_settings:
    raise ReportError("the other run has none of the strategies' settings.")
  rows = []
  for s in common_settings:
    row = {"setting": s}
    for m in ("final_valid_acc", "convergence_epoch"):
      est = difference(other.get(s, m), full.get(s, m))
      row[m] = {readings[0]: _mean_std(full.get(s, m), m),
                readings[1]: _mean_std(other.get(s, m), m),
                "difference": est.mean, "band": est.band, "verdict": changed(est)}
    rows.append(row)
  rankings = {}
  for strategy in report.STRATEGIES:
    settings = [s for s in _seqs(strategy) if s in common_settings]
    if len(settings) < 2:
      continue
    rankings[strategy] = {}
    for m, higher in (("final_valid_acc", True), ("convergence_epoch", False)):
      order = {}
      for name, runs in zip(readings, (full, other), strict=True):
        means = {s: _nanmean(runs.get(s, m)) for s in settings}
        order[name] = sorted(settings, key=lambda s: -means[s] if higher else means[s])
      rankings[strategy][m] = order
  merged = Runs(full.dataset, {s: other.values[s] if s in common_settings else v
                               for s, v in full.values.items()})
  overall = {}
  for name, runs in zip(readings, (full, merged), strict=True):
    overall[name] = {
        "most_accurate": _best_setting(runs, list(report.SETTINGS), "final_valid_acc", True),
        "fastest": _best_setting(runs, list(report.SETTINGS), "convergence_epoch", False)}
  return {"dataset": full.dataset, "readings": list(readings), "seeds": [full.seeds,
          other.seeds], "rows": rows, "rankings": rankings, "overall": overall,
          "oscillate_note": full.info.get("loss0_changes_oscillate", "not recorded")}


def loss0_markdown(payload: dict) -> str:
  a, b = payload["readings"]
  title = report.DATASETS[payload["dataset"]]["title"]
  lines = [f"### {title}: By Cutoff's loss_0, --loss0 {a} vs --loss0 {b}", "",
           f"Seeds: {payload['seeds'][0]} and {payload['seeds'][1]}. \"changed\": the "
           f"difference of the means is outside {NOISE_Z:g} standard errors.", "",
           f"| Setting | Accuracy ({a}) | Accuracy ({b}) | | Convergence ({a}) "
           f"| Convergence ({b}) | |", "|---|---|---|---|---|---|---|"]
  for r in payload["rows"]:
    acc, conv = r["final_valid_acc"], r["convergence_epoch"]
    lines.append(f"| {r['setting']} | {acc[a]} | {acc[b]} | {acc['verdict']} | {conv[a]} "
                 f"| {conv[b]} | {conv['verdict']} |")
  lines.append("")
  for strategy, by in payload["rankings"].items():
    for m, label in (("final_valid_acc", "accuracy, most accurate first"),
                     ("convergence_epoch", "convergence epoch, fastest first")):
      order = by[m]
      same = "same" if order[a] == order[b] else "CHANGED"
      lines.append(f"* {strategy}, ranking by mean {label}: {a}: "
                   f"{', '.join(s.split()[-1] for s in order[a])}; {b}: "
                   f"{', '.join(s.split()[-1] for s in order[b])} ({same}).")
  oa, ob = payload["overall"][a], payload["overall"][b]
  lines.append(f"* Of all 14 (the other reading's settings in place): most accurate "
               f"{oa['most_accurate']} / {ob['most_accurate']}, fastest {oa['fastest']} "
               f"/ {ob['fastest']}.")
  note = payload["oscillate_note"]
  lines.append("* By Oscillate under the other reading: " + (
      "unchanged (no By Oscillate seed raised its validation loss in epoch 1 above the "
      "untrained model's)." if note == [] else
      f"would change for {', '.join(note)} (epoch 1 raised the loss above the untrained "
      f"model's): run it too." if isinstance(note, list) and note else
      "not checked (the run did not record the untrained model's loss)."))
  lines.append("")
  return "\n".join(lines)


# ------------------------------------------------------------------------------ output
def observe(runs: Runs) -> dict:
  """Every observation of ``runs.dataset``, as a JSON-able dict."""
  observations = OBSERVATIONS[runs.dataset](runs)
  settings = {s: {m: {"mean": _nanmean(v), "std": float(np.std(_finite(v), ddof=1))
                      if _finite(v).size > 1 else None,
                      "per_seed": v.tolist()} for m, v in runs.values[s].items()}
              for s in report.SETTINGS}
  return {
      "dataset": runs.dataset, "section": SECTIONS[runs.dataset], "seeds": runs.seeds,
      "epochs": runs.epochs, "tolerance": runs.tolerance,
      "loss0": runs.info.get("loss0"),
      "definitions": {"noise_z": NOISE_Z, "similar_acc": SIMILAR_ACC,
                      "early_epochs": EARLY_EPOCHS, "trend_from": TREND_FROM},
      "verdicts": {str(o.number): o.verdict for o in observations},
      "observations": [{"number": o.number, "claim": o.claim, "verdict": o.verdict,
                        "note": o.note, "checks": [dataclasses.asdict(c) for c in o.checks]}
                       for o in observations],
      "settings": settings, "info": dict(runs.info),
  }


def _cell(text: str) -> str:
  return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(payload: dict) -> str:
  """The observations as a markdown section (one table row per claim)."""
  title = report.DATASETS[payload["dataset"]]["title"]
  info = payload["info"]
  seeds = payload["seeds"]
  stopped = ""
  if info.get("config_epochs") and info["config_epochs"] != payload["epochs"]:
    stopped = f" (stopped at epoch {payload['epochs']} of {info['config_epochs']})"
  lines = [
      f"### {title}: the report's observations (section {payload['section']}), checked",
      "",
      f"Our run: {seeds} seed{'s' if seeds != 1 else ''}, {payload['epochs']} epochs{stopped}"
      + (f", data: {info['data_note']} ({info.get('sizes', '?')})" if info.get("data_note")
         else "")
      + f"; By Cutoff's loss_0: --loss0 {payload['loss0']}. Convergence epoch: the first "
      f"epoch after which the validation accuracy stays within {payload['tolerance']} of "
      f"its final value.",
      "",
      f"How a claim is decided: from the mean over seeds of a difference d (oriented so "
      f"the claim says d > 0) and its noise band, {NOISE_Z:g} standard errors of d "
      f"(sample std over seeds): **reproduced** if d - band > 0, **not reproduced** if "
      f"d + band < 0, **within noise** otherwise (a tie is within noise). \"Similar\" "
      f"accuracies: |d| + band <= {SIMILAR_ACC} (reproduced), |d| - band > "
      f"{SIMILAR_ACC} (not reproduced). Counts of rate updates: the largest over the "
      f"seeds, no noise. "
      + ("With one seed there is no band: orderings and similarities say **needs "
         "seeds**. " if seeds < 2 else "")
      + "Accuracy = final validation accuracy (the report's); the verdict of the same "
      "claim on the final test accuracy is given as \"test: ...\".",
      "",
      "| # | The report's claim | Our numbers | Verdict |",
      "|---|---|---|---|",
  ]
  for o in payload["observations"]:
    for c in o["checks"]:
      verdict = c["verdict"] + (f" (test: {c['test_verdict']})" if c["test_verdict"]
                                else "")
      lines.append(f"| ({c['id']}) | {_cell(c['claim'])} | {_cell(c['numbers'])} "
                   f"| {verdict} |")
  lines += ["", "Per observation (all its claims):", ""]
  for o in payload["observations"]:
    note = f" {o['note']}" if o["note"] else ""
    lines.append(f"* ({o['number']}) {o['claim']}: **{o['verdict']}**.{note}")
  lines.append("")
  return "\n".join(lines)


def write(runs: Runs, folder: str | Path) -> dict:
  """Writes ``observations.md`` and ``observations.json`` into ``folder``; returns the
  payload with ``markdown`` and the paths."""
  folder = Path(folder)
  payload = observe(runs)
  text = markdown(payload)
  (folder / "observations.md").write_text(text)
  common.write_json(folder / "observations.json", payload)
  return dict(payload, markdown=text, paths=[str(folder / "observations.md"),
                                             str(folder / "observations.json")])


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("folder", help="a dataset folder of report_lr_decaying.py: "
                                     "<out>/mnist or <out>/cifar10")
  parser.add_argument("--other-loss0", metavar="FOLDER", default=None,
                      help="the same dataset's folder of a run of the other --loss0 "
                           "reading (e.g. --strategies cutoff): also writes "
                           "loss0_comparison.md/.json")
  parser.add_argument("--out", default=None,
                      help="write the files here instead of into `folder` (e.g. for a "
                           "read-only run folder)")
  args = parser.parse_args(argv)
  out = Path(args.out or args.folder)
  try:
    runs = from_folder(args.folder)
    other = (from_folder(args.other_loss0, require_all=False) if args.other_loss0
             else None)
    comparison = compare_loss0(runs, other) if other is not None else None
  except ReportError as err:
    print(f"report_observations.py: error: {err}", file=sys.stderr)
    raise SystemExit(2) from None
  out.mkdir(parents=True, exist_ok=True)
  payload = write(runs, out)
  print(payload["markdown"])
  if comparison is not None:
    text = loss0_markdown(comparison)
    (out / "loss0_comparison.md").write_text(text)
    common.write_json(out / "loss0_comparison.json", comparison)
    print(text)
    payload["loss0_comparison"] = comparison
  return payload


if __name__ == "__main__":
  main(sys.argv[1:])
