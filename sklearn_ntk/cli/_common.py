"""Pieces shared by the command-line modules: the program name, the user-facing error, wording."""

from __future__ import annotations

PROG = "sklearn-ntk"
INF = float("inf")


class CLIError(Exception):
    """A user-facing error: reported as one line on stderr, exit status 2, no traceback."""


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal (SIGINT or SIGTERM); the exit status is ``128 + signum``."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self):
        import signal

        return signal.Signals(self.signum).name


def quote_list(names, limit=8):
    """``'a', 'b' and 3 more``."""
    names = list(names)
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    more = len(names) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def name_rows(line_numbers, limit=8):
    """``5, 9 and 2 more`` (CSV line numbers)."""
    items = [str(int(i)) for i in line_numbers[:limit]]
    more = len(line_numbers) - limit
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")
