"""Keeps a reproducible sample of a cosmic-ray session's mutants; marks the rest skipped.

A full cosmic-ray session over the engine and the strategies holds ~1,600 mutants, and
one test run of the engine costs tens of seconds on a 2-core CPU, so the habit is a
fixed sample: only operators that model a plausible bug (numbers, comparisons,
arithmetic and boolean operators, `not`, True/False, loops), then at most
``--per-module`` of them per file, picked by a hash of (file, line, operator,
occurrence) with ``--seed``.  Same source + same seed = same mutants, so a "before"
and an "after" score compare the same population.

Usage: python tools/cr_sample.py SESSION.sqlite [--per-module N] [--seed S]
       python tools/cr_sample.py SESSION.sqlite --score   (cr-rate counts skipped as killed)
"""

from __future__ import annotations

import argparse
import hashlib
import re
from collections import defaultdict

from cosmic_ray.work_db import use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

_ARITH = "(Add|Sub|Mul|Div|FloorDiv|Mod|Pow|BitAnd|BitOr)"
PLAUSIBLE = re.compile(
    r"core/(NumberReplacer|AddNot|ReplaceTrueWithFalse|ReplaceFalseWithTrue"
    r"|ReplaceAndWithOr|ReplaceOrWithAnd|ZeroIterationForLoop|ReplaceUnaryOperator_\w+"
    r"|ReplaceComparisonOperator_(Eq|NotEq|Lt|LtE|Gt|GtE)_(Eq|NotEq|Lt|LtE|Gt|GtE)"
    rf"|ReplaceBinaryOperator_{_ARITH}_{_ARITH})$")


def _rank(seed: int, spec) -> str:
  text = f"{seed}|{spec.module_path}|{spec.start_pos}|{spec.operator_name}|{spec.occurrence}"
  return hashlib.sha256(text.encode()).hexdigest()


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("session")
  parser.add_argument("--per-module", type=int, default=8, help="0 keeps every mutant")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--score", action="store_true", help="print the score and survivors")
  args = parser.parse_args(argv)
  if args.score:
    return score(args.session)
  with use_db(args.session) as db:
    by_module = defaultdict(list)
    skip = []
    for item in db.pending_work_items:
      (spec,) = item.mutations
      if PLAUSIBLE.match(spec.operator_name):
        by_module[str(spec.module_path)].append(item)
      else:
        skip.append(item.job_id)
    kept = 0
    for module, items in sorted(by_module.items()):
      items.sort(key=lambda it: _rank(args.seed, it.mutations[0]))
      keep = items if args.per_module <= 0 else items[: args.per_module]
      kept += len(keep)
      skip += [it.job_id for it in items[len(keep):]]
      print(f"{module}: {len(keep)} of {len(items)} plausible mutants kept")
    db.set_multiple_results(skip, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    print(f"{kept} mutants to run, {len(skip)} skipped")


def score(session: str) -> None:
  """Killed / run mutants (skipped ones excluded; a timeout counts as killed), survivors."""
  with use_db(session) as db:
    specs = {item.job_id: item.mutations[0] for item in db.work_items}
    killed, survivors, other = 0, [], 0
    for job_id, result in db.results:
      if result.worker_outcome == WorkerOutcome.SKIPPED:
        continue
      if result.test_outcome == TestOutcome.SURVIVED:
        survivors.append(job_id)
      elif result.test_outcome in (TestOutcome.KILLED, TestOutcome.INCOMPETENT):
        killed += 1
      else:
        other += 1
    run = killed + len(survivors)
    print(f"mutation score: {killed}/{run} killed"
          + (f" = {100 * killed / run:.1f}%" if run else "") + f" ({other} not run)")
    for job_id in survivors:
      spec = specs[job_id]
      print(f"  SURVIVED {spec.module_path}:{spec.start_pos[0]} {spec.operator_name}"
            f" #{spec.occurrence} [{job_id}]")


if __name__ == "__main__":
  main()
