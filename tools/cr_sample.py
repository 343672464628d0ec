"""Keeps a reproducible sample of a cosmic-ray session's mutants; marks the rest skipped.

A full cosmic-ray session over the engine and the strategies holds ~1,600 mutants, and
one test run of the engine costs tens of seconds on a 2-core CPU, so the habit is a
fixed sample: only operators that model a plausible bug (numbers, comparisons,
arithmetic and boolean operators, `not`, True/False, loops), then at most
``--per-module`` of them per file, picked by a hash of (file, line, operator,
occurrence) with ``--seed``.  Same source + same seed = same mutants, so a "before"
and an "after" score compare the same population.

Mutants inside annotations are equivalent by construction (every module has
``from __future__ import annotations``: annotations are never evaluated); the score
names them apart.

Usage: python tools/cr_sample.py SESSION.sqlite [--per-module N] [--seed S]
       python tools/cr_sample.py SESSION.sqlite --score   (cr-rate counts skipped as killed)
       python tools/cr_sample.py SESSION.sqlite --rerun-survivors   (survivors -> pending,
           annotation mutants excepted: a later ``cosmic-ray exec`` runs them again)
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import re
import sqlite3
from collections import defaultdict
from pathlib import Path

from cosmic_ray.work_db import use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

_ARITH = "(Add|Sub|Mul|Div|FloorDiv|Mod|Pow|BitAnd|BitOr)"
PLAUSIBLE = re.compile(
    r"core/(NumberReplacer|AddNot|ReplaceTrueWithFalse|ReplaceFalseWithTrue"
    r"|ReplaceAndWithOr|ReplaceOrWithAnd|ZeroIterationForLoop|ReplaceUnaryOperator_\w+"
    r"|ReplaceComparisonOperator_(Eq|NotEq|Lt|LtE|Gt|GtE)_(Eq|NotEq|Lt|LtE|Gt|GtE)"
    rf"|ReplaceBinaryOperator_{_ARITH}_{_ARITH})$")


@functools.cache
def _annotation_spans(path: str) -> tuple:
  spans = []
  for node in ast.walk(ast.parse(Path(path).read_text())):
    for ann in ([node.annotation] if isinstance(node, (ast.arg, ast.AnnAssign)) else []) + (
        [node.returns] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else []):
      if ann is not None:
        spans.append(((ann.lineno, ann.col_offset), (ann.end_lineno, ann.end_col_offset)))
  return tuple(spans)


def in_annotation(spec) -> bool:
  """True when the mutated code is (inside) a type annotation."""
  if not Path(spec.module_path).exists():
    return False
  start = tuple(spec.start_pos)
  return any(lo <= start < hi for lo, hi in _annotation_spans(str(spec.module_path)))


def _rank(seed: int, spec) -> str:
  text = f"{seed}|{spec.module_path}|{spec.start_pos}|{spec.operator_name}|{spec.occurrence}"
  return hashlib.sha256(text.encode()).hexdigest()


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("session")
  parser.add_argument("--per-module", type=int, default=8, help="0 keeps every mutant")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--score", action="store_true", help="print the score and survivors")
  parser.add_argument("--rerun-survivors", action="store_true")
  args = parser.parse_args(argv)
  if args.score:
    return score(args.session)
  if args.rerun_survivors:
    return rerun_survivors(args.session)
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
    pending = db.num_work_items - db.num_results
    run = killed + len(survivors)
    annotations = [j for j in survivors if in_annotation(specs[j])]
    print(f"mutation score: {killed}/{run} killed"
          + (f" = {100 * killed / run:.1f}%" if run else "")
          + f"; {len(annotations)} survivors in annotations (equivalent)"
          + (f" -> {killed}/{run - len(annotations)} = "
             f"{100 * killed / max(run - len(annotations), 1):.1f}% of the non-equivalent"
             if annotations else "") + f" ({other} errored, {pending} pending)")
    for job_id in survivors:
      spec = specs[job_id]
      note = " (annotation)" if job_id in annotations else ""
      print(f"  SURVIVED {spec.module_path}:{spec.start_pos[0]} {spec.operator_name}"
            f" #{spec.occurrence} [{job_id}]{note}")


def rerun_survivors(session: str) -> None:
  """Marks the survivors of an earlier session pending again (annotations excepted)."""
  with use_db(session) as db:
    specs = {item.job_id: item.mutations[0] for item in db.work_items}
    again = [job_id for job_id, result in db.results
             if result.test_outcome == TestOutcome.SURVIVED
             and not in_annotation(specs[job_id])]
  with sqlite3.connect(session) as con:
    con.executemany("DELETE FROM work_results WHERE job_id = ?", [(j,) for j in again])
  print(f"{len(again)} survivors to run again")


if __name__ == "__main__":
  main()
