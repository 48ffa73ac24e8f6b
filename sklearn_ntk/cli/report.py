"""Reporting the comparison: the table on standard output, ``results.csv``, ``results.json`` and
``comparison.png``."""

from __future__ import annotations

import json
import math
import platform

import numpy as np

__all__ = ["format_table", "write_csv", "write_json", "plot_results"]


def _pm(mean, std):
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(mean) else "-"


def format_table(results):
    """A plain-text table of the results, best score first.

    Classification adds the log-loss of ``predict_proba`` ("-" for a model without it).
    """
    order = sorted(
        results, key=lambda r: -r["score_mean"] if np.isfinite(r["score_mean"]) else np.inf
    )
    with_loss = any("log_loss_mean" in r and r["log_losses"] for r in results)
    headers = ["model", f"{results[0]['score_name']} (mean ± std)"]
    headers += ["log-loss (mean ± std)"] if with_loss else []
    headers += ["fit time (s)", "chosen"]
    rows = []
    for r in order:
        if r["error"]:
            rows.append([r["model"], "failed"] + ["-"] * with_loss + ["-", r["error"]])
            continue
        row = [r["model"], _pm(r["score_mean"], r["score_std"])]
        row += [_pm(r["log_loss_mean"], r["log_loss_std"])] if with_loss else []
        rows.append(row + [f"{r['fit_time_mean']:.3f}", r["best_params_mode"]])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return None
        return value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def _curve_summary(results, times):
    curves = {}
    for r in results:
        if r["family"] != "ntk" or r["error"] or not r["t_curve"]:
            continue
        entry = {"t": list(times)}
        for part in ("train", "test"):
            values = np.asarray([c[part] for c in r["t_curve"]], dtype=float)
            entry[f"{part}_mean"] = values.mean(axis=0).tolist()
            entry[f"{part}_std"] = values.std(axis=0).tolist()
        curves[r["model"]] = entry
    return curves


def write_csv(results, path):
    """One row per model: summary statistics, the per-fold scores and any error."""
    import csv

    fields = [
        "model",
        "family",
        "score_name",
        "score_mean",
        "score_std",
        "log_loss_mean",
        "log_loss_std",
        "fit_time_mean",
        "predict_time_mean",
        "best_params_mode",
        "scores",
        "log_losses",
        "error",
    ]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in results:
            out = {k: r[k] for k in fields}
            out["scores"] = " ".join(f"{s:.6g}" for s in r["scores"])
            out["log_losses"] = " ".join(f"{s:.6g}" for s in r["log_losses"])
            for key in ("log_loss_mean", "log_loss_std"):
                out[key] = "" if not np.isfinite(r[key]) else r[key]
            out["error"] = r["error"] or ""
            writer.writerow(out)


def write_json(results, dataset, settings, times, path):
    """Everything: dataset, settings, per-model results, the score-vs-t curves, versions."""
    import sklearn

    from sklearn_ntk import __version__

    payload = {
        "dataset": {
            "name": dataset.name,
            "task": dataset.task,
            "n_samples": dataset.n_samples,
            "n_features": dataset.n_features,
            "notes": dataset.notes,
        },
        "settings": settings,
        "results": [{k: v for k, v in r.items() if k != "t_curve"} for r in results],
        "t_curve": _curve_summary(results, times),
        "versions": {
            "sklearn_ntk": __version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_json_safe(payload), fh, indent=2)
        fh.write("\n")


def _plot_scores(ax, results, dataset):
    """Score per model, mean ± std over the folds (NTK rows in red)."""
    ok = sorted((r for r in results if not r["error"]), key=lambda r: r["score_mean"])
    ypos = np.arange(len(ok))
    colors = ["tab:red" if r["family"] == "ntk" else "tab:gray" for r in ok]
    means = [r["score_mean"] for r in ok]
    ax.barh(ypos, means, xerr=[r["score_std"] for r in ok], color=colors, alpha=0.8, capsize=3)
    ax.set_yticks(ypos, [f"{r['model']}  ({r['fit_time_mean']:.2f} s)" for r in ok])
    ax.set_xlabel(
        f"{results[0]['score_name']} ({len(results[0]['scores']) or '?'}-fold CV, mean ± std)"
    )
    ax.set_title(f"{dataset.name}: {dataset.n_samples} samples, {dataset.n_features} features")
    if ok:
        lo = min(r["score_mean"] - r["score_std"] for r in ok)
        ax.set_xlim(max(lo - 0.05, -0.5) if lo < 0 else 0.0, None)


def _plot_curves(ax, curves, times, score_name):
    """Train (dotted) and test (solid, ± std band) score against ``t``; ``t = inf`` at the right."""
    finite = np.asarray([t for t in times if np.isfinite(t)])
    n_finite = len(finite)
    has_inf = n_finite < len(times)
    t_inf = finite.max() * 10.0 if has_inf else None
    xs = np.asarray([t if np.isfinite(t) else t_inf for t in times])[:n_finite]
    for (name, c), color in zip(curves.items(), ["tab:red", "tab:blue"], strict=False):
        for part, style in (("test", "-"), ("train", ":")):
            mean, std = np.asarray(c[f"{part}_mean"]), np.asarray(c[f"{part}_std"])
            ax.plot(xs, mean[:n_finite], style, color=color, label=f"{name} ({part})")
            if part == "test":
                band = (mean - std)[:n_finite], (mean + std)[:n_finite]
                ax.fill_between(xs, *band, color=color, alpha=0.15)
            if has_inf:
                ax.plot([t_inf], [mean[-1]], "o" if part == "test" else "x", color=color)
    ax.set_xscale("log")
    if has_inf:
        ax.axvline(finite.max() * 10**0.5, color="k", lw=0.5, ls="--")
        ticks = [v for v in ax.get_xticks() if finite.min() <= v <= finite.max()]
        labels = [f"$10^{{{int(round(np.log10(v)))}}}$" for v in ticks] + [r"$\infty$"]
        ax.set_xticks(ticks + [t_inf], labels)
    ax.set_xlabel("training time t (gradient-descent steps, learning rate 1)")
    ax.set_ylabel(score_name)
    ax.set_title("NTK/NNGP score against training time t")
    if curves:
        lows = [np.min(np.asarray(c["test_mean"]) - np.asarray(c["test_std"])) for c in curves.values()]
        ax.set_ylim(max(min(lows), -0.5), 1.02)
        ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, alpha=0.3)


def plot_results(results, dataset, times, path):
    """Two panels: score per model (mean ± std over folds); NTK/NNGP score against ``t``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True)
    _plot_scores(ax0, results, dataset)
    _plot_curves(ax1, _curve_summary(results, times), times, results[0]["score_name"])
    fig.savefig(path, dpi=110)
    plt.close(fig)
