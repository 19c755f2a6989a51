"""A user's first hour with the command line: impossible inputs refused before anything is
trained or stored, exit codes, no tracebacks, no passwords in any output, ``OPTUNA_STORAGE``,
a read-only ``report`` and honest ``--help``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import optuna
import pytest

import optuna_shape as osh
from optuna_shape.cli import build_parser, main
from optuna_shape.cli._common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NO_ANSWER,
    EXIT_OK,
    EXIT_UNCONFIRMED,
    EXIT_USAGE,
    mask,
    secrets_of,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--depth", "10,16", "--width", "0.25,0.5,1", "--epochs", "1", "--subset", "150",
        "--max-trainings", "3", "--threads", "1", "--no-dashboard"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPTUNA_STORAGE", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optuna_shape", *args], cwd=cwd,
                          env=_env(**env), capture_output=True, text=True, timeout=300)


def one_error(err: str, prefix: str = "error: ") -> str:
    """The only line of ``err``, which must start with ``prefix`` (or be argparse's
    ``optuna-shape COMMAND: error: …`` for ``error: ``)."""
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    if prefix == "error: " and line.startswith("optuna-shape ") and ": error: " in line:
        return line
    assert line.startswith(prefix), line
    assert "Traceback" not in err
    return line


def last_line(err: str) -> str:
    assert "Traceback" not in err
    return [x for x in err.strip().splitlines() if x.strip()][-1]


# ------------------------------------------------------------ refused before training -------
@pytest.mark.parametrize("flags, code, words", [
    (["--min-accuracy", "150"], EXIT_USAGE, ["150", "percent", "0 to 100"]),
    (["--min-accuracy", "0.97"], EXIT_USAGE, ["0.97", "fraction", "--min-accuracy 97"]),
    (["--max-size-mb", "0.001"], EXIT_USAGE,
     ["0.001 MB", "smallest shape", "(10, 0.25)", "0.02289 MB"]),
    (["--depth", "12"], EXIT_USAGE, ["depth", "6n+4", "12"]),
    (["--width", "2:1:0.5"], EXIT_USAGE, ["--width", "2:1:0.5"]),
    (["--width", ","], EXIT_USAGE, ["width", "empty"]),
    (["--family", "nope"], EXIT_USAGE, ["nope", "wrn"]),
    (["--device", "tpu"], EXIT_USAGE, ["tpu", "cpu, cuda, cuda:N"]),
    (["--confidence", "1.5"], EXIT_USAGE, ["--confidence", "between 0 and 1"]),
    (["--val-fraction", "1.2"], EXIT_USAGE, ["--val-fraction", "between 0 and 1"]),
    (["--lr-milestones", "0.5,3"], EXIT_USAGE, ["--lr-milestones", "0.5,3"]),
    (["--max-energy-j", "0.5"], EXIT_FAILURE, ["--max-energy-j 0.5", "NVIDIA GPU", "--device"]),
    (["--goal", "energy"], EXIT_FAILURE, ["--goal energy", "NVIDIA GPU"]),
])
def test_impossible_inputs_are_one_line_before_any_storage_write(flags, code, words, tmp_path,
                                                                 capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["search", *TINY, *flags])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    line = one_error(capsys.readouterr().err)
    assert rc == code, line
    for w in words:
        assert w in line, (w, line)
    assert not (tmp_path / "optuna-shape.db").exists(), "storage written before the check"


def test_cuda_without_cuda_is_refused_before_the_study_exists(tmp_path, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    assert main(["search", *TINY, "--device", "cuda"]) == EXIT_FAILURE
    line = one_error(capsys.readouterr().err)
    assert "--device cuda" in line and "--device cpu" in line
    assert not (tmp_path / "optuna-shape.db").exists()


# ------------------------------------------------------------ searched, nothing complies ----
def test_floor_not_reached_exits_3_with_counts(tmp_path):
    proc = cli("search", *TINY, "--min-accuracy", "99.5", cwd=tmp_path)
    assert proc.returncode == EXIT_NO_ANSWER, proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith("no answer: ")
    assert "floor 99.5 was not reached" in line and "best measured accuracy" in line
    assert "3 trainings" in line
    rep = cli("report", "--json", cwd=tmp_path)
    assert rep.returncode == EXIT_NO_ANSWER
    assert json.loads(rep.stdout)["summary"]["status"] == "floor_not_reached"


def test_budget_end_answers_unconfirmed_and_exits_4(tmp_path):
    # the floor sits at the measured accuracy of the cheapest promising shape: three trainings
    # cannot confirm it, yet the evidence supports an answer
    proc = cli("search", *TINY, "--goal", "size", "--min-accuracy", "21", cwd=tmp_path)
    assert proc.returncode == EXIT_UNCONFIRMED, proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith("unconfirmed: depth ") and "not confirmed: P(accuracy ≥ floor) = " \
        in line
    # what more compute would buy, in seconds of training: one more training, and the most
    # the search puts on one shape
    assert re.search(r"; one more training of it \(≈ [0-9.]+ s\) would confirm it with "
                     r"probability [01]\.\d\d; [2-5] more \(≈ [0-9.]+ s\) with probability "
                     r"[01]\.\d\d$", line), line
    assert "chosen shape: depth" in proc.stdout and "not confirmed:" in proc.stdout
    # and the command that spends it: a search from these trainings with room for that many
    # more (the cap of 3 raised), on a line of its own
    more = int(re.search(r"; ([2-5]) more \(≈", line).group(1))
    assert f"more compute: room for {more} more trainings of depth" in proc.stdout
    command = [x.strip() for x in proc.stdout.splitlines()
               if x.strip().startswith("optuna-shape search")]
    assert command == [f"optuna-shape search --from-study shape-digits --study-name "
                       f"shape-digits-2 --max-trainings {3 + more}"], proc.stdout
    again = cli("search", *TINY, "--goal", "size", "--min-accuracy", "21",
                *command[0].split()[2:], cwd=tmp_path)  # the other flags as before
    assert again.returncode in (0, 3, 4), again.stderr
    import optuna

    url = f"sqlite:///{tmp_path / 'optuna-shape.db'}"
    new = optuna.load_study(study_name="shape-digits-2", storage=url)
    trained = [t for t in new.trials if "depth" in t.params and t.state.is_finished()]
    assert 3 < len(trained) <= 3 + more
    rep = cli("report", "--json", "--study-name", "shape-digits", cwd=tmp_path)
    assert rep.returncode == EXIT_UNCONFIRMED
    summary = json.loads(rep.stdout)["summary"]
    assert summary["status"] == "unconfirmed" and summary["shape"] is not None
    assert 0.5 <= summary["confidence"] < 0.9 and summary["compute"]["spent_s"] > 0
    study = optuna.load_study(study_name="shape-digits", storage=url)
    assert osh.best_shape(study) is not None
    s = osh.search_summary(study)
    assert s.status == "unconfirmed" and 0.5 <= s.confidence < 0.9


def test_budget_flag_is_compute_and_the_result_says_what_was_spent(tmp_path):
    proc = cli("search", *TINY, "--budget", "90s", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "compute: " in proc.stdout and " of 90 s budget" in proc.stdout
    assert "(compute " in proc.stderr  # the progress line
    bad = cli("search", *TINY, "--budget", "ten minutes", cwd=tmp_path)
    assert bad.returncode == 2
    assert "--budget: must be a positive number of seconds" in last_line(bad.stderr)


def test_nothing_fits_the_limits_exits_3_and_says_so(tmp_path):
    proc = cli("search", *TINY, "--max-latency-ms", "0.00001", cwd=tmp_path)
    assert proc.returncode == EXIT_NO_ANSWER, proc.stderr
    assert last_line(proc.stderr) == ("no answer: no shape fits the limits: 0 of 6 shapes pass "
                                      "latency ≤ 1e-05 ms")
    assert "floor" not in proc.stdout


def test_every_training_failed_exits_3_and_says_so(tmp_path, capsys, monkeypatch):
    import optuna_shape.training as training

    def nan_objective(space, *args, **kwargs):
        def objective(trial):
            osh.suggest_shape(trial, space)
            return float("nan")
        return objective

    monkeypatch.setattr(training, "make_objective", nan_objective)
    monkeypatch.chdir(tmp_path)
    assert main(["search", *TINY, "--quiet"]) == EXIT_NO_ANSWER
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("no answer: every training failed:"), err
    assert "3 of 3 trainings failed" in err[-1]


def test_report_names_a_fraction_objective_against_a_percent_floor(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'frac.db'}"
    space = osh.ShapeSpace("wrn", depth=[10, 16], width=[0.5, 1], in_channels=1,
                           num_classes=10, image_size=8)
    sampler = osh.ShapeSampler(space, osh.Constraints(min_accuracy=97), goal="size",
                               max_trainings=3, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=url,
                                study_name="frac")
    study.optimize(lambda t: 0.9 + 0.01 * osh.suggest_shape(t, space).width)  # 0–1 accuracy
    assert main(["report", "--storage", url]) == EXIT_NO_ANSWER
    captured = capsys.readouterr()
    line = last_line(captured.err)
    assert line.startswith("no answer: the accuracy floor 97 was not reached")
    assert "fractions (0 to 1)" in line and "use a floor of 0.97" in line


def test_fraction_objective_against_percent_floor_is_named():
    from optuna_shape.reporting.outcomes import units_hint

    assert "fractions (0 to 1)" in units_hint(97.0, [0.91, 0.95])
    assert "use a floor of 0.97" in units_hint(97.0, [0.91, 0.95])
    assert units_hint(97.0, [91.0]) is None and units_hint(0.9, [0.5]) is None


# ------------------------------------------------------------ Ctrl-C ------------------------
def test_ctrl_c_prints_one_line_with_the_exact_resume_command(tmp_path):
    args = ["search", "--depth", "10,16", "--width", "0.25,0.5,1", "--epochs", "3",
            "--subset", "300", "--max-trainings", "3", "--threads", "1", "--no-dashboard"]
    proc = subprocess.Popen([sys.executable, "-m", "optuna_shape", *args], cwd=tmp_path,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline:  # wait until a training runs
        line = proc.stderr.readline()
        seen += line
        if "training" in line:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, seen + err
    assert "Traceback" not in err
    tail = [x for x in err.strip().splitlines() if x.strip()][-1]
    assert tail.startswith("interrupted; ") and "Resume with: optuna-shape search" in tail
    command = tail.split("Resume with: ", 1)[1]
    assert shlex.split(command)[1:] == args
    again = cli(*shlex.split(command)[1:], cwd=tmp_path)
    assert again.returncode == EXIT_OK, again.stderr
    assert "chosen shape" in again.stdout


# ------------------------------------------------------------ passwords ---------------------
def test_mask_hides_url_passwords_and_secrets():
    url = "postgresql://osh:p%40ss-w0rd@db.example:5432/s"
    assert mask(f"x {url} y") == "x postgresql://osh:***@db.example:5432/s y"
    assert set(secrets_of(url)) == {"p%40ss-w0rd", "p@ss-w0rd"}
    assert mask("failed for p@ss-w0rd", secrets_of(url)) == "failed for ***"
    assert mask("sqlite:///a.db") == "sqlite:///a.db"


@pytest.mark.parametrize("via_env", [False, True])
def test_unreachable_server_error_masks_the_password(tmp_path, via_env):
    url = "postgresql://osh:Hush-3131-pw@127.0.0.1:1/nodb"
    args = ["search", *TINY] + ([] if via_env else ["--storage", url])
    env = {"OPTUNA_STORAGE": url} if via_env else {}
    proc = cli(*args, cwd=tmp_path, **env)
    assert proc.returncode == EXIT_FAILURE
    line = one_error(proc.stderr)
    assert "cannot open storage 'postgresql://osh:***@127.0.0.1:1/nodb'" in line
    assert "Hush-3131-pw" not in proc.stdout + proc.stderr
    assert not (tmp_path / "optuna-shape.db").exists()


@pytest.mark.postgres
def test_password_never_printed_on_success_report_json_and_dashboard(pg_url, tmp_path):
    secret = urlsplit(pg_url).password
    assert secret
    name = f"pw-{os.getpid()}-{int(time.time())}"
    runs = [cli("search", *TINY[:-1], "--storage", pg_url, "--study-name", name, cwd=tmp_path),
            cli("search", *TINY[:-1], "--study-name", name, cwd=tmp_path,
                OPTUNA_STORAGE=pg_url),
            cli("report", "--study-name", name, "--all", cwd=tmp_path, OPTUNA_STORAGE=pg_url),
            cli("report", "--storage", pg_url, "--study-name", name, "--json", cwd=tmp_path),
            cli("report", "--storage", pg_url, "--study-name", "nosuch", cwd=tmp_path)]
    for proc in runs[:4]:
        assert proc.returncode == EXIT_OK, proc.stderr
    assert runs[4].returncode == EXIT_FAILURE
    for proc in runs:
        assert secret not in proc.stdout + proc.stderr
    assert "inspect it: optuna-dashboard postgresql://" in runs[0].stdout
    assert ":***@" in runs[0].stdout and "OPTUNA_STORAGE" in runs[0].stdout
    json.loads(runs[3].stdout)
    study = optuna.load_study(study_name=name, storage=pg_url)
    from optuna_dashboard._note import get_note

    assert secret not in get_note(study) and "Answer" in get_note(study)


# ------------------------------------------------------------ storage from the environment --
def test_optuna_storage_env_is_used_when_no_flag(tmp_path):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    proc = cli("search", *TINY, cwd=tmp_path, OPTUNA_STORAGE=url)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert (tmp_path / "env.db").exists() and not (tmp_path / "optuna-shape.db").exists()
    assert "reprint it: optuna-shape report --study-name shape-digits" in proc.stdout
    rep = cli("report", cwd=tmp_path, OPTUNA_STORAGE=url)
    assert rep.returncode == EXIT_OK and "chosen shape" in rep.stdout


# ------------------------------------------------------------ report only reads -------------
def test_report_reads_a_read_only_database_and_writes_only_when_asked(tmp_path):
    proc = cli("search", *TINY, cwd=tmp_path)  # --no-dashboard: no note yet
    assert proc.returncode == EXIT_OK, proc.stderr
    ro = tmp_path / "ro"
    ro.mkdir()
    db = ro / "optuna-shape.db"
    shutil.copy(tmp_path / "optuna-shape.db", db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    db.chmod(0o444)
    ro.chmod(0o555)
    try:
        plain = cli("report", "--storage", f"sqlite:///{db}", cwd=tmp_path)
        uri = f"sqlite:///file:{db}?mode=ro&uri=true"
        ro_uri = cli("report", "--storage", uri, "--json", cwd=tmp_path)
        refresh = cli("report", "--storage", uri, "--update-dashboard", cwd=tmp_path)
    finally:
        ro.chmod(0o755)
        db.chmod(0o644)
    assert plain.returncode == EXIT_OK, plain.stderr
    assert "chosen shape" in plain.stdout
    assert ro_uri.returncode == EXIT_OK, ro_uri.stderr
    assert json.loads(ro_uri.stdout)["summary"]["status"] == "answered"
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before, "report wrote to the database"
    # asked to write the note into a read-only database: one line, exit 1
    assert refresh.returncode == EXIT_FAILURE, refresh.stdout
    assert "cannot update the dashboard views" in one_error(refresh.stderr)
    # writable: --update-dashboard writes the note
    url = f"sqlite:///{tmp_path / 'optuna-shape.db'}"
    assert cli("report", "--storage", url, "--update-dashboard", cwd=tmp_path).returncode == 0
    from optuna_dashboard._note import get_note

    study = optuna.load_study(study_name="shape-digits", storage=url)
    assert get_note(study).startswith("# Answer: depth")


# ------------------------------------------------------------ --help ------------------------
def test_help_has_no_empty_entries_and_no_internal_references():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert (action.help or "").strip(), f"{name} {action.option_strings}: no help"
        text = p.format_help()
        assert "SPEC" not in text and "default: None" not in text, name
    search = sub.choices["search"].format_help()
    for flag in ("--mode", "--confidence", "--max-trainings", "--n-initial", "OPTUNA_STORAGE"):
        assert flag in search
    assert "--update-dashboard" in sub.choices["report"].format_help()


def test_cli_dataset_names_match_the_trainer_and_help_does_not_import_torch():
    from optuna_shape.cli.search_args import DATASETS
    from optuna_shape.training import DATASETS as TRAINER_DATASETS

    assert DATASETS == TRAINER_DATASETS
    code = ("import sys; from optuna_shape.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == EXIT_USAGE
    assert "search" in capsys.readouterr().out
