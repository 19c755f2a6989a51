"""The accuracy–cost front and answers for other limits on the command line: ``search --goal
frontier``, ``report --frontier``, ``report --max-size-mb … --goal …`` and ``search
--from-study`` (stored studies made with a lookup objective; one tiny real search on digits)."""

from __future__ import annotations

import json
import math
import shlex

import optuna
import pytest

import optuna_shape as osh
from optuna_shape.cli import build_parser, main
from optuna_shape.cli._common import EXIT_NO_ANSWER, EXIT_OK, EXIT_UNCONFIRMED, EXIT_USAGE

TINY = ["--depth", "10,16", "--width", "0.25,0.5,1", "--epochs", "1", "--subset", "200",
        "--max-trainings", "5", "--threads", "1"]
SPACE = osh.ShapeSpace("wrn", depth=[10, 16, 22, 28], width=[0.25, 0.5, 1.0, 1.5],
                       in_channels=1, num_classes=10, image_size=8)


def lookup(trial: optuna.Trial) -> float:
    s = osh.suggest_shape(trial, SPACE)
    noise = ((s.depth * 7 + int(s.width * 4) * 3 + trial.number) % 7) / 7
    return 80 + 4 * math.log(s.depth * s.width) + noise


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    """A SQLite file with a frontier study ``front`` and an accuracy study ``acc`` (size ≤ 1 MB)
    made with the lookup objective."""
    url = f"sqlite:///{tmp_path_factory.mktemp('front') / 'studies.db'}"
    for name, goal, cons, cap in (("front", "frontier", osh.Constraints(), 12),
                                  ("acc", "accuracy", osh.Constraints(max_size_mb=1.0), None)):
        sampler = osh.ShapeSampler(SPACE, cons, goal, policy=osh.Adaptive(max_trainings=cap),
                                   seed=0)
        study = optuna.create_study(direction="maximize", sampler=sampler, storage=url,
                                    study_name=name)
        study.optimize(lookup, n_trials=60)
    return url


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_report_of_a_frontier_study_prints_the_front_and_exits_0(url, capsys):
    assert main(["report", "--storage", url, "--study-name", "front"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "front: accuracy–size front, cheapest first" in out
    assert "P(on front)" in out and "size MB" in out and "trainings" in out
    assert "chosen shape" not in out
    study = optuna.load_study(study_name="front", storage=url)
    n = len(osh.frontier(study))
    assert f"front of {n} shapes from {osh.search_summary(study).trainings} trainings" in out


def test_report_json_of_a_frontier_study_has_the_front(url, capsys):
    assert main(["report", "--storage", url, "--study-name", "front", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["status"] == "frontier"
    study = optuna.load_study(study_name="front", storage=url)
    assert data["front"] == [r.as_dict() for r in osh.frontier(study)]
    assert set(data["front"][0]) == {"depth", "width", "p_front", "accuracy", "trainings",
                                     "cost", "cost_name", "size_mb"}
    assert main(["report", "--storage", url, "--study-name", "acc", "--json"]) == EXIT_OK
    assert "front" not in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("mb", [0.03, 0.3, 1.0, 2.0])
def test_report_answers_a_size_limit_with_the_exit_code_of_its_status(url, capsys, mb):
    study = optuna.load_study(study_name="front", storage=url)
    expected = osh.answer_for(study, osh.Constraints(max_size_mb=mb), "accuracy")
    code = main(["report", "--storage", url, "--study-name", "front", "--max-size-mb", f"{mb:g}",
                 "--goal", "accuracy"])
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert out.startswith(f"front: size ≤ {mb:g} MB; goal: the highest accuracy — answered "
                          "from the study's")
    s = expected.shape
    assert f"answer: depth {s.depth}, width {s.width:g} — measured accuracy" in out
    assert f"rests on: {expected.trainings} training" in out
    if expected.status == osh.SearchStatus.ANSWERED:
        assert code == EXIT_OK and "status: confirmed: P(" in out
        assert "what more training" not in out and not captured.err
    else:
        assert code == EXIT_UNCONFIRMED and "status: not confirmed: P(" in out
        nxt = ", ".join(f"({t.depth}, {t.width:g})" for t in expected.next_trainings)
        assert (f"what more training would settle it: {nxt}; resume the search with these "
                "limits to settle it") in out
        assert one_line(captured.err).startswith(
            f"unconfirmed: depth {s.depth}, width {s.width:g} is the best-supported answer but "
            "not confirmed: P(")


def test_report_answers_confirmed_and_unconfirmed_limits(url, capsys):
    codes = set()
    for mb in ("0.03", "0.3", "1", "2"):
        codes.add(main(["report", "--storage", url, "--study-name", "front",
                        "--max-size-mb", mb, "--goal", "accuracy"]))
    capsys.readouterr()
    assert codes == {EXIT_OK, EXIT_UNCONFIRMED}


def test_report_with_limits_nothing_meets_exits_3(url, capsys):
    code = main(["report", "--storage", url, "--study-name", "front", "--max-size-mb", "0.001"])
    captured = capsys.readouterr()
    assert code == EXIT_NO_ANSWER
    assert "answer: none — no screened shape meets these limits" in captured.out
    assert one_line(captured.err) == ("no answer: no screened shape meets these limits (size ≤ "
                                      "0.001 MB; goal: the highest accuracy)")


def test_report_limits_json(url, capsys):
    code = main(["report", "--storage", url, "--study-name", "front", "--max-size-mb", "0.3",
                 "--min-accuracy", "85", "--goal", "size", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["limits"] == {"max_size_mb": 0.3, "min_accuracy": 85.0}
    assert data["goal"] == "size"
    assert code == (EXIT_OK if data["confirmed"] else EXIT_UNCONFIRMED)
    assert data["status"] in ("answered", "unconfirmed")
    assert isinstance(data["shape"], list) and data["accuracy"] is not None
    assert data["size_mb"] <= 0.3 and data["confidence_needed"] == 0.9
    assert data["resume"] is None  # made in Python: no command to repeat


def test_report_goal_without_limits_answers_the_studys_own_limits(url, capsys):
    code = main(["report", "--storage", url, "--study-name", "acc", "--goal", "size"])
    out = capsys.readouterr().out
    assert code in (EXIT_OK, EXIT_UNCONFIRMED, EXIT_NO_ANSWER)
    assert out.startswith("acc: size ≤ 1 MB; goal: the smallest size")


def test_report_default_goal_of_a_frontier_study(url, capsys):
    main(["report", "--storage", url, "--study-name", "front", "--max-size-mb", "1"])
    assert "goal: the highest accuracy" in capsys.readouterr().out
    main(["report", "--storage", url, "--study-name", "front", "--min-accuracy", "90"])
    assert "accuracy ≥ 90; goal: the smallest size" in capsys.readouterr().out


@pytest.mark.parametrize("flags,needles", [
    (["--goal", "frontier"], ["'frontier' has no single answer", "--frontier",
                              "accuracy, size, latency, energy"]),
    (["--goal", "frontier:latency"], ["--frontier --cost latency"]),
    (["--goal", "none"], ["'none'", "accuracy, size, latency, energy"]),
    (["--cost", "latency"], ["--cost latency", "add --frontier"]),
    (["--frontier", "--goal", "size"], ["--goal size", "--frontier", "drop one"]),
    (["--frontier", "--min-accuracy", "90"], ["--min-accuracy 90", "does not narrow the front"]),
    (["--all", "--max-size-mb", "1"], ["--all", "--max-size-mb"]),
    (["--max-latency-ms", "3"], ["--max-latency-ms 3", "no latency measurements"]),
    (["--frontier", "--cost", "energy"], ["--cost energy", "no energy measurements"]),
    (["--min-accuracy", "0.9"], ["looks like a fraction", "--min-accuracy 90"]),
])
def test_bad_report_combinations_are_one_line(url, capsys, flags, needles):
    try:
        code = main(["report", "--storage", url, "--study-name", "front", *flags])
    except SystemExit as exc:  # argparse: a value that is never valid
        code = exc.code
    captured = capsys.readouterr()
    assert code == EXIT_USAGE and not captured.out
    line = one_line(captured.err)
    assert "error" in line
    for needle in needles:
        assert needle in line, (needle, line)


def test_report_frontier_of_any_study(url, capsys, tmp_path):
    code = main(["report", "--storage", url, "--study-name", "acc", "--frontier",
                 "--plots", str(tmp_path / "plots")])
    captured = capsys.readouterr()
    assert code == EXIT_OK
    assert "acc: accuracy–size front, cheapest first" in captured.out
    assert "P(on front)" in captured.out and "%" in captured.out
    study = optuna.load_study(study_name="acc", storage=url)
    n, t = len(osh.frontier(study)), osh.search_summary(study).trainings
    assert f"front of {n} shapes from the study's {t} trainings (the study's goal: the " \
           "highest accuracy)" in " ".join(captured.out.split())
    assert (tmp_path / "plots" / "front.html").exists()
    assert main(["report", "--storage", url, "--study-name", "acc", "--frontier", "--json",
                 "--max-size-mb", "0.2"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["cost"] == "size" and data["limits"] == {"max_size_mb": 0.2}
    assert data["front"] and all(r["size_mb"] <= 0.2 for r in data["front"])


def test_the_resume_command_of_a_cli_study_parses_and_starts_from_its_trainings(url, capsys):
    from optuna_shape.cli.report import _resume_hint

    study = optuna.load_study(study_name="front", storage=url)
    args = build_parser().parse_args(["report", "--storage", url])
    assert _resume_hint(args, study, {"max_size_mb": 0.5}, "accuracy") == ()  # Python-made
    study.set_user_attr("training", {"dataset": "digits"})
    try:
        command, note = _resume_hint(args, study, {"max_size_mb": 0.5, "max_latency_ms": None},
                                     "accuracy")
    finally:
        study.set_user_attr("training", None)
    argv = shlex.split(command)
    assert argv[:2] == ["optuna-shape", "search"]
    parsed = build_parser().parse_args(argv[1:])
    n = osh.search_summary(study).trainings
    assert (parsed.from_study, parsed.max_size_mb, parsed.goal, parsed.max_trainings) == \
        ("front", 0.5, "accuracy", n + 5)
    assert parsed.study_name == "front-0.5mb-accuracy" and parsed.storage == url
    assert f"counts its {n} copied trainings" in note


@pytest.mark.parametrize("flags,needle", [
    (["--mode", "paper"], "--goal frontier needs --mode adaptive"),
    (["--budget", "1h"], "use --max-trainings instead of --budget"),
    (["--precision", "fp32,int8"], "searches one precision"),
    (["--early-stopping"], "--early-stopping does not work with --goal frontier"),
])
def test_search_frontier_refuses_what_it_cannot_run_with(tmp_path, capsys, monkeypatch, flags,
                                                         needle):
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--goal", "frontier", *flags, "--quiet"]) == EXIT_USAGE
    assert needle in one_line(capsys.readouterr().err)
    assert not (tmp_path / "optuna-shape.db").exists()


def test_search_goal_frontier_then_another_limit_from_its_trainings(tmp_path, capsys,
                                                                    monkeypatch):
    """A tiny real frontier search on digits: the front table, exit 0; a search for a size
    limit that starts from its trainings (``--from-study``) trains nothing more when its
    ``--max-trainings`` is spent already."""
    monkeypatch.chdir(tmp_path)
    assert main(["search", *TINY, "--goal", "frontier", "--no-dashboard"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "shape-digits: accuracy–size front, cheapest first" in out
    assert "P(on front)" in out and "chosen shape" not in out
    assert "front of " in out and " trainings" in out
    storage = "sqlite:///optuna-shape.db"
    first = optuna.load_study(study_name="shape-digits", storage=storage)
    copied = osh.search_summary(first).trainings
    code = main(["search", *TINY, "--max-size-mb", "0.2", "--goal", "accuracy",
                 "--max-trainings", str(copied), "--from-study", "shape-digits",
                 "--study-name", "small", "--no-dashboard"])
    out = capsys.readouterr().out
    assert code in (EXIT_OK, EXIT_UNCONFIRMED, EXIT_NO_ANSWER)
    assert f"started from {copied} trainings of study 'shape-digits'" in out
    small = optuna.load_study(study_name="small", storage=storage)
    assert osh.search_summary(small).trainings == copied  # the budget was spent: no training
    # a design space the source did not search is refused before the new study exists
    assert main(["search", *TINY[:2], "--width", "0.25,0.5", *TINY[4:], "--from-study",
                 "shape-digits", "--study-name", "other", "--quiet"]) == 1
    assert "searched another design space (widths:" in one_line(capsys.readouterr().err)
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {"shape-digits", "small"}
