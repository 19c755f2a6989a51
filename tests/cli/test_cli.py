"""The ``optuna-shape`` command line through its real entry points (tiny trainings on digits)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import optuna_shape as osh
from optuna_shape.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--depth", "10,16", "--width", "0.25,0.5,1", "--epochs", "1", "--subset", "200",
        "--max-trainings", "4", "--threads", "1"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPTUNA_STORAGE", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optuna_shape", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One tiny real search through ``python -m optuna_shape search``."""
    cwd = tmp_path_factory.mktemp("search")
    proc = cli("search", *TINY, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return cwd, proc


def test_usage_error_is_one_line_exit_2(tmp_path):
    proc = cli("search", "--goal", "fastest", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--goal" in lines[0] and "error" in lines[0]


def test_bad_range_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--width", "2:1:0.5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--width" in err[0] and "2:1:0.5" in err[0]


def test_bad_storage_url_exits_1_with_message(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["search", *TINY, "--storage", "nosuchdb://x/y", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err[-1].startswith("error: ") and "nosuchdb://x/y" in err[-1]


def test_search_prints_chosen_shape_and_table(searched):
    cwd, proc = searched
    assert "chosen shape: depth" in proc.stdout
    assert "complying shapes" in proc.stdout
    assert "predicted" in proc.stdout and "± std" in proc.stdout
    assert "trainings for 6 feasible shapes" in proc.stdout
    assert "optuna-dashboard sqlite:///optuna-shape.db" in proc.stdout
    assert (cwd / "optuna-shape.db").exists()
    # no traceback, no torch "No CUDA runtime is found" line on a CPU-only machine
    assert "Traceback" not in proc.stderr and "CUDA runtime" not in proc.stderr


def test_resume_trains_nothing_new(searched, capsys, monkeypatch):
    cwd, _ = searched
    monkeypatch.chdir(cwd)
    url = "sqlite:///optuna-shape.db"
    before = len(optuna.load_study(study_name="shape-digits", storage=url).trials)
    assert main(["search", *TINY, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "chosen shape" in out
    assert len(optuna.load_study(study_name="shape-digits", storage=url).trials) == before


def test_other_flags_on_same_study_fail_clearly(searched, capsys, monkeypatch):
    cwd, _ = searched
    monkeypatch.chdir(cwd)
    args = [a if a != "0.25,0.5,1" else "0.25,0.5" for a in TINY]
    assert main(["search", *args, "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: study 'shape-digits' was created with other settings")
    assert "--from-study" not in err[-1]  # another design space: its trainings do not serve


def test_a_larger_budget_on_a_finished_study_points_to_a_search_from_its_trainings(
        searched, capsys, monkeypatch, tmp_path):
    cwd, _ = searched
    shutil.copy(cwd / "optuna-shape.db", tmp_path)  # the module's study stays as it is
    monkeypatch.chdir(tmp_path)
    more = [a if a != "4" else "5" for a in TINY] + ["--budget", "1h"]  # --max-trainings 5
    assert main(["search", *more, "--quiet"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "budget_seconds: study has None, these flags give 3600.0" in line
    assert "max_trainings: study has 4, these flags give 5" in line
    hint = "--from-study shape-digits --study-name shape-digits-2"
    assert line.endswith(f"start a new study from its trainings: {hint}")
    assert main(["search", *more, *hint.split(), "--quiet", "--no-dashboard"]) in (0, 4)
    url = "sqlite:///optuna-shape.db"
    old = [t for t in optuna.load_study(study_name="shape-digits", storage=url).trials
           if "depth" in t.params]
    study = optuna.load_study(study_name="shape-digits-2", storage=url)
    trained = [t for t in study.trials if "depth" in t.params]
    assert len(old) == 4 and len(trained) == 5  # the four copied and one more
    # the copied trainings' compute counts towards the new study's budget
    copied_s = sum(t.user_attrs["train_seconds"] for t in old)
    compute = osh.search_summary(study).compute
    assert compute["budget_s"] == 3600.0 and compute["spent_s"] > copied_s


def test_report_reprints_writes_plots_and_json(searched, capsys, monkeypatch):
    cwd, proc = searched
    monkeypatch.chdir(cwd)
    assert main(["report", "--plots", "plots"]) == 0
    out = capsys.readouterr().out
    chosen = [line for line in proc.stdout.splitlines() if line.startswith("chosen shape")]
    assert chosen and chosen[0] in out
    assert {p.name for p in (cwd / "plots").iterdir()} >= {"grid.html",
                                                           "accuracy_vs_params.html"}
    assert "plotly" in (cwd / "plots" / "grid.html").read_text()[:5000].lower()
    assert main(["report", "--json", "--all"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["finished"] and len(data["rows"]) == 6
    assert data["summary"]["status"] == "answered"
    assert data["summary"]["trainings"] <= 4


def test_report_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 1
    assert "no storage file" in capsys.readouterr().err
    url = f"sqlite:///{tmp_path / 'two.db'}"
    optuna.create_study(storage=url, study_name="a")
    optuna.create_study(storage=url, study_name="b")
    assert main(["report", "--storage", url]) == 1
    err = capsys.readouterr().err
    assert "several studies (a, b)" in err
    assert main(["report", "--storage", url, "--study-name", "a"]) == 1
    assert "holds no optuna-shape search" in capsys.readouterr().err


@pytest.mark.parametrize("flags,needle", [
    (["--family", "wrn", "--dataset", "wine"], "--family wrn does not fit --dataset wine"),
    (["--family", "densenet", "--depth", "10,12"], "DenseNet-BC depth must be 6n+4"),
    (["--family", "mlp", "--dataset", "iris", "--depth", "1.5"], "depth=1.5"),
    (["--family", "resnet"], "invalid choice: 'resnet'"),
])
def test_bad_family_flags_are_one_usage_error_line(flags, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["search", *flags, "--quiet"])
    except SystemExit as exc:  # argparse's own checks
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0] and needle in err[0]
    assert not (tmp_path / "optuna-shape.db").exists()


def test_family_names_match_the_registry():
    from optuna_shape.cli.search_args import FAMILIES
    from optuna_shape.families import get_family

    assert all(get_family(name).default_depth for name in FAMILIES)


def test_early_stopping_with_paper_mode_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["search", *TINY, "--mode", "paper", "--early-stopping", "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--early-stopping" in err[0] and "adaptive" in err[0]
    assert not list(tmp_path.iterdir())  # nothing written


def test_trainings_not_worth_their_compute_stop_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'es.db'}"
    args = ["--depth", "10,16", "--width", "0.25,0.5,1", "--epochs", "4", "--subset", "200",
            "--max-trainings", "7", "--threads", "1", "--goal", "size", "--min-accuracy", "99.9"]
    rc = main(["search", *args, "--storage", url, "--study-name", "es", "--no-dashboard"])
    assert rc == 3  # nothing complies
    study = optuna.load_study(study_name="es", storage=url)
    stopped = [t for t in study.trials if "prune_reason" in t.user_attrs]
    assert stopped and all(t.state == optuna.trial.TrialState.PRUNED for t in stopped)
    assert all(t.user_attrs["epochs"] < 4 for t in stopped)
    assert study.user_attrs["training"]["early_stopping"] is True
    # the progress says where each stopped training ended and why, in lines of 79 columns
    # (the last line, "no answer: …", is one line for scripts)
    progress = capsys.readouterr().err
    lines = progress.splitlines()
    assert lines[-1].startswith("no answer: ")
    assert [line for line in lines[:-1] if len(line) > 79] == [], progress
    joined = " ".join(line.strip() for line in lines)
    for t in stopped:
        d, w = t.params["depth"], t.params["width"]
        assert f"({d}, {w:g}): stopped after epoch {t.user_attrs['epochs']} of 4 at" in joined
    reason = osh.search_summary(study).reason.split(";")[0]
    assert f"search finished: no shape — {reason}" in joined  # wrapped, never cut

    # resuming it without the flag keeps the study's setting; with the opposite flag it is
    # refused, naming the setting, before anything is trained
    n = len(study.trials)
    rc = main(["search", *args, "--storage", url, "--study-name", "es", "--quiet",
               "--no-dashboard"])
    assert rc == 3
    rc = main(["search", *args, "--no-early-stopping", "--storage", url, "--study-name", "es",
               "--quiet", "--no-dashboard"])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: study 'es' was trained with other settings")
    assert "early_stopping: study has True, these flags give False" in err[-1]
    assert len(optuna.load_study(study_name="es", storage=url).trials) == n


def test_a_study_made_before_early_stopping_existed_resumes_without_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'old.db'}"
    args = ["--depth", "10,16", "--width", "0.25,0.5", "--epochs", "2", "--subset", "150",
            "--max-trainings", "4", "--threads", "1", "--storage", url, "--study-name", "old",
            "--quiet", "--no-dashboard"]
    assert main(["search", *args, "--no-early-stopping"]) == 0
    study = optuna.load_study(study_name="old", storage=url)
    training = dict(study.user_attrs["training"])
    del training["early_stopping"]  # as stored before the setting existed
    study.set_user_attr("training", training)
    assert main(["search", *args]) == 0  # no flag: the study's (absent = off) setting


def test_a_ctrl_c_swallowed_by_library_code_is_raised_again():
    from optuna_shape.cli._common import InterruptLatch

    before = signal.getsignal(signal.SIGINT)
    with InterruptLatch() as latch:
        latch.check()  # nothing pressed: nothing raised
        try:  # a library that catches everything while Ctrl-C is pressed
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
        except BaseException:
            pass
        with pytest.raises(KeyboardInterrupt):
            latch.check()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_ctrl_c_inside_a_finaliser_prints_no_traceback(monkeypatch):
    """Ctrl-C landing in a weak-reference callback or ``__del__`` (the garbage collector runs
    them at any moment) is reported by Python as "Exception ignored in ..." with a traceback;
    the latch has remembered it, so the report is dropped and ``check`` raises it again.
    Other unraisable exceptions still reach the previous hook."""
    import gc

    from optuna_shape.cli._common import InterruptLatch

    seen: list[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))

    class Finalised:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def __del__(self) -> None:
            raise self.exc

    with InterruptLatch() as latch:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
        except KeyboardInterrupt:
            pass
        Finalised(KeyboardInterrupt())
        Finalised(ValueError("a real defect"))
        gc.collect()
        with pytest.raises(KeyboardInterrupt):
            latch.check()
    assert [type(e) for e in seen] == [ValueError]
    Finalised(KeyboardInterrupt())  # outside the latch: reported as before
    gc.collect()
    assert [type(e) for e in seen] == [ValueError, KeyboardInterrupt]


def test_a_search_fails_a_training_a_dead_worker_took_but_never_started(tmp_path, capsys,
                                                                       monkeypatch):
    """At start the search fails dead workers' trials by the one stale rule: a queued training
    taken by a worker killed before its first heartbeat (no heartbeat row, so Optuna's own check
    never counts it) fails too, instead of blocking its slot."""
    import datetime

    import optuna_shape
    from optuna_shape import store as st
    from optuna_shape.space.shape import Shape

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(optuna_shape, "optimize", stop)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'dead.db'}"
    flags = ["search", *TINY, "--storage", url, "--study-name", "dead", "--quiet",
             "--no-dashboard"]
    assert main(flags) == 1  # the study exists, nothing was trained
    study = optuna.load_study(study_name="dead", storage=url)
    taken = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING,
                                      system_attrs={st.SLOT: st.slot_of(Shape(10, 0.25), 1),
                                                    st.STAGE: "initial"})
    taken.datetime_start = datetime.datetime.now() - datetime.timedelta(hours=1)
    study._storage.create_new_trial(study._study_id, template_trial=taken)
    assert main(flags) == 1
    assert capsys.readouterr().err.count("stopped before training") == 2
    states = [t.state for t in optuna.load_study(study_name="dead", storage=url).trials]
    assert states == [optuna.trial.TrialState.FAIL]


def test_paper_flags_the_adaptive_search_would_ignore_are_refused(capsys):
    for extra in (["--strategy", "4"], ["--sampling", "random"],
                  ["--goal", "none", "--sampling", "random"]):
        rc = main(["search", "--depth", "10", "--width", "0.25", "--epochs", "1", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and "works with --mode paper only" in err, (extra, err)
        assert err.count("\n") == 1, err
