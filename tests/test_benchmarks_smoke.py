"""Smoke test: the search-quality, overhead and precision benchmarks run end to end in --quick mode.

Never asserts timings; only that the scripts run, write their reports and judge answers by
the documented definitions.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

T = pytest.importorskip("_tables")


def test_judge_follows_the_documented_definitions():
    land = T.tiny_landscape()
    acc, size_goal = T.default_scenarios(land)[2], T.default_scenarios(land)[1]
    best = T.true_optimum(land, acc)
    assert T.judge(land, acc, best).regret == 0 and T.judge(land, acc, best).success
    assert math.isinf(T.judge(land, acc, None).regret)
    worst = min(land.shapes, key=lambda s: land.truth[s])
    out = T.judge(land, acc, worst)
    assert out.regret == pytest.approx(land.truth[best] - land.truth[worst])
    assert out.success == (out.regret <= land.noise)
    opt = T.true_optimum(land, size_goal)
    assert T.judge(land, size_goal, opt).ratio == 1.0 and T.judge(land, size_goal, opt).success
    assert not T.judge(land, size_goal, worst).success  # misses the floor


def test_table_objective_cycles_the_seeds_of_one_repetition():
    land = T.tiny_landscape(n_seeds=3)
    shape = land.shapes[0]
    a, b = T.TableObjective(land, 0), T.TableObjective(land, 0)
    first = [a(shape) for _ in range(4)]
    assert first == [b(shape) for _ in range(4)]  # same repetition, same values
    assert sorted(first[:3]) == sorted(land.seeds[shape].tolist()) and first[3] == first[0]
    assert a.first_value(shape) == first[0]


def test_search_quality_quick(tmp_path):
    import search_quality

    assert search_quality.main(["--quick", "--reps", "1", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "search_quality.md").read_text()
    assert "## Targets" in md and "exhaustive" in md and "TPE" in md and "Command:" in md
    runs = (tmp_path / "search_quality_runs.csv").read_text().splitlines()
    assert runs[0].startswith("landscape,scenario,rep,method,trainings")
    methods = {line.split(",")[3] for line in runs[1:]}
    assert {"shape", "tpe", "random", "exhaustive"} <= methods
    assert (tmp_path / "search_quality_curves.csv").stat().st_size > 0


def test_frontier_quick(tmp_path):
    import csv

    import frontier

    land = T.tiny_landscape(n_seeds=5)
    truth = frontier.truth_of(land)
    assert frontier.normalised_hv(land, truth, sorted(truth.front)) == pytest.approx(1.0)
    assert frontier.normalised_hv(land, truth, []) == 0.0
    assert frontier.main(["--quick", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "frontier.md").read_text()
    assert "Command:" in md and "## How to read" in md and "NSGA-II" in md
    with (tmp_path / "frontier_runs.csv").open() as fh:
        runs = list(csv.DictReader(fh))
    assert {"gp", "tpe", "nsga2", "exhaustive"} <= {r["method"] for r in runs}
    ours = {r["rep"]: int(r["trainings"]) for r in runs if r["method"] == "shape"}
    for r in runs:
        assert 0.0 <= float(r["hv"]) <= 1.0 + 1e-9
        if r["method"] in frontier.PEERS:  # equal trainings (quick budget 10 without ours)
            assert int(r["trainings"]) == ours.get(r["rep"], 10)


def test_search_quality_judge_and_answer_rule():
    import search_quality as sq

    land = T.tiny_landscape(n_seeds=5)
    acc, _size_limit, floor = sq.scenarios(land, (0.75,))[:3]
    best = T.true_optimum(land, acc)
    assert sq.judge(land, acc, best).regret == 0 and sq.judge(land, acc, best).success
    # the answer rule uses observed means: one lucky seed does not beat a better mean
    a, b = land.shapes[0], land.shapes[1]
    assert sq.answer_rule(land, acc, {a: [99.0, 90.0], b: [95.0]}) == b
    opt = T.true_optimum(land, floor)
    j = sq.judge(land, floor, opt)
    assert j.kept and j.strict and j.ratio == 1.0 and j.success
    worst = min(land.shapes, key=lambda s: land.truth[s])
    j = sq.judge(land, floor, worst)
    assert not j.kept and not j.strict and not j.success
    assert sq.judge(land, floor, None).kept is False


def test_mlp_family_counts_its_parameters():
    import torch  # noqa: F401

    space = T.osh.ShapeSpace(T.MLP_FAMILY, depth=[1, 3], width=[0.25, 1.0], in_channels=30,
                             num_classes=2, image_size=1)
    for s in space.shapes:
        model = space.build(s)
        assert space.param_count(s) == sum(p.numel() for p in model.parameters())


def test_overhead_quick(tmp_path):
    import overhead

    assert overhead.main(["--quick", "--out", str(tmp_path)]) == 0
    assert "| 100 | memory |" in (tmp_path / "overhead.md").read_text()


def test_precision_quick(tmp_path):
    import precision

    assert precision.main(["--quick", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "precision_quick.md").read_text()
    assert table.count("| (10, 0.25) |") == 3
    assert "| int8 | 0.0057 |" in table and "| fp32 | 0.0229 |" in table


def test_family_sizes_quick(tmp_path):
    import family_sizes

    assert family_sizes.main(["--quick", "--out", str(tmp_path)]) == 0  # 1: a count mismatch
    text = (tmp_path / "family_sizes.md").read_text()
    for family in ("wrn", "densenet", "mlp"):
        assert f"| {family} |" in text
    assert "**NO**" not in text


def test_predicted_screening_quick(tmp_path):
    import predicted_screening

    assert predicted_screening.main(["--quick", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "predicted_screening.md").read_text()
    assert "= **24 shapes**" in md and "Ratio:" in md
    starts = ("| 5 ", "| 10", "| 25", "| 50", "| 75", "| 90", "| 95")
    rows = [line.split("|") for line in md.splitlines() if line.startswith(starts)]
    assert len(rows) == 7  # one per limit (5th ... 95th percentile)
    assert all(r[7].strip() == "**0**" for r in rows)  # nothing over a limit accepted


def test_compute_quick(tmp_path):
    import csv

    import compute

    assert compute.main(["--quick", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "compute.md").read_text()
    assert "Command:" in md and "## How to read" in md and "GP + SuccessiveHalving" in md
    assert "Resuming a stopped training from a checkpoint" in md
    assert "\n## Tuning landscape\n" in md  # one landscape: the heading says one
    with (tmp_path / "compute_runs.csv").open() as fh:
        runs = list(csv.DictReader(fh))
    assert {r["method"] for r in runs} == set(compute.METHODS)
    longest = max(compute.quick_land().epoch_s.values()) * compute.quick_land().epochs
    for r in runs:  # equal compute: a peer stops starting trainings once it has spent C
        c, budget = float(r["compute"]), float(r["budget_C"])
        if r["method"] == "ours":
            assert c == budget and r["status"]
        elif r["method"] in compute.PEERS:
            assert budget - 1e-6 <= c < budget + longest
    assert (tmp_path / "compute_anytime.csv").read_text().count("\n") > 1
    # ours given a compute budget (a share of the exhaustive compute, and half of ours-full's)
    assert "## A compute budget" in md and "## Half the compute" in md
    with (tmp_path / "compute_budget_runs.csv").open() as fh:
        budgeted = list(csv.DictReader(fh))
    assert {r["basis"] for r in budgeted} == {"exhaustive", "half ours-full"}
    for r in budgeted:  # a training starts only when it fits what is left
        assert float(r["compute"]) <= float(r["budget"]) * 1.1 and r["status"]


def test_floor_reach_quick(tmp_path):
    import floor_reach

    out = tmp_path / "floor_reach.md"
    assert floor_reach.main(["--quick", "--out", str(out)]) == 0
    md = out.read_text()
    rows = [line.split("|") for line in md.splitlines() if line.startswith("| quick")]
    assert [r[2].split()[0] for r in rows] == list(floor_reach.FLOORS)
    out_row = rows[0]  # a floor above every shape: only "floor not reached" is right
    assert "floor_not_reached" in out_row[6] and out_row[7].strip() in ("0%", "50%", "100%")
    land = floor_reach.C.quick_land().land
    assert floor_reach.floor_of(land, "out") > max(land.truth.values())
    assert floor_reach.floor_of(land, "top") == round(max(land.truth.values()), 2)


def test_compute_resumable_counts_stopped_trainings_trained_again():
    import compute

    from optuna_shape.space.shape import Shape

    a, b = Shape(10, 1.0), Shape(16, 2.0)
    log = [compute.Training(a, 3, None, 1.5, 1.5), compute.Training(b, 2, None, 4.0, 5.5),
           compute.Training(a, 10, 97.0, 5.0, 10.5), compute.Training(a, 4, None, 2.0, 12.5)]
    # a's first, stopped training is resumable (a is trained again); b's and a's last are not
    assert compute.resumable(log) == 1.5


def test_compute_perfect_stops_cut_first_trainings_of_other_shapes():
    import compute

    from optuna_shape.space.shape import Shape

    a, b, c = Shape(10, 1.0), Shape(16, 2.0), Shape(22, 0.5)
    # 10-epoch trainings: early stopping may stop one after epoch 2
    log = [compute.Training(b, 10, 95.0, 10.0, 10.0), compute.Training(a, 10, 97.0, 5.0, 15.0),
           compute.Training(b, 10, 96.0, 10.0, 25.0), compute.Training(c, 4, None, 2.0, 27.0),
           compute.Training(a, 10, 97.5, 5.0, 32.0)]
    # b's first training at 2 of 10 epochs (2.0), its repeat in full (10.0), c's stopped one
    # at 2 of its 4 epochs (1.0), every training of the answer a in full (5.0 + 5.0)
    assert compute.perfect_stops(log, a, 10) == 2.0 + 10.0 + 1.0 + 10.0
    # no answer: every first training stopped
    assert compute.perfect_stops(log, None, 10) == 2.0 + 1.0 + 10.0 + 1.0 + 5.0


def test_many_workers_idle_time_by_phase():
    """Two workers: the second starts 1 s after the first (start), both train back to back
    with a 0.5 s gap for one (middle), and the last training starts 2 s before the answer
    while the other worker idles (end)."""
    mw = pytest.importorskip("many_workers")

    def worker(*trainings):
        evs = []
        for n, (a, b) in trainings:
            evs += [{"ev": "start", "n": n, "t": a},
                    {"ev": "trial", "n": n, "kind": "train", "start": a, "end": b}]
        return evs

    events = [worker((0, (0.0, 3.0)), (2, (3.5, 6.0))), worker((1, (1.0, 5.0)), (3, (5.0, 8.0)))]
    ph = mw.idle_phases(events, 2, 0.0, 7.0)
    assert ph["start"] == pytest.approx((1.0, 1.0))  # worker 2 idle for its first second
    assert ph["middle"] == pytest.approx((0.5, 4.0))  # the 0.5 s gap of worker 1
    assert ph["end"] == pytest.approx((1.0, 2.0))  # worker 1 done at 6, the answer at 7
    killed = [worker((0, (0.0, 7.0))), [{"ev": "start", "n": 1, "t": 0.0}, {"ev": "x", "t": 4.0}]]
    assert mw.idle_phases(killed, 2, 0.0, 7.0)["end"] == pytest.approx((3.0, 7.0))


def test_trial_reads_times_equal_reads(tmp_path):
    import trial_reads

    med, n_read = trial_reads.measure(f"sqlite:///{tmp_path / 'reads.db'}", reps=10)
    assert n_read == 20 and len(med) == 8 and all(v >= 0 for v in med.values())
