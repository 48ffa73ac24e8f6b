"""The ``sklearn-ntk`` command: argument parsing, the ``compare`` command, the entry point."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import benchmark, data, models, report, running
from ._common import PROG, CLIError

__all__ = ["main", "build_parser"]

#: Largest ``--seed`` (NumPy's and scikit-learn's seeds are 32-bit).
MAX_SEED = 2**32 - 1


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` that raises :class:`CLIError` instead of exiting on a usage error."""

    def error(self, message):
        raise CLIError(f"{message} (see '{self.prog} --help')")


class _Stdout:
    """Standard output that survives a closed pipe (``sklearn-ntk compare | head -1``).

    The first ``BrokenPipeError`` points the file descriptor at ``/dev/null`` (so that the
    interpreter's final flush is quiet too) and drops everything after it; the run goes on.
    """

    def __init__(self):
        self.closed = False

    def __call__(self, text=""):
        if self.closed:
            return
        try:
            print(text, flush=True)
        except BrokenPipeError:
            self.closed = True
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError, AttributeError):  # not a real file (in-process capture)
                pass


def _check_options(args):
    if not 0 <= args.seed <= MAX_SEED:
        raise CLIError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
    if args.cv < 2:
        raise CLIError(f"--cv must be at least 2, got {args.cv}")
    if args.subsample is not None and args.subsample < 2 * args.cv:
        raise CLIError(f"--subsample must be at least {2 * args.cv} for {args.cv}-fold CV")
    if args.max_samples < 1:
        raise CLIError("--max-samples must be positive")
    if args.threads < 1:
        raise CLIError(f"--threads must be at least 1, got {args.threads}")
    if args.n_jobs == 0 or args.n_jobs < -1:
        raise CLIError(f"--n-jobs must be a positive number or -1, got {args.n_jobs}")


def _prepare_out(out):
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {str(out)!r} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".sklearn-ntk-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise CLIError(f"cannot write to --out {str(out)!r}: {exc.strerror or exc}") from None
    return out


def _run(args, dataset, model_specs, times):
    """Run the comparison with BLAS limited to ``--threads``; ``(results, interrupted, s)``."""
    from threadpoolctl import threadpool_limits

    interactive = sys.stderr.isatty()
    log = None if interactive else (lambda s: print(s, file=sys.stderr, flush=True))
    start = time.perf_counter()
    # The matrices here are small (n <= --max-samples): multi-threaded BLAS gains little on them,
    # and on a busy machine oversubscribed BLAS threads make a 300 x 300 eigh 100x slower.
    with threadpool_limits(limits=args.threads, user_api="blas"):
        results, interrupted = running.run_comparison(
            dataset, model_specs, args.cv, args.seed, times, progress=interactive, log=log
        )
    return results, interrupted, time.perf_counter() - start


def _write_outputs(args, out, results, dataset, times, settings, say):
    """Write the result files (before anything else is printed); return their paths."""
    report.write_csv(results, out / "results.csv")
    report.write_json(results, dataset, settings, times, out / "results.json")
    written = [out / "results.csv", out / "results.json"]
    if results and not args.no_figure:
        try:
            report.plot_results(results, dataset, times, out / "comparison.png")
            written.append(out / "comparison.png")
        except ImportError:
            say("  note: matplotlib is not installed; no figure (pip install 'sklearn-ntk[cli]')")
    return written


def _cmd_compare(args):
    _check_options(args)
    dataset = data.load_dataset(args)
    out = _prepare_out(args.out)
    say = _Stdout()
    sizing = models.sizing_for(dataset, args.cv, args.quick, args.seed, args.n_jobs)
    try:
        model_specs, skipped = models.build_models(dataset, sizing)
    except ImportError as exc:
        raise CLIError(f"cannot build the models: {exc}") from None
    encoded = sizing.n_features
    features = f"{dataset.n_features} features" + (
        f" ({encoded} after one-hot encoding)" if encoded != dataset.n_features else ""
    )
    times = models.curve_times(args.quick)
    start = time.perf_counter()
    try:
        say(
            f"{PROG} compare: {dataset.name} ({dataset.n_samples} samples, {features}, "
            f"{dataset.task}), {args.cv}-fold CV{' [quick]' if args.quick else ''}"
        )
        for note in dataset.notes + skipped:
            say(f"  note: {note}")
        results, interrupted, elapsed = _run(args, dataset, model_specs, times)
    except KeyboardInterrupt:  # before the first model started
        results, interrupted, elapsed = [], True, time.perf_counter() - start
    settings = {
        "cv": args.cv,
        "quick": bool(args.quick),
        "seed": args.seed,
        "ntk_grid": models.ntk_grid(sizing),
        "elapsed_s": elapsed,
        "interrupted": interrupted,
        "skipped": skipped,
        "command": " ".join([PROG] + list(args.argv)),
    }
    written = _write_outputs(args, out, results, dataset, times, settings, say)
    if interrupted:
        done = ", ".join(r["model"] for r in results) or "none"
        print(
            f"{PROG}: interrupted; wrote the finished models ({done}) to "
            f"{', '.join(str(p) for p in written)}",
            file=sys.stderr,
        )
        return 130
    say()
    say(report.format_table(results))
    say()
    for r in results:
        for message, count in r["warnings"].items():
            say(f"  note: {r['model']}: {count} x {message}")
    say(f"wrote {', '.join(str(p) for p in written)}  ({elapsed:.1f} s)")
    failed = [r["model"] for r in results if r["error"]]
    if failed:
        print(f"{PROG}: error: model(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _add_data_options(src):
    src.add_argument(
        "--dataset",
        choices=sorted(data.BUNDLED_DATASETS),
        help="a dataset bundled with scikit-learn (no network needed)",
    )
    src.add_argument("--csv", metavar="PATH", help="a CSV file with a header row")
    src.add_argument("--target", metavar="COLUMN", help="the column of --csv to predict")
    src.add_argument(
        "--one-hot",
        action="store_true",
        help="one-hot encode non-numeric feature columns (default: refuse them)",
    )
    src.add_argument(
        "--impute",
        choices=["none", "drop", "mean", "median"],
        default="none",
        help="missing values: refuse (none, default), drop the rows, or fill "
        "feature columns with the mean/median of each training fold",
    )


def _add_run_options(p):
    p.add_argument(
        "--task",
        choices=["auto", "regression", "classification"],
        default="auto",
        help="default auto: classification for a non-numeric target or one with at "
        f"most {data.AUTO_MAX_CLASSES} distinct integer values; an explicit task is obeyed",
    )
    p.add_argument("--cv", type=int, default=5, metavar="K", help="number of CV folds (5)")
    p.add_argument(
        "--out", default="results", metavar="DIR", help="output directory (default: ./results)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"small grids, {data.QUICK_SAMPLES} rows, fewer trees: well under a minute",
    )
    p.add_argument(
        "--subsample", type=int, metavar="N", help="run on a random (stratified) subset of N rows"
    )
    p.add_argument(
        "--max-samples",
        type=int,
        default=data.DEFAULT_MAX_SAMPLES,
        metavar="N",
        help=f"refuse datasets with more rows than this ({data.DEFAULT_MAX_SAMPLES}); the "
        "exact kernel methods cost O(n^2) memory and O(n^3) time",
    )
    p.add_argument(
        "--seed", type=int, default=0, help=f"random seed for folds and models, 0..{MAX_SEED} (0)"
    )
    p.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        metavar="J",
        help="parallel jobs inside each grid search (1)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="T",
        help="BLAS threads per fit (1: the matrices are small, and extra BLAS threads only "
        "slow a busy machine down)",
    )
    p.add_argument("--no-figure", action="store_true", help="do not write comparison.png")


def build_parser():
    """The argument parser of the ``sklearn-ntk`` command."""
    from sklearn_ntk import __version__

    parser = _Parser(
        prog=PROG,
        description="The Neural Tangent Kernel as a scikit-learn citizen: command-line tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "compare",
        help="cross-validated comparison of NTK estimators against standard models",
        description=(
            "Cross-validate the NTK and NNGP estimators (grid-searched over depth, activation, "
            "training time t and alpha, inside a Pipeline that imputes, one-hot encodes and "
            "scales within each training fold) against Gaussian "
            "process, kernel ridge and SVM with RBF kernels, a random forest and an MLP. "
            "Prints a table and writes results.csv, results.json and comparison.png to --out."
        ),
    )
    _add_data_options(p.add_argument_group("data (default: --dataset diabetes)"))
    _add_run_options(p)
    p.set_defaults(func=_cmd_compare)
    benchmark.add_parser(sub)
    return parser


def main(argv=None):
    """Run the ``sklearn-ntk`` command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (without the program name); default ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 when some model failed during the comparison, 2 for bad input or usage
        (reported as one line on standard error; an unexpected internal error too, with
        ``SKLEARN_NTK_TRACEBACK=1`` showing its traceback), 130 when interrupted (the models
        finished so far are written), 143 when ``benchmark`` is stopped by SIGTERM.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        args.argv = argv
        return int(args.func(args))
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except MemoryError as exc:
        print(
            f"{PROG}: error: out of memory ({exc or 'MemoryError'}); rerun with --subsample N "
            "or --quick",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", 2)  # a Stopped signal, else Ctrl-C (SIGINT)
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # standard output closed before anything could be written
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug, still reported as one line
        if os.environ.get("SKLEARN_NTK_TRACEBACK"):
            raise
        lines = str(exc).strip().splitlines()
        print(
            f"{PROG}: error: unexpected {type(exc).__name__}: {lines[0] if lines else ''} "
            "(a bug: please report it; SKLEARN_NTK_TRACEBACK=1 shows the traceback)",
            file=sys.stderr,
        )
        return 2
