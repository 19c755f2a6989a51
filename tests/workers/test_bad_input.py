"""SPEC §6 bad input: a clear error or a recorded failed/pruned trial, never a lost study."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState
from osh_worker import accuracy, make_sampler

import optuna_shape as osh
from optuna_shape import store as ostore
from optuna_shape.policy.paper import planned_shapes
from optuna_shape.policy.verification import PlanTrial, next_step

optuna.logging.set_verbosity(optuna.logging.WARNING)


def space(**kw):
    args = dict(family="wrn", depth=(10, 34, 6), width=(0.5, 2.0, 0.5), in_channels=1,
                num_classes=10, image_size=8)
    args.update(kw)
    return osh.ShapeSpace(**args)


def optimize(sp, cons=None, goal="accuracy", acc=accuracy, url=None, name="s", catch=(), **kw):
    kw.setdefault("mode", "paper")
    sampler = osh.ShapeSampler(sp, cons, goal=goal, seed=0, **kw)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=url,
                                study_name=name, load_if_exists=True)
    study.optimize(lambda t: acc(osh.suggest_shape(t, sp)), catch=catch)
    return study


def assert_intact(url, name="s"):
    """The study loads in a fresh process state, with its configuration and no RUNNING trial."""
    study = optuna.load_study(study_name=name, storage=url)
    assert ostore.read_config(ostore.study_attrs(study)) is not None
    assert not study.get_trials(states=(TrialState.RUNNING,))
    return study


@pytest.mark.parametrize("kw,needle", [
    (dict(depth=(40, 10, 6)), "depth"),
    (dict(depth=(10, 40, 0)), "step"),
    (dict(width=(0.0, 1.0, 0.25)), "width"),
    (dict(width=[-1, 2]), "-1"),
    (dict(depth=[11, 16]), "11"),
    (dict(depth="a:b:c"), "depth"),
])
def test_invalid_ranges_name_the_bad_value(kw, needle):
    with pytest.raises(ValueError, match=needle):
        space(**kw)


def test_nothing_feasible_is_a_clear_message_recorded_in_the_study(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    with caplog.at_level("WARNING", logger="optuna_shape"):
        study = optimize(space(), osh.Constraints(max_size_mb=1e-6), url=url)
    assert "no shape of the design space meets the limits" in caplog.text
    assert osh.best_shape(study) is None
    summary = osh.search_summary(assert_intact(url))
    assert summary.finished and "no shape" in summary.reason and summary.n_feasible == 0
    assert "no shape" in study.user_attrs["result"]
    assert all(t.state == TrialState.PRUNED for t in study.trials)


def test_nan_training_is_failed_retried_given_up_and_kept_out_of_the_fit(tmp_path):
    url = f"sqlite:///{tmp_path / 'nan.db'}"
    sp = space()
    bad = sp.shapes[0]
    study = optimize(sp, acc=lambda s: float("nan") if s == bad else accuracy(s), url=url,
                     max_attempts=2)
    bad_trials = [t for t in study.trials if t.params.get("depth") == bad.depth
                  and t.params.get("width") == bad.width]
    assert len(bad_trials) == 2 and all(t.state == TrialState.FAIL for t in bad_trials)
    fit = ostore.read_fit(ostore.study_attrs(study))
    assert bad not in fit.trained
    assert osh.best_shape(assert_intact(url)) is not None


def test_objective_that_raises_keeps_the_study_and_catch_continues(tmp_path):
    url = f"sqlite:///{tmp_path / 'raise.db'}"
    sp = space()
    probe = osh.ShapeSampler(sp, seed=0, mode="paper")
    problem = probe.problem(optuna.create_study(direction="maximize", sampler=probe))
    bad = planned_shapes(problem, probe.settings)[1]

    def acc(s):
        if s == bad:
            raise RuntimeError("CUDA error: device-side assert")
        return accuracy(s)

    with pytest.raises(RuntimeError, match="device-side"):
        optimize(sp, acc=acc, url=url)
    study = assert_intact(url)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and not osh.is_finished(study)
    assert (failed[0].params["depth"], failed[0].params["width"]) == (bad.depth, bad.width)
    done = len(study.get_trials(states=(TrialState.COMPLETE,)))
    study = optimize(sp, acc=acc, url=url, catch=(RuntimeError,))  # resume, failures caught
    assert osh.is_finished(study) and osh.best_shape(study) is not None
    fails = [t for t in study.trials if t.state == TrialState.FAIL]
    # bad shape: retried in the same slot, tried max_attempts times, then given up
    assert len(fails) == 2 and len({t.system_attrs["osh:slot"] for t in fails}) == 1
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) > done


class _Exploding(torch.nn.Module):
    def __init__(self, inner, exc):
        super().__init__()
        self.inner, self.exc = inner, exc

    def forward(self, x):
        raise self.exc


@pytest.mark.parametrize("exc", [MemoryError(), torch.cuda.OutOfMemoryError(
    "CUDA out of memory. Tried to allocate 20.00 GiB")])
def test_shape_too_large_during_screening_is_recorded_infeasible(exc, tmp_path):
    from optuna_shape.families import get_family, register_family

    wrn = get_family("wrn")
    name = f"oom_{type(exc).__name__}"

    def build(depth, width, in_channels, num_classes):
        model = wrn.build(depth, width, in_channels, num_classes)
        return _Exploding(model, exc) if width >= 2 else model

    register_family(name, build, param_count=wrn.param_count, check_depth=wrn.check_depth,
                    overwrite=True)
    sp = space(family=name, depth=[10, 16], width=[0.5, 1.0, 2.0])
    url = f"sqlite:///{tmp_path / 'oom.db'}"
    ms = osh.MeasurementSettings(batch_size=1, repeats=2, warmup=0, threads=1)
    study = optimize(sp, osh.Constraints(max_latency_ms=1e4), url=url, measurement=ms)
    records = ostore.read_measurements(ostore.study_attrs(study))
    errors = [v["error"] for v in records.values() if v.get("error")]
    assert len(errors) == 2 and all(type(exc).__name__ in e for e in errors)
    best = osh.best_shape(assert_intact(url))
    assert best is not None and best.width < 2
    trained = {t.params["width"] for t in study.trials if t.state == TrialState.COMPLETE}
    assert 2.0 not in trained


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_energy_limit_without_gpu_is_a_clear_error_and_the_study_survives(tmp_path):
    from optuna_shape.measurement import EnergyUnavailableError

    url = f"sqlite:///{tmp_path / 'e.db'}"
    with pytest.raises(EnergyUnavailableError, match="NVML") as err:
        optimize(space(depth=[10], width=[0.5, 1.0]), osh.Constraints(max_energy_j=1.0), url=url)
    assert "\n" not in str(err.value).strip()
    assert_intact(url)


def test_direction_contradicting_the_goal_is_refused_and_the_study_survives(tmp_path):
    url = f"sqlite:///{tmp_path / 'dir.db'}"
    sp = space()
    study = optuna.create_study(direction="minimize", storage=url, study_name="s",
                                sampler=osh.ShapeSampler(sp, goal="size", mode="paper"))
    with pytest.raises(ValueError, match="direction='maximize'"):
        study.optimize(lambda t: accuracy(osh.suggest_shape(t, sp)))
    loaded = optuna.load_study(study_name="s", storage=url)
    assert [t.state for t in loaded.trials] == [TrialState.FAIL]


def test_worker_with_another_design_space_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    optimize(space(), osh.Constraints(max_size_mb=1.0), url=url)
    with pytest.raises(ValueError, match=r"different shape search \(space: study has"):
        optimize(space(width=(0.5, 3.0, 0.5)), osh.Constraints(max_size_mb=1.0), url=url)
    assert osh.best_shape(assert_intact(url)) is not None


def test_worker_process_with_other_constraints_or_bad_url_is_refused(workers, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first = workers.start("--storage", url, "--sleep", "0", name="first")
    workers.wait_all(timeout=90, procs=[first])
    assert first.returncode == 0
    other = workers.start("--storage", url, "--max-size-mb", "5.0", name="other")
    bad = workers.start("--storage", f"postgresql://u:pw@127.0.0.1:1/{tmp_path.name}",
                        name="bad")
    workers.wait_all(timeout=90, procs=[other, bad])
    out = workers.output(other)
    assert other.returncode == 2 and "error: study 'w' was created with a different shape " \
        "search (constraints: study has" in out
    out = workers.output(bad)
    assert bad.returncode == 2 and "error: cannot open storage 'postgresql://u:***@" in out
    assert "Traceback" not in out and ":pw@" not in out


# ------------------------------------------------------------------ property-based ---------
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n_workers=st.integers(1, 5), fail_p=st.floats(0, 0.4))
def test_interleaved_workers_never_train_a_shape_twice(data, n_workers, fail_p):
    """Random interleavings of workers deciding with next_step (claims are atomic here):
    no two workers ever train one shape at once, no shape completes twice, every planned
    shape is resolved and the search always ends."""
    sampler = make_sampler(mode="paper")
    plan = planned_shapes(sampler.problem(optuna.create_study(direction="maximize",
                                                              sampler=sampler)),
                          sampler.settings)
    ranking = sorted(plan, key=lambda s: -accuracy(s))
    records: dict[int, PlanTrial] = {}
    running: dict[int, int] = {}  # worker -> trial number
    number = 0
    for _ in range(400):
        w = data.draw(st.integers(0, n_workers - 1))
        if w in running:  # finish its training
            n = running.pop(w)
            r = records[n]
            failed = data.draw(st.floats(0, 1)) < fail_p
            records[n] = PlanTrial(n, "fail" if failed else "complete", r.shape,
                                     None if failed else accuracy(r.shape), r.stage)
            continue
        fitted = all(records.get(0) is not None for _ in [0]) and None
        step = next_step(plan, records.values(), fitted, goal="size", min_accuracy=97.5)
        if step.kind == "fit":
            step = next_step(plan, records.values(), ranking, goal="size", min_accuracy=97.5)
        if step.kind == "done":
            break
        if step.kind == "wait":
            assert running, "a worker waits while nobody trains: it would wait forever"
            continue
        active = {records[n].shape for n in running.values()}
        assert step.shape not in active
        done = {r.shape for r in records.values() if r.state == "complete"}
        assert step.shape not in done
        records[number] = PlanTrial(number, "running", step.shape, None, step.stage)
        running[w] = number
        number += 1
    else:
        return  # very long draws: nothing more to check
    resolved = {r.shape for r in records.values() if r.state == "complete"}
    fails = {}
    for r in records.values():
        if r.state == "fail":
            fails[r.shape] = fails.get(r.shape, 0) + 1
    assert all(s in resolved or fails.get(s, 0) >= 2 for s in plan)
    assert not math.isnan(sum(r.value or 0 for r in records.values()))
