"""Error types shared by every layer.

The CLI and the TUI turn a `KlmtuiError` into one line for the user; anything else is a bug.
`exit_code` follows the CLI contract: 2 for bad input, 1 for a failure.
"""


class KlmtuiError(Exception):
    """Something went wrong that the user should read about in one line."""

    exit_code = 1


class InputError(KlmtuiError, ValueError):
    """The user asked for something malformed or impossible (exit 2)."""

    exit_code = 2


class OperationFailed(KlmtuiError):
    """A well-formed request that could not be carried out: unreachable host, failed run (exit 1)."""

    exit_code = 1
