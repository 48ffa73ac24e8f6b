"""End-to-end tests of ``sklearn-ntk compare`` (run as a subprocess) and of its input handling."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from sklearn_ntk import cli  # noqa: E402
from sklearn_ntk.cli import data as cli_data  # noqa: E402
from sklearn_ntk.cli import models as cli_models  # noqa: E402
from sklearn_ntk.cli import report as cli_report  # noqa: E402
from sklearn_ntk.cli import running as cli_running  # noqa: E402

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

    inf_target = frame.copy()
    inf_target.loc[[6], "y"] = -np.inf  # CSV line 8
    inf_target.to_csv(d / "inf_target.csv", index=False)

    huge = frame.copy()
    huge["c"] = huge["c"] * 1e300  # finite, but its variance overflows float64
    huge.to_csv(d / "huge.csv", index=False)

    # the smallest input the command accepts at 5 folds: 10 rows, 5 per class
    tiny = pd.DataFrame(rng.normal(size=(10, 2)), columns=["u", "v"])
    tiny["label"] = [0, 1] * 5
    tiny.to_csv(d / "tiny.csv", index=False)

    # 60 classes of 5 rows (string labels): refused by --task auto, accepted when asked for
    many = pd.DataFrame(rng.normal(size=(300, 2)), columns=["u", "v"])
    many["label"] = [f"c{i}" for i in range(60)] * 5
    many.to_csv(d / "many.csv", index=False)

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
            ["--csv", "{d}/inf_target.csv", "--target", "y"],
            ["infinite values in the target 'y'", "line(s) 8"],
        ),
        (
            ["--csv", "{d}/inf_target.csv", "--target", "y", "--task", "classification"],
            ["infinite values in the target 'y'"],
        ),
        (["--csv", "{d}/huge.csv", "--target", "y"], ["column 'c'", "too large to standardise"]),
        (["--csv", "{d}/many.csv", "--target", "label"], ["60 classes", "--task classification"]),
        (["--seed", "-1"], ["--seed must be between 0 and 4294967295, got -1"]),
        (["--seed", str(2**32)], ["--seed must be between 0"]),
        (["--n-jobs", "-3"], ["--n-jobs must be a positive number or -1"]),
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


def test_package_entry_point_runs_the_same_command():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "sklearn_ntk.cli", "compare", "--seed", "-1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--seed must be between 0 and 4294967295, got -1" in proc.stderr


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
    # t is tuned with alpha: early stopping at the smallest alpha, or t = inf over an alpha grid
    finite_t, inf_t = payload["settings"]["ntk_grid"]
    assert inf_t["t"] == ["inf"] and len(inf_t["alpha"]) > 1 and min(inf_t["alpha"]) > 0
    assert len(finite_t["alpha"]) == 1 and "inf" not in finite_t["t"]
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
    assert "64 samples, 3 features (4 after one-hot encoding), classification" in proc.stdout
    # duplicate rows make the train kernel singular: alpha is tuned (from above zero) like kernel
    # ridge's, so no t=inf candidate meets a singular kernel
    assert "SingularKernelWarning" not in proc.stdout + proc.stderr
    assert "Warning" not in proc.stderr
    assert "dropped 1 row(s)" in proc.stdout
    assert "one-hot encoded 'colour'" in proc.stdout
    rows, payload = read_results(out)
    assert set(rows) == MODEL_NAMES
    assert rows["NTK"]["score_name"] == "accuracy"
    assert "log-loss (mean ± std)" in proc.stdout
    # log-loss from predict_proba beside accuracy; "-"/empty for a model without probabilities
    for name in ("NTK", "NNGP", "GP (RBF)", "Random forest", "MLP"):
        losses = [float(v) for v in rows[name]["log_losses"].split()]
        assert len(losses) == 3 and np.isfinite(losses).all() and min(losses) > 0, name
        assert float(rows[name]["log_loss_mean"]) == pytest.approx(np.mean(losses), rel=1e-4)
    assert float(rows["GP (RBF)"]["log_loss_mean"]) < np.log(2)  # better than a coin
    assert rows["SVM (RBF)"]["log_loss_mean"] == ""
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
    assert cli_data._infer_task(np.array([0, 1, 2, 1]), True)[0] == "classification"
    assert cli_data._infer_task(np.array(["a", "b"]), False)[0] == "classification"
    assert cli_data._infer_task(np.array([0.5, 1.2, 3.0]), True)[0] == "regression"
    assert cli_data._infer_task(np.arange(100), True)[0] == "regression"  # many integer values


def test_subsample_is_stratified_and_reported():
    args = cli.build_parser().parse_args(["compare", "--dataset", "iris", "--subsample", "30"])
    data = cli_data.load_dataset(args)
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
            "log_losses": [],
            "fit_times": [0.1],
            "predict_times": [0.0],
            "best_params": [],
            "t_curve": [],
            "error": None if name != "c" else "ValueError: boom",
        }
        cli_running.summarise(row)
        rows.append(row)
    table = cli_report.format_table(rows).splitlines()
    assert table[2].startswith("b ") and table[3].startswith("a ") and "boom" in table[4]


def test_progress_bar_only_when_asked():
    assert cli_running._progress(3, False) is None
    bar = cli_running._progress(3, True)
    try:
        assert bar is not None and bar.total == 3
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# no leakage: imputation and encoding are fitted inside each training fold
# --------------------------------------------------------------------------------------------


def _load(*argv):
    return cli_data.load_dataset(cli.build_parser().parse_args(["compare", *map(str, argv)]))


def _spec(dataset, name, cv=3):
    specs, _ = cli_models.build_models(dataset, cli_models.sizing_for(dataset, cv, True, 0))
    return next(s for s in specs if s.name == name)


def test_imputation_is_fitted_on_the_training_fold_only(data_dir):
    from sklearn.base import clone

    dataset = _load("--csv", data_dir / "nan.csv", "--target", "y", "--impute", "mean")
    # nothing is filled before the cross-validation
    assert np.isnan(dataset.X[[3, 7], 1]).all()
    train = np.arange(20, 60)  # both missing values (rows 3 and 7) are in the test part
    est = clone(_spec(dataset, "Random forest").estimator)
    est.fit(dataset.rows(train), dataset.y[train])
    fill = est.regressor_["prep"].named_transformers_["numeric"].statistics_[1]
    b = dataset.X[:, 1]
    assert fill == pytest.approx(np.mean(b[train]), rel=1e-12)
    assert abs(fill - np.nanmean(b)) > 1e-3  # the whole-file mean would leak the test rows
    # a test row with b missing is predicted as if b were the training mean
    row = dataset.rows([3]).copy()
    filled = row.copy()
    filled[0, 1] = fill
    np.testing.assert_allclose(est.predict(row), est.predict(filled), rtol=1e-12)


def test_one_hot_is_fitted_on_the_training_fold_and_ignores_unseen_categories(data_dir):
    from sklearn.base import clone

    dataset = _load("--csv", data_dir / "cat.csv", "--target", "y", "--one-hot")
    city = dataset.X["city"].to_numpy()
    assert set(city) == {"paris", "oslo", "lima"}  # raw strings: not encoded up front
    train = np.flatnonzero(city != "lima")
    test = np.flatnonzero(city == "lima")
    est = clone(_spec(dataset, "NTK").estimator)
    est.fit(dataset.rows(train), dataset.y[train])
    encoder = est.features_["prep"].named_transformers_["categorical"]
    assert [list(c) for c in encoder.categories_] == [["oslo", "paris"]]
    pred = est.predict(dataset.rows(test))  # a category unseen in training: no error
    assert pred.shape == (test.size,) and np.isfinite(pred).all()


# --------------------------------------------------------------------------------------------
# the task, tiny inputs, closed pipes, Ctrl-C
# --------------------------------------------------------------------------------------------


def test_explicit_task_is_obeyed(data_dir):
    with pytest.raises(cli.CLIError, match="60 classes"):
        _load("--csv", data_dir / "many.csv", "--target", "label")
    dataset = _load("--csv", data_dir / "many.csv", "--target", "label", "--task", "classification")
    assert dataset.task == "classification" and np.unique(dataset.y).size == 60
    # integer labels that --task auto takes as classes are a regression target when asked
    assert _load("--csv", data_dir / "tiny.csv", "--target", "label").task == "classification"
    dataset = _load("--csv", data_dir / "tiny.csv", "--target", "label", "--task", "regression")
    assert dataset.task == "regression" and dataset.y.dtype == np.float64


def test_tiny_input_runs_and_a_closed_pipe_is_quiet(data_dir, tmp_path):
    """10 rows, 5 per class at 5 folds, piped into a reader that closes after one line."""
    out = tmp_path / "tiny"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    args = ["compare", "--csv", data_dir / "tiny.csv", "--target", "label", "--out", out, "--quick"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sklearn_ntk", *map(str, args), "--no-figure"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert first.startswith(b"sklearn-ntk compare: tiny.csv (10 samples")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Error" not in err, err
    rows, _ = read_results(out)
    assert set(rows) == MODEL_NAMES
    for name, row in rows.items():
        assert row["error"] == "", (name, row["error"])
        assert len(row["scores"].split()) == 5


def test_interrupt_writes_the_finished_models(data_dir, tmp_path, monkeypatch, capsys):
    finished = []
    real = cli_running._run_model

    def run_model(spec, *args, **kwargs):
        if finished:
            raise KeyboardInterrupt
        finished.append(spec.name)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(cli_running, "_run_model", run_model)
    out = tmp_path / "int"
    status = cli.main(
        ["compare", "--quick", "--csv", str(data_dir / "tiny.csv"), "--target", "label"]
        + ["--out", str(out), "--no-figure"]
    )
    assert status == 130
    rows, payload = read_results(out)
    assert list(rows) == ["NTK"] and rows["NTK"]["error"] == ""
    assert payload["settings"]["interrupted"] is True
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sklearn-ntk: interrupted; wrote the finished models (NTK)")


def test_ctrl_c_exits_130_without_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    out = tmp_path / "sigint"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sklearn_ntk", "compare", "--out", str(out), "--no-figure"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout.readline().startswith(b"sklearn-ntk compare: diabetes")
    proc.send_signal(signal.SIGINT)  # the full diabetes run takes minutes: it is still running
    _, err = proc.communicate(timeout=60)
    err = err.decode().strip()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted; wrote the finished models (none)" in err
    assert (out / "results.csv").exists() and (out / "results.json").exists()


def test_unexpected_error_is_one_line(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(cli_data, "load_dataset", boom)
    monkeypatch.delenv("SKLEARN_NTK_TRACEBACK", raising=False)
    assert cli.main(["compare"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected RuntimeError: something broke" in err
    monkeypatch.setenv("SKLEARN_NTK_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="something broke"):
        cli.main(["compare"])


def test_ntk_rows_compute_one_gram_per_architecture_and_equal_the_kernel_grid(monkeypatch):
    """The NTK/NNGP searches evaluate the train kernel once per architecture (plus the test
    kernel), and choose and score as GridSearchCV over the same pipeline on pre-scaled data."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.preprocessing import StandardScaler

    from sklearn_ntk.cli.ntk_search import NTKGridSearch
    from sklearn_ntk.kernels import NTKKernel

    sizing = cli_models.Sizing("regression", True, 0, 3, 40, 40)
    row = {row.name: row for row in cli_models.MODEL_TABLE}["NTK"]
    rng = np.random.default_rng(0)
    X = rng.normal(loc=1.0, scale=2.0, size=(40, 3))
    y = np.sin(X[:, 0]) + 3.0
    cv = KFold(3, shuffle=True, random_state=0)
    search = NTKGridSearch(row.make(sizing), row.grid(sizing), cv=cv)
    calls = []
    call = NTKKernel.__call__
    monkeypatch.setattr(NTKKernel, "__call__",
                        lambda self, A, B=None, **kw: calls.append(len(A)) or call(self, A, B, **kw))
    search.fit(X, y)
    assert calls == [40, 40]  # two depths in the quick grid: one Gram each, nothing per fold
    pred = search.predict(X[:7])
    assert calls[2:] == [7]
    monkeypatch.undo()
    # the same search over kernel objects on the scaled features
    Z = StandardScaler().fit_transform(X)
    pipe = TransformedTargetRegressor(row.make(sizing), transformer=StandardScaler())
    ref = GridSearchCV(pipe, [{f"regressor__{k}": v for k, v in part.items()}
                              for part in row.grid(sizing)], cv=cv).fit(Z, y)
    assert {k.removeprefix("regressor__"): v for k, v in ref.best_params_.items()} == \
        search.best_params_
    assert search.best_score_ == pytest.approx(ref.best_score_, rel=1e-10)
    np.testing.assert_allclose(pred, ref.predict(StandardScaler().fit(X).transform(X[:7])),
                               rtol=1e-10)


def test_ntk_classification_search_refits_a_kernel_object_for_probabilities(monkeypatch):
    """Classification: one Gram per architecture for the search, one kernel-object refit (its
    predict_proba needs the ensemble variance), then predictions as that refit's."""
    from sklearn.model_selection import StratifiedKFold

    from sklearn_ntk import NTKClassifier
    from sklearn_ntk.cli.ntk_search import NTKGridSearch
    from sklearn_ntk.kernels import NTKKernel

    sizing = cli_models.Sizing("classification", True, 0, 2, 45, 15)
    row = {row.name: row for row in cli_models.MODEL_TABLE}["NNGP"]
    rng = np.random.default_rng(1)
    X = rng.normal(size=(45, 2))
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    search = NTKGridSearch(row.make(sizing), row.grid(sizing),
                           cv=StratifiedKFold(3, shuffle=True, random_state=0))
    calls = []
    call = NTKKernel.__call__
    monkeypatch.setattr(NTKKernel, "__call__",
                        lambda self, A, B=None, **kw: calls.append(len(A)) or call(self, A, B, **kw))
    search.fit(X, y)
    monkeypatch.undo()
    assert calls == [45, 45, 45]  # two Grams (depth 1, 2), then the kernel-object refit
    best = search.best_params_
    Z = search.features_.transform(X)
    ref = NTKClassifier(NTKKernel(kind="nngp", depth=best["kernel__depth"],
                                  activation=best["kernel__activation"]),
                        t=best["t"], alpha=best["alpha"]).fit(Z, y)
    proba = search.predict_proba(X[:5])
    np.testing.assert_allclose(proba, ref.predict_proba(Z[:5]), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert search.predict(X[:5]).tolist() == ref.predict(Z[:5]).tolist()
    assert list(search.classes_) == ["a", "b", "c"]


# --------------------------------------------------------------------------------------------
# the convolutional NTK: a row for image datasets only
# --------------------------------------------------------------------------------------------


def test_digits_compare_lists_the_cntk_like_the_other_models(tmp_path):
    out = tmp_path / "digits"
    status = cli.main(["compare", "--dataset", "digits", "--quick", "--subsample", "60", "--cv",
                       "3", "--out", str(out), "--no-figure"])
    assert status == 0
    rows, payload = read_results(out)
    assert set(rows) == MODEL_NAMES | {"CNTK"}
    cntk = rows["CNTK"]
    assert cntk["error"] == "" and cntk["family"] == "ntk"
    assert len(cntk["scores"].split()) == 3
    # 20 training images per fold: far above the 10% of guessing for a working CNTK
    assert float(cntk["score_mean"]) > 0.5
    assert "CNTK" in {r["model"] for r in payload["results"]}


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "diabetes"])
def test_cntk_row_only_for_datasets_with_an_image_shape(name):
    specs, _ = cli_models.build_models(
        ds := _load("--dataset", name), cli_models.sizing_for(ds, 3, True, 0)
    )
    assert "CNTK" not in {s.name for s in specs}


def test_cntk_row_of_digits_sees_images():
    dataset = _load("--dataset", "digits", "--quick")
    assert dataset.input_shape == (8, 8, 1)
    pipe = _spec(dataset, "CNTK").estimator
    assert isinstance(pipe.named_steps["scale"], cli_models.ImageScaler)
    kernel = pipe.named_steps["model"].kernel
    assert kernel.input_shape == (8, 8, 1)
    assert "GlobalAvgPool" in repr(kernel.layers)


def test_csv_data_have_no_image_shape(data_dir):
    dataset = _load("--csv", data_dir / "tiny.csv", "--target", "label")
    assert dataset.input_shape is None
    assert "CNTK" not in {s.name for s in cli_models.build_models(
        dataset, cli_models.sizing_for(dataset, 3, True, 0))[0]}


def test_image_scaler_uses_one_factor_from_the_training_rows():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    X = np.array([[0.0, 4.0], [2.0, -8.0]])
    before = X.copy()
    scaler = clone(cli_models.ImageScaler()).fit(X)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_allclose(scaler.transform(np.array([[16.0, 2.0]])), [[2.0, 0.25]])
    assert cli_models.ImageScaler().fit(np.zeros((2, 2))).scale_ == 1.0
    with pytest.raises(NotFittedError):
        cli_models.ImageScaler().transform(X)
