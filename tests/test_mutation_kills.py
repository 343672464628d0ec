"""Small contracts found by mutation testing (tools/mutation.sh, tests/MUTANTS.md) that no
other test file states: each test here kills a mutant that survived the suite."""

from __future__ import annotations

import numpy as np
import pytest

from lrjax import schedules, strategies


@pytest.mark.parametrize("rule", [np.array([1, 2]), np.array([[1]]), np.array(1.0), 5, -1])
def test_a_rule_code_that_is_not_a_scalar_integer_code_is_refused(rule):
  with pytest.raises(ValueError, match="`rule`"):
    strategies.scale_by_strategy(schedules.seq1(0.1), rule)


def test_a_scalar_integer_array_rule_code_is_accepted():
  tx = strategies.scale_by_strategy(schedules.seq1(0.1), np.array(1, np.int32))
  state = tx.init(np.zeros(2, np.float32))
  _, state = tx.update(np.ones(2, np.float32), state, valid_loss=1.0)
  assert int(strategies.current_index(state)) == 1  # code 1 = epoch: advanced
