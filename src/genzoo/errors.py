"""The one exception type for user mistakes.

A `GenzooError` is something the user can fix (a bad name, a missing file, a wrong type). The CLI
prints its message as one line and exits non-zero, without a traceback. Bugs stay ordinary
exceptions so that they keep their tracebacks.
"""


class GenzooError(Exception):
    """A user-facing error: the message says what was wrong and what is accepted."""


class TrainingDiverged(GenzooError):
    """A loss term became NaN or Inf; the last good checkpoint is left intact."""

    def __init__(self, message: str, step: int | None = None, term: str | None = None):
        super().__init__(message)
        self.step, self.term = step, term


def choices(names) -> str:
    """Format valid choices for an error message: 'a, b, c'."""
    return ", ".join(sorted(names))
