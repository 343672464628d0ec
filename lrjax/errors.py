"""The errors lrjax raises for what its caller has to change, as opposed to its own bugs.

Every check of an argument, of a command-line flag or of a sweep file's key raises a
`UsageError`, so a program can tell the two apart by type: the ``lrjax`` command prints
a `UsageError` as one line and exits with status 2, and lets anything else (a bug) show
its traceback.  `ArgumentError` is the one raised by the checks of a function's
arguments; it keeps the argument's name apart from the problem, so the command line can
name the flag the user typed instead of the argument it set::

  >>> err = ArgumentError("batch_size", "must be at least 1, got 0.")
  >>> str(err)
  '`batch_size` must be at least 1, got 0.'
  >>> err.message("--batch-size")
  '--batch-size must be at least 1, got 0.'

Both are ``ValueError`` s (an ``except ValueError`` around a call keeps working);
`ArgumentTypeError`, for a value of the wrong type, is a ``TypeError`` as well.
"""

from __future__ import annotations


class UsageError(ValueError):
  """A value given to lrjax that it refuses; the message says which and what is allowed."""


class ArgumentError(UsageError):
  """An argument of an lrjax function with a value the function refuses.

  Attributes:
    argument: the argument as the caller wrote it (``batch_size``, ``schedules[2]``).
    problem: what is wrong with it and what is allowed: the message after the name.
  """

  def __init__(self, argument: str, problem: str):
    self.argument, self.problem = str(argument), str(problem)
    super().__init__(self.message())

  def message(self, name: str | None = None) -> str:
    """The message with the argument called ``name`` (a flag, a file's key); by default
    the argument's own name in backquotes.  A problem that starts with a colon (``": the
    factory built ..."``) follows the name directly."""
    subject = f"`{self.argument}`" if name is None else name
    return f"{subject}{'' if self.problem.startswith(':') else ' '}{self.problem}"

  def __reduce__(self):  # pickled (a process pool, a multi-process run) with both parts
    return type(self), (self.argument, self.problem)


class ArgumentTypeError(ArgumentError, TypeError):
  """An argument that is not of the type asked for (a string where a number goes).

  A ``TypeError``, as Python's own; also a ``ValueError`` (an `ArgumentError`), so that
  ``except ValueError`` around a constructor catches every bad argument.
  """


__all__ = ["UsageError", "ArgumentError", "ArgumentTypeError"]
