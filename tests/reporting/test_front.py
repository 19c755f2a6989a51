"""The accuracy–cost front in the reports: the table (cheapest first, P(on front) in percent),
the outcome of a frontier search, the dashboard note, the front figure, and the words of an
answer for other limits (fast: a lookup objective, no training)."""

from __future__ import annotations

import math

import optuna
import pytest
from rich.console import Console

import optuna_shape as osh
from optuna_shape.reporting import make_figures, print_result
from optuna_shape.reporting.front_tables import front_markdown, front_rich_table, percent_text
from optuna_shape.reporting.limits import FrontRow
from optuna_shape.reporting.limits_text import limit_answer_lines
from optuna_shape.reporting.outcomes import limit_outcome, outcome
from optuna_shape.sampler.requery import LimitAnswer

SPACE = osh.ShapeSpace("wrn", depth=[10, 16, 22, 28], width=[0.25, 0.5, 1.0, 1.5],
                       in_channels=1, num_classes=10, image_size=8)


def lookup(trial: optuna.Trial) -> float:
    s = osh.suggest_shape(trial, SPACE)
    noise = ((s.depth * 7 + int(s.width * 4) * 3 + trial.number) % 7) / 7
    return 80 + 4 * math.log(s.depth * s.width) + noise


def search(goal: str | None, constraints: osh.Constraints | None = None,
           max_trainings: int | None = 12) -> optuna.Study:
    sampler = osh.ShapeSampler(SPACE, constraints or osh.Constraints(), goal,
                               policy=osh.Adaptive(max_trainings=max_trainings), seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lookup, n_trials=60)
    return study


@pytest.fixture(scope="module")
def front_study() -> optuna.Study:
    return search("frontier")


@pytest.fixture(scope="module")
def accuracy_study() -> optuna.Study:
    return search("accuracy", osh.Constraints(max_size_mb=1.0), max_trainings=None)


def test_a_frontier_search_prints_the_front_cheapest_first_with_p_on_front(front_study):
    console = Console(record=True, width=100)
    print_result(front_study, console)
    text = console.export_text()
    front = osh.frontier(front_study)
    assert front
    assert "accuracy–size front, cheapest first" in text and "P(on front)" in text
    assert "chosen shape" not in text and "complying shapes" not in text
    lines = [line.split() for line in text.splitlines()]
    rows = [cells for cells in lines if len(cells) == 7 and cells[0].isdigit()]
    assert [(int(c[0]), float(c[1])) for c in rows] == [(r.depth, r.width) for r in front]
    sizes = [float(c[2]) for c in rows]
    assert sizes == sorted(sizes)  # cheapest first
    assert all(c[6] == "%" or c[-1] == "%" for c in rows)
    s = osh.search_summary(front_study)
    assert f"front of {len(front)} shapes from {s.trainings} trainings" in text
    assert ("not confident" in text) or ("confident" in text)


def test_a_frontier_search_exits_0_and_an_empty_front_exits_3(front_study, monkeypatch):
    status, code, words = outcome(front_study)
    assert (status, code) == (osh.SearchStatus.FRONTIER, 0)
    assert words.startswith("front of ")
    from optuna_shape.reporting import outcomes

    monkeypatch.setattr(outcomes, "frontier", lambda study, **kw: [])
    status, code, words = outcome(front_study)
    assert code == 3 and words.startswith("no trained shape is on the front")


def test_the_front_table_with_a_latency_cost_fits_80_columns():
    rows = [FrontRow(10, 0.25, 1.0, 84.123, 1, 0.258, "latency", 0.0229),
            FrontRow(28, 1.75, 0.7266, 97.5, 3, 12.345, "latency", 12.3456)]
    console = Console(record=True, width=80)
    console.print(front_rich_table(rows, title="shape-cifar10: accuracy–latency front"))
    text = console.export_text()
    assert "…" not in text and max(len(line.rstrip()) for line in text.splitlines()) <= 79
    assert "latency ms" in text and "size MB" in text and "72.7 %" in text
    md = front_markdown(rows)
    assert md[0] == ("| depth | width | latency ms | size MB | accuracy | trainings | "
                     "P(on front) |")
    assert "| 28 | 1.75 | 12.3 | 12.3456 | 97.50 | 3 | 72.7 % |" in md


def test_percent_text_never_rounds_up_to_certainty():
    assert percent_text(0.7266) == "72.7 %"
    assert percent_text(0.9996) == "> 99.9 %"
    assert percent_text(1.0) == "100.0 %"


def test_the_dashboard_note_of_a_frontier_search_shows_the_front(front_study):
    from optuna_shape.reporting.dashboard import note_markdown

    note = note_markdown(front_study)
    n = len(osh.frontier(front_study))
    assert note.startswith(f"# The accuracy–size front: {n} shapes to pick from")
    assert "## The front (cheapest first)" in note
    assert "| depth | width | size MB | accuracy | trainings | P(on front) |" in note
    assert "# Answer" not in note and "Complying shapes" not in note
    from optuna_shape.reporting.dashboard import GRAPH_IDS, attach_to_dashboard

    attach_to_dashboard(front_study)  # the front figure is one of the dashboard's plots
    from optuna_dashboard._custom_plot_data import list_graph_object_ids

    from optuna_shape import store as st

    assert GRAPH_IDS["front"] in list_graph_object_ids(st.study_attrs(front_study))


def test_the_front_figure_of_a_frontier_search(front_study):
    figs = make_figures(front_study)
    assert "front" in figs
    fig = figs["front"]
    assert fig.layout.xaxis.type == "log"
    by = {tr.name: tr for tr in fig.data}
    band = by["model: mean ± 1 std (every feasible shape)"]
    assert len(band.x) == len(SPACE.shapes) and len(band.error_y.array) == len(band.x)
    on = by["on the front (P ≥ 50 %)"]
    front = osh.frontier(front_study)
    assert list(on.x) == [r.cost for r in front]
    assert all("P(on front)" in t for t in on.text)
    trained = [r for r in osh.result_table(front_study, include_all=True) if r.trained]
    assert len(by["trained"].x) + len(on.x) == len(trained)


def test_any_study_gets_a_front_figure_when_asked(accuracy_study, tmp_path):
    assert "front" not in make_figures(accuracy_study)
    figs = make_figures(accuracy_study, front_cost="size")
    assert "front" in figs
    from optuna_shape.reporting.plots import write_plots

    names = {p.name for p in write_plots(accuracy_study, tmp_path, front_cost="size")}
    assert "front.html" in names
    with pytest.raises(ValueError, match="latency"):  # no latency measured in this study
        make_figures(accuracy_study, front_cost="latency")


ANSWER, NEXT = osh.Shape(10, 1.5), (osh.Shape(16, 1.0),)


def _answer(status, shape=ANSWER, confidence=0.75, nxt=NEXT):
    return LimitAnswer(shape, status, confidence,
                       "stopped: budget of 9 trainings spent (P = 0.75 < 0.9); answer (10, 1.5) "
                       "measured 91.69 over 1 training(s); P(within noise of the best feasible "
                       "shape) = 0.75", 9, nxt)


def test_an_answer_for_other_limits_exits_as_a_search_would():
    code, words = limit_outcome(_answer(osh.SearchStatus.UNCONFIRMED), 0.9)
    assert code == 4
    assert words == ("depth 10, width 1.5 is the best-supported answer but not confirmed: "
                     "P(within noise of the best feasible shape) = 0.75 < 0.9; more training "
                     "would settle it: (16, 1)")
    code, words = limit_outcome(_answer(osh.SearchStatus.ANSWERED, confidence=0.97, nxt=()),
                                0.9)
    assert code == 0 and words.endswith("confirmed: P(within noise of the best feasible "
                                        "shape) = 0.97 ≥ 0.9")
    _, words = limit_outcome(_answer(osh.SearchStatus.UNCONFIRMED, confidence=0.8984), 0.9)
    assert "= 0.898 < 0.9" in words  # not "0.90 < 0.9"
    nothing = LimitAnswer(None, osh.SearchStatus.NO_FEASIBLE, None,
                          "no screened shape meets these limits", 0)
    code, words = limit_outcome(nothing, 0.9, "size ≤ 0.001 MB; goal: the highest accuracy")
    assert code == 3 and words == ("no screened shape meets these limits (size ≤ 0.001 MB; "
                                   "goal: the highest accuracy)")


def test_the_lines_of_an_answer_for_other_limits(front_study):
    limits = {"max_size_mb": 1.0}
    answer = osh.answer_for(front_study, osh.Constraints(**limits), "accuracy")
    lines = limit_answer_lines(front_study, answer, limits, "accuracy", wrap=False)
    text = "\n".join(lines)
    assert lines[0].startswith(f"{front_study.study_name}: size ≤ 1 MB; goal: the highest "
                               "accuracy — answered from the study's")
    assert f"answer: depth {answer.shape.depth}, width {answer.shape.width:g}" in text
    assert "measured accuracy" in text
    assert f"rests on: {answer.trainings} trainings" in text
    if answer.status == osh.SearchStatus.ANSWERED:
        assert "status: confirmed" in text and "what more training" not in text
    else:
        assert "status: not confirmed" in text
        assert "what more training would settle it: " in text
        assert "resume the search with these limits to settle it" in text


def test_progress_says_a_frontier_search_finished_with_its_front():
    from optuna_shape.reporting.rich_progress import RichReporter

    console = Console(record=True, width=100)
    reporter = RichReporter(console, bars=False)
    reporter.on_done({"shape": None, "status": "frontier", "reason": "stopped: budget of 12 "
                      "trainings spent; 11 shape(s) on the front",
                      "details": {"front": [{}, {}, {}]}})
    assert "search finished: front of 3 shapes — stopped: budget of 12" in console.export_text()


def test_doctests_of_the_tables_and_the_report_command():
    import doctest

    from optuna_shape.cli import report
    from optuna_shape.reporting import front_tables, outcomes, tables

    assert all(doctest.testmod(m).failed == 0 for m in (tables, outcomes, front_tables))
    assert doctest.testmod(report).failed == 0
