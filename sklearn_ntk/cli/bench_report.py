"""Summaries, files and figure of ``sklearn-ntk benchmark``: Table 1 of Arora et al. (ICLR 2020).

Per model, over the tables that every model finished: the mean accuracy (mean over tables of the
mean over outer folds), the number of tables it wins (best accuracy; a tie is a win for each of
the tied models), and the Friedman rank (its rank on each table, 1 = best, ties sharing the mean
rank, averaged over the tables).
"""

from __future__ import annotations

import csv
import math

import numpy as np

__all__ = ["PAPER_TABLE1", "accuracy_matrix", "summarise", "format_summary",
           "write_summary", "write_by_table", "read_results", "plot_benchmark"]

#: Mean accuracy (%) on 90 UCI sets in Table 1 of Arora et al. (ICLR 2020) for the models with a
#: counterpart here (the paper's "NTK", "RF" and "Gaussian kernel" SVM rows). Their Friedman ranks
#: are among the ~180 classifiers of Fernández-Delgado et al. (2014), not comparable to ours.
PAPER_TABLE1 = {"NTK-SVM": 81.95, "Random forest": 81.56, "RBF-SVM": 81.03}
PAPER_N_TABLES = 90


def accuracy_matrix(results, models):
    """``(tables, A)``: tables finished by every model (in run order) and their mean outer-fold
    accuracies, ``A[i, j]`` for table ``i`` and model ``models[j]``."""
    acc = {}
    for r in results:
        acc.setdefault(r.table, {}).setdefault(r.model, []).append(r.accuracy)
    tables = [t for t, row in acc.items()
              if all(m in row and np.isfinite(row[m]).all() for m in models)]
    A = np.array([[np.mean(acc[t][m]) for m in models] for t in tables], dtype=float)
    # A tie is a tie: equal fold accuracies summed in another order differ in the last bit, and
    # read back from a results.csv of an older run in the 6th decimal. Real differences are at
    # least 1 / (4 * 1250) = 2e-4 (N <= 5000 rows, 4 outer folds).
    A = np.round(A, 5)
    return tables, A.reshape(len(tables), len(models))


def summarise(results, models):
    """One dict per model: mean/std accuracy (%), wins, Friedman rank, the paper's accuracy."""
    from scipy.stats import rankdata

    tables, A = accuracy_matrix(results, models)
    if not tables:
        return [], tables
    ranks = rankdata(-A, axis=1, method="average")
    best = A.max(axis=1, keepdims=True)
    wins = (A == best).sum(axis=0)
    rows = []
    for j, name in enumerate(models):
        rows.append({
            "model": name,
            "n_tables": len(tables),
            "mean_accuracy": 100 * float(A[:, j].mean()),
            "std_accuracy": 100 * float(A[:, j].std()),
            "wins": int(wins[j]),
            "friedman_rank": float(ranks[:, j].mean()),
            "paper_mean_accuracy": PAPER_TABLE1.get(name, math.nan),
        })
    return rows, tables


def friedman_test(results, models):
    """``(statistic, p-value)`` of Friedman's test over the finished tables (NaN if < 2 tables)."""
    from scipy.stats import friedmanchisquare

    tables, A = accuracy_matrix(results, models)
    if len(tables) < 2 or len(models) < 3 or np.ptp(A, axis=1).max() == 0:
        return math.nan, math.nan
    stat, p = friedmanchisquare(*A.T)
    return float(stat), float(p)


def format_summary(rows, results, models):
    """The printed report: per-table accuracies, then the Table-1 style summary."""
    tables, A = accuracy_matrix(results, models)
    width = max([len("table")] + [len(t) for t in tables])
    head = f"{'table':<{width}}  " + "  ".join(f"{m:>13}" for m in models)
    lines = [head, "-" * len(head)]
    for t, row in zip(tables, A, strict=True):
        lines.append(f"{t:<{width}}  " + "  ".join(f"{100 * a:13.1f}" for a in row))
    lines += ["", f"{'model':<14} {'mean acc. %':>12} {'wins':>5} {'Friedman rank':>14} "
              f"{'quoted: paper, 90 UCI sets':>27}"]
    for r in rows:
        paper = f"{r['paper_mean_accuracy']:.2f}" if np.isfinite(r["paper_mean_accuracy"]) else "-"
        lines.append(f"{r['model']:<14} {r['mean_accuracy']:7.2f} ±{r['std_accuracy']:5.2f} "
                     f"{r['wins']:>4} {r['friedman_rank']:>14.2f} {paper:>27}")
    stat, p = friedman_test(results, models)
    if np.isfinite(p):
        lines.append(f"Friedman test over {len(tables)} tables: chi2 = {stat:.2f}, p = {p:.3g}")
    return "\n".join(lines)


def write_by_table(results, models, path):
    """Mean outer-fold accuracy (%) per finished table (rows) and model (columns)."""
    tables, A = accuracy_matrix(results, models)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["table", *models])
        for t, row in zip(tables, A, strict=True):
            writer.writerow([t, *(f"{100 * a:.1f}" for a in row)])


def read_results(path):
    """The :class:`~sklearn_ntk.cli.protocol.FoldResult` rows of a ``results.csv`` (to merge
    runs: every table's folds depend only on the table and ``--seed``); see
    :func:`~sklearn_ntk.cli.bench_store.read_store`."""
    from .bench_store import read_store

    return read_store(path)[0]


def write_summary(rows, path):
    """The Table-1 style summary as CSV."""
    fields = ["model", "n_tables", "mean_accuracy", "std_accuracy", "wins", "friedman_rank",
              "paper_mean_accuracy"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})


def plot_benchmark(rows, results, models, path):
    """Left: NTK-SVM against each baseline, one point per table; right: Friedman ranks."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tables, A = accuracy_matrix(results, models)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.6))
    ref = list(models).index("NTK-SVM") if "NTK-SVM" in models else 0
    for j, name in enumerate(models):
        if j != ref:
            ax.scatter(100 * A[:, j], 100 * A[:, ref], s=22, alpha=0.8, label=f"vs {name}")
    lo = 100 * float(A.min()) - 2 if A.size else 0.0
    ax.plot([lo, 100], [lo, 100], color="0.5", lw=1, ls="--")
    ax.set_xlabel("baseline accuracy (%)")
    ax.set_ylabel(f"{models[ref]} accuracy (%)")
    ax.set_title(f"per table ({len(tables)} tables; above the line: {models[ref]} better)")
    ax.legend(fontsize=8, loc="lower right")
    names = [r["model"] for r in rows]
    bx.barh(names[::-1], [r["friedman_rank"] for r in rows][::-1], color="tab:blue")
    for i, r in enumerate(rows[::-1]):
        bx.text(r["friedman_rank"], i, f" {r['mean_accuracy']:.1f}%, {r['wins']} wins",
                va="center", fontsize=8)
    bx.set_xlabel("Friedman rank (mean over tables; 1 = best)")
    bx.set_xlim(0, len(models) + 1.2)
    bx.set_title("mean rank, mean accuracy, wins")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
