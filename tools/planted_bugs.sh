#!/usr/bin/env bash
# Re-plants six engine/model bugs the tests once missed, one at a time, in scratch copies of
# the tree, and runs the tests that must catch each; prints CAUGHT (tests failed) or MISSED
# per bug.
#
#   tools/planted_bugs.sh            # all six
#   tools/planted_bugs.sh 3 4        # only bugs 3 and 4
#
# Each bug is a sed expression on one or two files; the script first checks that the
# expression really changed the file (a refactor that moves the line makes it say so).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
ENGINE_TESTS="tests/test_engine_reference.py tests/test_train.py"
declare -A FILE SED TESTS WHAT
WHAT[1]="the same data permutation reused every epoch"
FILE[1]="lrjax/train/engine/epoch.py"; SED[1]='s/_ORDER_SALT, epoch)/_ORDER_SALT, 0)/g'
TESTS[1]=$ENGINE_TESTS
WHAT[2]="one minibatch skipped every epoch (epoch program and sweep alike)"
FILE[2]="lrjax/train/engine/epoch.py lrjax/train/api.py"
SED[2]='s|steps = n // batch_size$|steps = n // batch_size - 1|; s|steps = dataset.train_x.shape\[0\] // config.batch_size$|steps = dataset.train_x.shape[0] // config.batch_size - 1|'
TESTS[2]=$ENGINE_TESTS
WHAT[3]="value_fn ignores its argument (Newton's rate never moves)"
FILE[3]="lrjax/train/engine/step.py"; SED[3]='s/return loss_fn(params)\[0\]/return loss_fn(state.params)[0]/'
TESTS[3]=$ENGINE_TESTS
WHAT[4]="the epoch boundary fed on the second step of the epoch"
FILE[4]="lrjax/train/engine/epoch.py"; SED[4]='s/boundary = (i == 0) \& (st.epoch > 0)/boundary = (i == 1) \& (st.epoch > 0)/'
TESTS[4]=$ENGINE_TESTS
WHAT[5]="the training loss fed to the strategies instead of the validation loss"
FILE[5]="lrjax/train/engine/epoch.py"; SED[5]='s/state._replace(valid_loss=valid_loss,/state._replace(valid_loss=train_loss,/'
TESTS[5]=$ENGINE_TESTS
WHAT[6]="a ResNet block losing its output ReLU"
FILE[6]="lrjax/models/resnet.py"; SED[6]='s/return nn.relu(x + y)/return x + y/'
TESTS[6]="tests/test_model_reference.py tests/test_models.py"

status=0
for bug in ${@:-1 2 3 4 5 6}; do
  work=$(mktemp -d /tmp/planted_bug_$bug.XXXXXX)
  (cd "$REPO" && tar cf - lrjax tests pyproject.toml) | (cd "$work" && tar xf -)
  for f in ${FILE[$bug]}; do
    cp "$work/$f" "$work/$f.orig"
    sed -i -e "${SED[$bug]}" "$work/$f"
    if cmp -s "$work/$f" "$work/$f.orig"; then
      echo "bug $bug: sed did not change $f (source moved?)"; status=2; continue 2
    fi
    rm "$work/$f.orig"
  done
  log="$work/pytest.log"
  (cd "$work" && PYTHONPATH="$work" "$PY" -m pytest -x -q -p no:cacheprovider -m "not slow" \
      ${TESTS[$bug]} > "$log" 2>&1)
  rc=$?
  if [ $rc -eq 1 ]; then
    echo "bug $bug CAUGHT: ${WHAT[$bug]}"
    grep -m1 "^FAILED" "$log" | cut -c1-200
  else
    echo "bug $bug MISSED (pytest rc $rc): ${WHAT[$bug]}  log: $log"; status=1
  fi
done
exit $status
