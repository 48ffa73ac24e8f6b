"""Merge the ``results.csv`` of several ``sklearn-ntk benchmark`` runs (same ``--seed``) and print
the summary as reStructuredText tables (as in docs/benchmarks.rst); write the merged figure.

    python benchmarks/summarise_benchmark.py runA/results.csv runB/results.csv --figure out.png
"""

import argparse

import numpy as np

from sklearn_ntk.cli import bench_report, protocol


def _rst(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    rule = "  ".join("=" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [rule, fmt.format(*header), rule, *(fmt.format(*r) for r in rows), rule]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--figure")
    args = parser.parse_args()
    results = [r for path in args.results for r in bench_report.read_results(path)]
    models = protocol.MODEL_NAMES
    rows, tables = bench_report.summarise(results, models)
    _, A = bench_report.accuracy_matrix(results, models)
    fit = {m: np.nansum([r.fit_time for r in results if r.model == m]) for m in models}
    # ours only: the paper's figures (other tables) are quoted in a table of their own
    print(_rst(["model", "mean accuracy (%)", "wins", "Friedman rank", "fit time (s)"],
               [[r["model"], f"{r['mean_accuracy']:.2f} ± {r['std_accuracy']:.2f}", r["wins"],
                 f"{r['friedman_rank']:.2f}", f"{fit[r['model']]:.0f}"] for r in rows]))
    stat, p = bench_report.friedman_test(results, models)
    print(f"\nFriedman test, {len(tables)} tables: chi2 = {stat:.2f}, p = {p:.3g}\n")
    best = A.max(axis=1)
    print(_rst(["table", *models],
               [[t, *(f"**{100 * a:.2f}**" if a == b else f"{100 * a:.2f}" for a in row)]
                for t, row, b in zip(tables, A, best, strict=True)]))
    if args.figure:
        bench_report.plot_benchmark(rows, results, models, args.figure)


if __name__ == "__main__":
    main()
