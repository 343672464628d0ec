#!/usr/bin/env bash
# Mutation testing of the engine and the strategies with cosmic-ray (pinned: 8.7.0).
#
#   tools/mutation.sh                 # sample of 8 mutants per file, the engine tests
#   MUTATION_SAMPLE=0 tools/mutation.sh   # every plausible mutant (hours on 2 CPU cores)
#   MUTATION_RERUN=/tmp/old/session.sqlite tools/mutation.sh   # only the survivors of an
#       earlier session, against today's tests (the killed ones keep their result)
#
# Runs in a scratch copy of the tree (cosmic-ray edits the source in place), so the
# work tree is never touched.  Prints the per-mutant report and the survival rate, and
# leaves the session database and report in $MUTATION_OUT (default: a new /tmp folder).
# Environment: PYTHON (interpreter with the test deps and cosmic-ray), MUTATION_SAMPLE
# (mutants per file, 0 = all), MUTATION_SEED, MUTATION_TESTS (test files, fastest first),
# MUTATION_TIMEOUT (seconds per mutant).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
BIN=$(dirname "$(command -v "$PY")")
SAMPLE=${MUTATION_SAMPLE:-8}
SEED=${MUTATION_SEED:-0}
TESTS=${MUTATION_TESTS:-"tests/test_engine_reference.py tests/test_train.py tests/test_strategies.py"}
TIMEOUT=${MUTATION_TIMEOUT:-400}
OUT=${MUTATION_OUT:-$(mktemp -d /tmp/lrjax_mutation.XXXXXX)}
mkdir -p "$OUT/tree"
# Source, tests and tools only (no .git, no outputs).
(cd "$REPO" && tar cf - lrjax tests tools pyproject.toml) | (cd "$OUT/tree" && tar xf -)
cd "$OUT/tree"
cat > cosmic-ray.toml <<TOML
[cosmic-ray]
module-path = ["lrjax/train/engine/epoch.py", "lrjax/train/engine/step.py", "lrjax/train/frontends/optimizers.py",
               "lrjax/train/api.py", "lrjax/strategies/strategy.py"]
timeout = $TIMEOUT.0
excluded-modules = []
test-command = "$PY -m pytest -x -q -p no:cacheprovider -m 'not slow' $TESTS"

[cosmic-ray.distributor]
name = "local"
TOML
export PYTHONPATH="$OUT/tree" JAX_PLATFORMS=cpu
# Unmutated programs compile once: later mutants hit XLA's persistent cache.
export JAX_COMPILATION_CACHE_DIR="$OUT/jax_cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
if [ -n "${MUTATION_RERUN:-}" ]; then
  cp "$MUTATION_RERUN" "$OUT/session.sqlite"
  "$PY" tools/cr_sample.py "$OUT/session.sqlite" --rerun-survivors
else
  "$BIN/cosmic-ray" init cosmic-ray.toml "$OUT/session.sqlite"
  "$PY" tools/cr_sample.py "$OUT/session.sqlite" --per-module "$SAMPLE" --seed "$SEED"
fi
"$BIN/cosmic-ray" baseline cosmic-ray.toml   # the unmutated tree must pass
"$BIN/cosmic-ray" exec cosmic-ray.toml "$OUT/session.sqlite"
"$BIN/cr-report" "$OUT/session.sqlite" > "$OUT/report.txt" || true
grep -v "^\[job-id\]\|worker outcome: skipped\|^$" "$OUT/report.txt" | tail -n 400 || true
"$PY" tools/cr_sample.py "$OUT/session.sqlite" --score | tee "$OUT/score.txt"
echo "session and report in $OUT"
