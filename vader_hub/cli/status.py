"""The exit statuses of every ``vader-hub`` command, and the one boundary that turns errors into them.

:data:`EXIT_STATUSES` is the table (the README shows it). Errors go to stderr as one line,
``<command>: error: <what was wrong and what to do>``, never as a traceback.
"""
import argparse
import functools
import sys
from typing import Callable

from ..weights.errors import WeightsError

DONE, DONE_IN_PART, NOTHING_DONE = 0, 1, 2
EXIT_STATUSES = {
    DONE: "done: everything asked for was written",
    DONE_IN_PART: "done in part: the command ran, but part of its work failed and stderr says which "
                  "(`extract` skipped an image, `weights verify` found a corrupt copy, `convert onnx` disagrees "
                  "with PyTorch, `train` stopped on a non-finite loss and kept its last good checkpoint)",
    NOTHING_DONE: "nothing done: a usage error or a bad input (a missing file, an unknown model, weights that "
                  "cannot be found or verified, a bad value); one line on stderr says what to change",
}
# What a user's input can cause: bad values, files and weights. Anything else is a bug and keeps its traceback.
USER_ERRORS = (WeightsError, ValueError, TypeError, OSError, ImportError)

Handler = Callable[[argparse.Namespace], int]


def report_error(command: str, error: BaseException) -> int:
    """Print ``error`` as the one line ``<command>: error: <message>`` on stderr; returns :data:`NOTHING_DONE`."""
    print(f"{command}: error: {error}", file=sys.stderr)
    return NOTHING_DONE


def reporting_errors_of(command: str) -> Callable[[Handler], Handler]:
    """A decorator that runs a command's handler inside the error boundary.

    Args:
        command: The command's name for messages, e.g. ``"vader-hub weights"``.

    Returns:
        A decorator; the decorated handler returns the handler's status (None counts as
        :data:`DONE`), or :data:`NOTHING_DONE` after printing a user error as one line.
    """
    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(args: argparse.Namespace) -> int:
            try:
                return handler(args) or DONE
            except USER_ERRORS as error:
                return report_error(command, error)
        return run
    return decorate
