"""`lrjax.errors`: what the caller must change is a typed error, told apart from a bug."""

import pickle

import pytest

from lrjax import schedules, strategies
from lrjax.errors import ArgumentError, ArgumentTypeError, UsageError


def test_an_argument_error_names_the_argument_then_the_problem():
  err = ArgumentError("batch_size", "must be at least 1, got 0.")
  assert str(err) == "`batch_size` must be at least 1, got 0."
  assert err.message("--batch-size") == "--batch-size must be at least 1, got 0."
  assert (err.argument, err.problem) == ("batch_size", "must be at least 1, got 0.")
  # A problem that starts with a colon follows the name directly.
  assert str(ArgumentError("model", ": it has no `train` argument.")) == (
      "`model`: it has no `train` argument.")


def test_the_hierarchy_keeps_except_valueerror_and_except_typeerror_working():
  assert issubclass(ArgumentError, UsageError) and issubclass(UsageError, ValueError)
  assert issubclass(ArgumentTypeError, ArgumentError) and issubclass(ArgumentTypeError,
                                                                     TypeError)
  assert not issubclass(ArgumentError, TypeError)


@pytest.mark.parametrize("cls", [ArgumentError, ArgumentTypeError])
def test_argument_errors_pickle_with_both_parts(cls):
  again = pickle.loads(pickle.dumps(cls("r0", "must be finite and > 0, got -1.")))
  assert type(again) is cls
  assert (again.argument, again.problem) == ("r0", "must be finite and > 0, got -1.")
  assert str(again) == "`r0` must be finite and > 0, got -1."


def test_the_librarys_checks_raise_them_naming_the_argument():
  with pytest.raises(ArgumentError) as value:
    schedules.seq1(-1.0)
  assert value.value.argument == "r0" and type(value.value) is ArgumentError
  with pytest.raises(ArgumentTypeError) as kind:
    schedules.seq1("0.1")
  assert kind.value.argument == "r0"
  with pytest.raises(ArgumentError) as rule:
    strategies.scale_by_strategy(schedules.seq1(0.1), "sometimes")
  assert rule.value.argument == "rule" and "sometimes" in rule.value.problem
