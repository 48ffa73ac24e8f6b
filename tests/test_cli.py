"""End-to-end tests of ``sklearn-ntk compare`` (run as a subprocess) and of its input handling."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from sklearn_ntk import cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAMES = {"NTK", "NNGP", "GP (RBF)", "SVM (RBF)", "Random forest", "MLP"}


def run_cli(*args, cwd=None, timeout=120):
    """Run ``python -m sklearn_ntk ARGS`` in a fresh interpreter; return the CompletedProcess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(
        [sys.executable, "-m", "sklearn_ntk", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Small CSV files: a clean regression set and broken variants of it."""
    d = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["y"] = 2.0 * frame["a"] + np.sin(2.0 * frame["b"]) + 0.05 * rng.normal(size=n)
    frame.to_csv(d / "reg.csv", index=False)

    nan = frame.copy()
    nan.loc[[3, 7], "b"] = np.nan  # CSV lines 5 and 9 (the header is line 1)
    nan.to_csv(d / "nan.csv", index=False)

    nan_target = frame.copy()
    nan_target.loc[[10], "y"] = np.nan  # CSV line 12
    nan_target.to_csv(d / "nan_target.csv", index=False)

    cat = frame.copy()
    cat["city"] = rng.choice(["paris", "oslo", "lima"], size=n)
    cat.to_csv(d / "cat.csv", index=False)

    inf = frame.copy()
    inf.loc[[20], "c"] = np.inf
    inf.to_csv(d / "inf.csv", index=False)

    # classification: string labels decided by a non-linear rule, one categorical feature and
    # one row with a missing value
    cls = pd.DataFrame(rng.normal(size=(n, 2)), columns=["u", "v"])
    cls["colour"] = rng.choice(["red", "blue"], size=n)
    cls["label"] = np.where(cls["u"] ** 2 + cls["v"] ** 2 > 1.2, "out", "in")
    cls.loc[5, "u"] = np.nan
    cls = pd.concat([cls, cls.iloc[10:15]], ignore_index=True)  # duplicate rows: singular kernel
    cls.to_csv(d / "cls.csv", index=False)

    (d / "empty.csv").write_text("")
    (d / "header_only.csv").write_text("a,b,y\n")
    (d / "only_target.csv").write_text("y\n1\n2\n3\n")
    return d


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sklearn-ntk: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert proc.stdout == ""


# --------------------------------------------------------------------------------------------
# error paths: one line on stderr, exit status 2, no traceback
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--csv", "{d}/missing.csv", "--target", "y"], ["no such file", "missing.csv"]),
        (["--csv", "{d}", "--target", "y"], ["is a directory"]),
        (["--csv", "{d}/reg.csv", "--target", "price"], ["'price' not found", "'a', 'b'"]),
        (["--csv", "{d}/reg.csv", "--target", "Y"], ["did you mean 'y'?"]),
        (["--csv", "{d}/cat.csv", "--target", "y"], ["non-numeric", "'city'", "--one-hot"]),
        (["--csv", "{d}/nan.csv", "--target", "y"], ["missing values", "'b'", "line(s) 5, 9"]),
        (
            ["--csv", "{d}/nan_target.csv", "--target", "y", "--impute", "mean"],
            ["target 'y' has missing values", "line(s) 12", "--impute drop"],
        ),
        (["--csv", "{d}/inf.csv", "--target", "y"], ["infinite values", "'c'", "line(s) 22"]),
        (
            ["--csv", "{d}/reg.csv", "--target", "y", "--max-samples", "50"],
            ["60 rows is too many", "--subsample 50", "--quick"],
        ),
        (["--csv", "{d}/empty.csv", "--target", "y"], ["is empty"]),
        (["--csv", "{d}/header_only.csv", "--target", "y"], ["no data rows"]),
        (["--csv", "{d}/only_target.csv", "--target", "y"], ["no feature columns"]),
        (["--csv", "{d}/reg.csv"], ["--csv needs --target"]),
        (["--target", "y"], ["--target only applies with --csv"]),
        (["--dataset", "mnist"], ["invalid choice: 'mnist'"]),
        (["--dataset", "iris", "--csv", "{d}/reg.csv", "--target", "y"], ["not both"]),
        (["--cv", "1"], ["--cv must be at least 2"]),
        (["--dataset", "iris", "--cv", "60"], ["fewer than 60 members"]),
        (
            ["--csv", "{d}/reg.csv", "--target", "y", "--task", "classification"],
            ["fewer than 5 members"],
        ),
        (["--out", "{d}/reg.csv"], ["exists and is not a directory"]),
    ],
)
def test_bad_input_is_one_line_error(data_dir, args, fragments):
    args = [a.format(d=data_dir) for a in args]
    proc = run_cli("compare", *args)
    assert_one_line_error(proc, *fragments)


def test_unknown_command_and_option(data_dir):
    assert_one_line_error(run_cli("fit"), "invalid choice: 'fit'")
    assert_one_line_error(run_cli("compare", "--fast"), "unrecognized arguments: --fast")


def test_help_and_version():
    proc = run_cli("compare", "--help")
    assert proc.returncode == 0
    for option in ("--dataset", "--csv", "--target", "--task", "--cv", "--out", "--quick"):
        assert option in proc.stdout
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip().startswith("sklearn-ntk ")


# --------------------------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------------------------


def read_results(out):
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    with open(out / "results.json", encoding="utf-8") as fh:
        payload = json.load(fh)
    return rows, payload


def test_compare_regression_csv_end_to_end(data_dir, tmp_path):
    out = tmp_path / "run"
    proc = run_cli(
        "compare",
        "--csv",
        data_dir / "reg.csv",
        "--target",
        "y",
        "--quick",
        "--cv",
        "3",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # stderr is not a terminal here: no progress bar (carriage returns), one line per model
    assert "\r" not in proc.stderr
    assert "reg.csv (60 samples, 3 features, regression), 3-fold CV" in proc.stdout
    assert "R^2 (mean ± std)" in proc.stdout

    rows, payload = read_results(out)
    assert set(rows) == MODEL_NAMES | {"Kernel ridge (RBF)"}
    for name, row in rows.items():
        assert row["error"] == "", (name, row["error"])
        scores = [float(s) for s in row["scores"].split()]
        assert len(scores) == 3
        assert np.isclose(float(row["score_mean"]), np.mean(scores), rtol=1e-4, atol=1e-6)
        assert float(row["fit_time_mean"]) > 0
        assert name in proc.stdout
    # y = 2a + sin(2b) + small noise is easy for the tuned NTK: a wrong wiring (unscaled target,
    # misaligned folds, predictions at the wrong t) would show up as a poor score
    assert float(rows["NTK"]["score_mean"]) > 0.8
    assert "depth=" in rows["NTK"]["best_params_mode"]

    assert payload["dataset"] == {
        "name": "reg.csv",
        "task": "regression",
        "n_samples": 60,
        "n_features": 3,
        "notes": payload["dataset"]["notes"],
    }
    curve = payload["t_curve"]["NTK"]
    assert curve["t"][-1] == "inf" and len(curve["t"]) == len(curve["test_mean"])
    # training error can only go down with t under gradient flow: train R^2 is non-decreasing
    assert np.all(np.diff(curve["train_mean"]) >= -1e-9)
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_classification_csv_end_to_end(data_dir, tmp_path):
    out = tmp_path / "cls"
    proc = run_cli(
        "compare",
        "--csv",
        data_dir / "cls.csv",
        "--target",
        "label",
        "--one-hot",
        "--impute",
        "drop",
        "--quick",
        "--cv",
        "3",
        "--out",
        out,
        "--no-figure",
    )
    assert proc.returncode == 0, proc.stderr
    assert "64 samples, 4 features, classification" in proc.stdout
    # warnings (the t=inf candidates see a singular kernel) are tallied into one note per model,
    # not dumped on stderr
    assert "note: NTK:" in proc.stdout and "SingularKernelWarning" in proc.stdout
    assert "Warning" not in proc.stderr
    assert "dropped 1 row(s)" in proc.stdout
    assert "one-hot encoded 'colour'" in proc.stdout
    rows, payload = read_results(out)
    assert set(rows) == MODEL_NAMES
    assert rows["NTK"]["score_name"] == "accuracy"
    # the rule |x|^2 > 1.2 on the two numeric columns is learnable: far above chance
    assert float(rows["NTK"]["score_mean"]) > 0.75
    assert not (out / "comparison.png").exists()


def test_python_api_returns_status(tmp_path, data_dir, capsys):
    status = cli.main(["compare", "--csv", str(data_dir / "nan.csv"), "--target", "y"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line(s) 5, 9" in err


# --------------------------------------------------------------------------------------------
# input handling, in process
# --------------------------------------------------------------------------------------------


def test_infer_task():
    assert cli._infer_task(np.array([0, 1, 2, 1]), True)[0] == "classification"
    assert cli._infer_task(np.array(["a", "b"]), False)[0] == "classification"
    assert cli._infer_task(np.array([0.5, 1.2, 3.0]), True)[0] == "regression"
    assert cli._infer_task(np.arange(100), True)[0] == "regression"  # many integer values


def test_impute_and_one_hot(data_dir, tmp_path):
    frame = pd.read_csv(data_dir / "nan.csv")
    X, y, names, notes, numeric = cli._load_csv(
        data_dir / "nan.csv", "y", one_hot=False, impute="median"
    )
    assert numeric and names == ["a", "b", "c"] and X.shape == (60, 3)
    assert np.all(X[[3, 7], 1] == frame["b"].median())
    np.testing.assert_array_equal(X[:, 0], frame["a"].to_numpy())
    X, y, names, notes, numeric = cli._load_csv(
        data_dir / "cat.csv", "y", one_hot=True, impute="none"
    )
    assert X.shape == (60, 6)
    assert sorted(names[3:]) == ["city_lima", "city_oslo", "city_paris"]
    assert np.all(X[:, 3:].sum(axis=1) == 1)


def test_subsample_is_stratified_and_reported():
    args = cli.build_parser().parse_args(["compare", "--dataset", "iris", "--subsample", "30"])
    data = cli.load_dataset(args)
    assert data.n_samples == 30
    assert np.all(np.bincount(data.y) == 10)
    assert any("subsample of 30 of 150" in n for n in data.notes)


def test_table_orders_by_score():
    rows = []
    for name, mean in [("a", 0.2), ("b", 0.9), ("c", float("nan"))]:
        row = {
            "model": name,
            "family": "baseline",
            "score_name": "R^2",
            "scores": [mean],
            "fit_times": [0.1],
            "predict_times": [0.0],
            "best_params": [],
            "t_curve": [],
            "error": None if name != "c" else "ValueError: boom",
        }
        cli._summarise(row)
        rows.append(row)
    table = cli.format_table(rows).splitlines()
    assert table[2].startswith("b ") and table[3].startswith("a ") and "boom" in table[4]


def test_progress_bar_only_when_asked():
    assert cli._progress(3, False) is None
    bar = cli._progress(3, True)
    try:
        assert bar is not None and bar.total == 3
    finally:
        bar.close()
