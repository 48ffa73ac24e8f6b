"""What makes ``sklearn-ntk benchmark`` resumable: results saved as they finish, clean stops.

* :class:`ResultStore` keeps ``results.csv`` (one row per table, model and outer fold) up to date:
  as soon as a model has finished its outer folds on a table, the whole file is rewritten to a
  temporary file, flushed to disk (``fsync``) and renamed over the old one, so ``results.csv`` is
  always a complete CSV, whenever the run stops. ``benchmark-run.json`` beside it records the
  settings the results depend on (``--seed``, ``--quick``, the protocol), and ``--resume``
  continues only a run with the same settings, skipping every (table, model) already finished.
* :class:`Stopper` turns SIGINT and SIGTERM into :class:`~._common.Stopped` (a
  ``KeyboardInterrupt`` that remembers the signal), except while a file is being saved: a signal
  that arrives then stops the run right after the save.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ._common import CLIError, Stopped

__all__ = ["RUN_FILE", "RESULTS_FILE", "TableInfo", "ResultStore", "Stopper", "atomic_write"]

RESULTS_FILE = "results.csv"
RUN_FILE = "benchmark-run.json"
#: Bumped whenever a change to the protocol changes the numbers a run produces.
PROTOCOL_VERSION = 1
FIELDS = ["table", "source", "n_rows", "n_features", "n_classes", "model", "fold",
          "accuracy", "fit_time_s", "best_params", "error"]


@dataclass(frozen=True)
class TableInfo:
    """What ``results.csv`` says about a table besides its results."""

    source: str
    n_rows: int
    n_features: int
    n_classes: int

    @classmethod
    def of(cls, table):
        return cls(table.source, table.n_rows, table.n_features, table.n_classes)


def atomic_write(path, text):
    """Replace ``path`` by ``text`` all at once: a temporary file, ``fsync``, rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # the rename itself, on file systems that allow it
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _csv_text(records, info):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    for r in records:
        t = info[r.table]
        writer.writerow([r.table, t.source, t.n_rows, t.n_features, t.n_classes, r.model, r.fold,
                         repr(r.accuracy), f"{r.fit_time:.4f}", r.best_params, r.error])
    return buf.getvalue()


def read_store(path):
    """``(records, info)`` of a ``results.csv``: its :class:`~.protocol.FoldResult` rows (a later
    row for the same table, model and fold replaces an earlier one) and ``{table: TableInfo}``."""
    from .protocol import FoldResult

    records, info = {}, {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                key = (row["table"], row["model"], int(row["fold"]))
                records[key] = FoldResult(row["table"], row["model"], int(row["fold"]),
                                          float(row["accuracy"]), float(row["fit_time_s"]),
                                          row["best_params"], row["error"] or "")
                info[row["table"]] = TableInfo(row["source"], int(row["n_rows"]),
                                               int(row["n_features"]), int(row["n_classes"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CLIError(f"{str(path)!r} is not a results.csv of 'sklearn-ntk benchmark' "
                       f"({type(exc).__name__}: {exc})") from None
    return list(records.values()), info


class ResultStore:
    """The results of one benchmark run in ``out``, saved as they come (see the module doc)."""

    def __init__(self, out, settings, resume=False, stopper=None):
        self.path = Path(out) / RESULTS_FILE
        self.run_path = Path(out) / RUN_FILE
        self.settings = {**settings, "protocol": PROTOCOL_VERSION}
        self.stopper = stopper
        self.records, self.info = [], {}
        self.resumed = 0
        if resume and self.path.exists():
            self._check_settings()
            self.records, self.info = read_store(self.path)
            self.resumed = len(self.finished_pairs())
        self._save(run_file=True)

    def _check_settings(self):
        if not self.run_path.exists():
            raise CLIError(
                f"cannot --resume: {str(self.run_path)!r} is missing, so the settings of the "
                f"results in {str(self.path)!r} are unknown; use another --out or run without "
                "--resume"
            )
        try:
            before = json.loads(self.run_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot read {str(self.run_path)!r}: {exc}") from None
        differ = sorted(k for k in self.settings if before.get(k) != self.settings[k])
        if differ:
            said = ", ".join(f"{k}: {before.get(k)!r} there, {self.settings[k]!r} now"
                             for k in differ)
            raise CLIError(f"cannot --resume a run with other settings ({said}); use the same "
                           "options or another --out")

    def finished_pairs(self):
        """``{(table, model)}`` with every outer fold recorded without an error."""
        from .protocol import OUTER_CV

        good = {}
        for r in self.records:
            if not r.error and math.isfinite(r.accuracy):
                good.setdefault((r.table, r.model), set()).add(r.fold)
        return {k for k, folds in good.items() if len(folds) == OUTER_CV}

    def is_done(self, table, model):
        return (table, model) in self.finished_pairs()

    def add(self, table, records):
        """Record one model's folds on ``table`` (replacing earlier ones) and save at once."""
        keys = {(r.table, r.model, r.fold) for r in records}
        self.records = [r for r in self.records if (r.table, r.model, r.fold) not in keys]
        self.records.extend(records)
        self.info[table.name] = TableInfo.of(table)
        self._save()

    def _save(self, run_file=False):
        guard = self.stopper.saving() if self.stopper is not None else contextlib.nullcontext()
        with guard:
            if run_file:
                atomic_write(self.run_path, json.dumps(self.settings, indent=1) + "\n")
            atomic_write(self.path, _csv_text(self.records, self.info))


class Stopper:
    """Within ``with Stopper():``, SIGINT and SIGTERM raise :class:`~._common.Stopped`.

    Also in a background job, where the shell ignores SIGINT. A signal that arrives inside
    :meth:`saving` is held until the save is complete.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self._saving = False
        self._pending = None
        self._before = {}
        self.received = None  # the signal that stopped the run, if one did

    def _handler(self, signum, frame):
        self.received = signum
        if self._saving:
            self._pending = signum
            return
        raise Stopped(signum)

    def __enter__(self):
        for s in self.SIGNALS:
            with contextlib.suppress(ValueError, OSError):  # not the main thread: leave it
                self._before[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, handler in self._before.items():
            signal.signal(s, handler)
        self._before = {}
        return False

    @contextlib.contextmanager
    def saving(self):
        """Hold SIGINT/SIGTERM while the block runs; stop right after it if one came."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
        if self._pending is not None:
            signum, self._pending = self._pending, None
            raise Stopped(signum)
