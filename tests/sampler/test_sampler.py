"""ShapeSampler end to end through study.optimize, with fast objectives (no training)."""

from __future__ import annotations

import dataclasses
import math
import random

import optuna
import pytest
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.trial import TrialState

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.sampler import checks

optuna.logging.set_verbosity(optuna.logging.WARNING)


def small_space(**kw):
    args = dict(family="wrn", depth=(10, 58, 6), width=(0.25, 3.0, 0.25), in_channels=1,
                num_classes=10, image_size=8)
    args.update(kw)
    return osh.ShapeSpace(**args)


def landscape(shape: osh.Shape) -> float:
    """A smooth accuracy surface of the inverse-polynomial kind (percent)."""
    d, w = shape
    return 99.2 - 1.1 / w - 14.0 / d + 0.05 / (w * w) - 0.3 / (d * w) + 0.02 / w**3


def noisy(noise: float, seed: int = 0):
    rng = random.Random(seed)
    cache: dict[osh.Shape, float] = {}

    def f(shape: osh.Shape) -> float:
        if shape not in cache:
            cache[shape] = landscape(shape) + rng.gauss(0, noise)
        return cache[shape]

    return f


def run(space, constraints=None, goal="accuracy", acc=landscape, storage=None, study_name=None,
        **kw):
    kw.setdefault("policy", osh.Paper())
    sampler = osh.ShapeSampler(space, constraints, goal=goal, seed=0, **kw)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage,
                                study_name=study_name, load_if_exists=True)
    calls: list[osh.Shape] = []

    def objective(trial):
        shape = osh.suggest_shape(trial, space)
        calls.append(shape)
        return acc(shape)

    study.optimize(objective)  # no n_trials: must end by itself
    return study, calls


def test_spec_snippet_ends_by_itself_and_answers():
    space = small_space()
    study, calls = run(space, osh.Constraints(max_size_mb=0.5))
    best = osh.best_shape(study)
    assert best is not None and space.size_mb(best) <= 0.5
    feasible = [s for s in space.shapes if space.size_mb(s) <= 0.5]
    assert len(calls) == len(set(calls)), "a shape was trained twice"
    assert len(calls) <= len(feasible) / 2
    true_best = max(landscape(s) for s in feasible)
    assert landscape(best) >= true_best - 0.1
    stages = [t.user_attrs.get("stage") for t in study.trials]
    assert set(stages) <= {"sample", "verify"} and stages[0] == "sample"  # no planner trial


@pytest.mark.parametrize("goal,limit", [("size", 97.5), ("accuracy", None)])
def test_noisy_table_lands_within_noise_with_a_third_of_the_trainings(goal, limit):
    space = small_space(depth=(10, 46, 6), width=(0.5, 3.0, 0.5))  # 7 x 6 = 42 shapes
    noise = 0.1
    table = noisy(noise, seed=3)
    cons = osh.Constraints(min_accuracy=limit)
    study, calls = run(space, cons, goal=goal, acc=table)
    best = osh.best_shape(study)
    assert best is not None
    assert len(calls) <= math.ceil(len(space) / 3) + 2
    if goal == "accuracy":
        assert landscape(best) >= max(landscape(s) for s in space.shapes) - 2 * noise
    else:
        assert table(best) >= limit
        ok = [s for s in space.shapes if landscape(s) >= limit + 2 * noise]
        assert space.size_mb(best) <= min(space.size_mb(s) for s in ok)


def test_infeasible_enqueued_shape_is_pruned_before_training():
    space = small_space()
    sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=0.2), seed=0,
                               policy=osh.Paper())
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({"depth": 58, "width": 3.0})
    trained = []

    def objective(trial):
        s = osh.suggest_shape(trial, space)
        trained.append(s)
        return landscape(s)

    study.optimize(objective, n_trials=1)
    t = study.trials[0]
    assert t.state == TrialState.PRUNED and trained == []
    assert "size" in t.user_attrs["reject_reason"] and t.user_attrs["constraint_size"] > 0
    assert t.system_attrs["constraints:size"] > 0


def test_direction_must_be_maximize():
    space = small_space()
    study = optuna.create_study(direction="minimize", sampler=osh.ShapeSampler(space))
    with pytest.raises(ValueError, match="direction='maximize'"):
        study.optimize(lambda t: landscape(osh.suggest_shape(t, space)))
    assert study.trials[0].state == TrialState.FAIL


def test_worker_with_other_settings_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = small_space()
    run(space, osh.Constraints(max_size_mb=0.3), storage=url, study_name="s")
    with pytest.raises(ValueError, match="constraints: study has"):
        run(space, osh.Constraints(max_size_mb=0.4), storage=url, study_name="s")


def test_nan_and_failing_trainings_are_recorded_retried_and_kept_out_of_the_fit():
    space = small_space(depth=(10, 34, 6), width=(0.5, 2.0, 0.5))
    bad = space.shapes[0]
    attempts = []

    def acc(shape):
        if shape == bad:
            attempts.append(shape)
            return float("nan")
        return landscape(shape)

    study, _ = run(space, acc=acc, max_attempts=2)
    assert len(attempts) == 2
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 2
    fit = st.read_fit(st.study_attrs(study))
    assert bad in fit.shapes  # still predicted
    completed = {(t.params["depth"], t.params["width"]) for t in study.trials
                 if t.state == TrialState.COMPLETE and t.user_attrs["stage"] == "sample"}
    assert fit.n_train == len(completed) and (bad.depth, bad.width) not in completed
    assert osh.best_shape(study) is not None


def test_other_parameters_go_to_the_independent_sampler():
    space = small_space(depth=(10, 22, 6), width=[0.5, 1.0, 2.0])
    sampler = osh.ShapeSampler(space, seed=0, policy=osh.Paper())
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        shape = osh.suggest_shape(trial)
        return landscape(shape) - abs(math.log10(lr) + 2)

    study.optimize(objective)
    assert all(1e-3 <= t.params["lr"] <= 1e-1 for t in study.trials if "lr" in t.params)
    assert osh.best_shape(study) is not None


def test_resume_from_sqlite_trains_nothing_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    space = small_space(depth=(10, 34, 6), width=(0.5, 2.0, 0.5))
    sampler = osh.ShapeSampler(space, goal="accuracy", seed=0, policy=osh.Paper())
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=url,
                                study_name="r")
    first = []

    def objective(trial):
        s = osh.suggest_shape(trial, space)
        first.append(s)
        return landscape(s)

    study.optimize(objective, n_trials=4)  # interrupted after 4 trainings
    assert not osh.is_finished(study)
    study2, second = run(space, storage=url, study_name="r")
    assert not set(first) & set(second)
    assert osh.is_finished(study2)
    # a third start finds the study finished and trains nothing
    _, third = run(space, storage=url, study_name="r")
    assert third == []


def test_no_goal_returns_the_complying_set():
    space = small_space(depth=(10, 34, 6), width=(0.5, 2.0, 0.5))
    study, calls = run(space, osh.Constraints(min_accuracy=96.0), goal=None)
    assert osh.best_shape(study) is None
    rows = osh.result_table(study)
    assert rows and all(r.complying for r in rows)
    assert all((r.real if r.real is not None else r.predicted) >= 96.0 for r in rows)
    assert len(calls) == osh.search_summary(study).n_planned


def test_nothing_feasible_is_recorded():
    space = small_space()
    study, calls = run(space, osh.Constraints(max_size_mb=1e-6))
    assert calls == [] and osh.best_shape(study) is None
    assert "no shape" in osh.search_summary(study).reason


def test_latency_screening_on_cpu_measures_each_shape_once():
    space = small_space(depth=[10, 16], width=[0.25, 0.5, 4.0])
    limit_ms = 1e3
    study, calls = run(space, osh.Constraints(max_latency_ms=limit_ms), goal="latency",
                       measurement=osh.MeasurementSettings(batch_size=2, repeats=3, warmup=1,
                                                           threads=1))
    measured = st.read_measurements(st.study_attrs(study))
    assert len(measured) == len(space)
    for t in study.trials:
        if t.state == TrialState.COMPLETE:
            assert t.user_attrs["latency_ms"] > 0
            exact = t.system_attrs["constraints:latency"]  # what samplers read
            assert exact == pytest.approx(t.user_attrs["latency_ms"] - limit_ms, rel=1e-2)
            # the dashboard's copy is rounded to 4 significant digits
            assert t.user_attrs["constraint_latency"] == pytest.approx(exact, rel=1e-3)
    rows = osh.result_table(study)
    assert rows[0].latency_ms == min(r.latency_ms for r in rows)


def test_energy_limit_without_gpu_is_a_clear_error_and_keeps_the_study():
    from optuna_shape.measurement import EnergyUnavailableError

    space = small_space(depth=[10], width=[0.5, 1.0])
    with pytest.raises(EnergyUnavailableError, match="NVML"):
        run(space, osh.Constraints(max_energy_j=1.0))


def test_hardware_mismatch_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    space = small_space(depth=[10], width=[0.5, 1.0])
    ms = osh.MeasurementSettings(batch_size=1, repeats=2, warmup=0, threads=1)
    run(space, osh.Constraints(max_latency_ms=1e3), storage=url, study_name="h", measurement=ms)
    with pytest.raises(ValueError, match="other hardware"):
        run(space, osh.Constraints(max_latency_ms=1e3), storage=url, study_name="h",
            measurement=dataclasses.replace(ms, target_hardware="cuda|Imaginary GPU|batch=1"))


def test_results_are_readable_from_a_fresh_load(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    space = small_space(depth=(10, 34, 6), width=(0.5, 2.0, 0.5))
    study, _ = run(space, osh.Constraints(min_accuracy=96.5), goal="size", storage=url,
                   study_name="x")
    loaded = optuna.load_study(study_name="x", storage=url)
    assert osh.best_shape(loaded) == osh.best_shape(study)
    rows = osh.result_table(loaded, include_all=True)
    assert sum(r.chosen for r in rows) == 1
    assert any(r.trained for r in rows) and any(not r.trained for r in rows)


def test_bad_sampler_arguments_are_named():
    space = small_space()
    with pytest.raises(ValueError, match="goal=.*fastest"):
        osh.ShapeSampler(space, goal="fastest")
    with pytest.raises(ValueError, match="strategy=.*lazy"):
        osh.ShapeSampler(space, policy=osh.Paper(strategy="lazy"))
    with pytest.raises(ValueError, match="sampling=.*zigzag"):
        osh.ShapeSampler(space, policy=osh.Paper(sampling="zigzag"))
    with pytest.raises(ValueError, match="max_size_mb=-1"):
        osh.Constraints(max_size_mb=-1)
    with pytest.raises(TypeError, match="ShapeSpace"):
        osh.ShapeSampler("wrn")  # type: ignore[arg-type]


def test_suggest_shape_with_a_general_sampler():
    space = small_space(depth=[10, 16], width=[0.5, 1.0])
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(lambda t: landscape(osh.suggest_shape(t, space)), n_trials=5)
    assert all(t.user_attrs["size_mb"] > 0 for t in study.trials)


class TestOptunaSamplerSuite(BasicSamplerTestCase):
    """Optuna's reusable sampler suite: objectives that never ask for a shape."""

    @pytest.fixture
    def sampler(self):
        return lambda: osh.ShapeSampler(small_space(depth=[10, 16], width=[0.5, 1.0]), seed=0)


@pytest.mark.parametrize("refit", [True, False])
def test_a_missed_verification_refits_the_model_unless_disabled(refit):
    space = small_space(depth=(10, 46, 6), width=(0.5, 3.0, 0.5))
    floor = max(landscape(s) for s in space.shapes) - 0.3  # tight floor: misses are likely
    misses = 0
    for seed in range(6):
        table = noisy(0.25, seed=seed)
        study, calls = run(space, osh.Constraints(min_accuracy=floor), goal="size", acc=table,
                           policy=osh.Paper(refit=refit))
        fit = st.read_fit(st.study_attrs(study))
        verify = [t for t in study.trials if t.user_attrs.get("stage") == "verify"]
        missed = [t for t in verify if t.value is not None and t.value < floor]
        misses += len(missed)
        assert fit.fits == (1 + len(missed) if refit else 1)
        assert len(calls) == len(set(calls))
    assert misses > 0  # the scenario exercises verification failures


def test_policy_settings_are_validated_with_the_bad_value_named():
    space = small_space()
    for kw, needle in [(dict(confidence=1.5), "confidence=1.5"),
                       (dict(confidence=0), "confidence=0"),
                       (dict(max_trainings=0), "max_trainings=0"),
                       (dict(n_initial=1), "n_initial=1")]:
        with pytest.raises(ValueError, match=needle):
            osh.ShapeSampler(space, policy=osh.Adaptive(**kw))
    with pytest.raises(ValueError, match="max_attempts=0"):
        osh.ShapeSampler(space, max_attempts=0)


def test_a_worker_with_other_policy_settings_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    space = small_space(depth=(10, 34, 6), width=(0.5, 2.0, 0.5))
    run(space, storage=url, study_name="p", policy=osh.Adaptive(max_trainings=6))
    with pytest.raises(ValueError, match="confidence: study has 0.9, this worker has 0.8"):
        run(space, storage=url, study_name="p",
            policy=osh.Adaptive(max_trainings=6, confidence=0.8))
    with pytest.raises(ValueError, match="mode: study has 'adaptive', this worker has 'paper'"):
        run(space, storage=url, study_name="p", policy=osh.Paper())


@pytest.mark.parametrize("goal,floor", [("accuracy", None), ("size", 97.5)])
def test_adaptive_default_end_to_end_one_answer_everywhere(goal, floor):
    space = small_space(depth=(10, 46, 6), width=(0.5, 3.0, 0.5))  # 42 shapes
    assert osh.ShapeSampler(space).mode == "adaptive"
    assert osh.ShapeSampler(space).policy == osh.Adaptive()
    study, calls = run(space, osh.Constraints(min_accuracy=floor), goal=goal,
                       acc=noisy(0.1, seed=1), policy=osh.Adaptive())
    best = osh.best_shape(study)
    summary = osh.search_summary(study)
    assert best is not None and summary.status == "answered" and summary.confidence is not None
    assert best in calls  # always a trained shape
    assert osh.result_table(study)[0].shape == best and osh.result_table(study)[0].rank == 1
    assert len(calls) <= math.ceil(len(space) / 3) + 2
    stages = {t.user_attrs.get("stage") for t in study.trials}
    assert stages <= {"initial", "acquire", "repeat", "plan", "stopped"}
    if floor is not None:
        assert landscape(best) >= floor - 0.2
    else:
        assert landscape(best) >= max(landscape(s) for s in space.shapes) - 0.3


@pytest.mark.parametrize("goal,floor", [("accuracy", None), ("size", 97.5)])
def test_one_worker_trains_what_the_policy_decides_on_every_result(goal, floor):
    """A single worker trains exactly the sequence of a search that asks the pure policy after
    every result: nothing is planned while a queued training waits (the planned repeat goes to
    the best of the whole initial design, not to the first shape trained)."""
    from optuna_shape.policy import Evidence, Stop, Train, Training, decide

    space = small_space(depth=(10, 46, 6), width=(0.5, 3.0, 0.5))

    def acc(shape: osh.Shape, k: int) -> float:  # the k-th training of a shape: its own seed
        return landscape(shape) + random.Random(f"{shape.key}#{k}").gauss(0, 0.4)

    sampler = osh.ShapeSampler(space, osh.Constraints(min_accuracy=floor), goal=goal, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: acc(osh.suggest_shape(t, space), osh.training_index(t)))
    trained = [osh.Shape(t.params["depth"], t.params["width"])
               for t in study.get_trials(states=(TrialState.COMPLETE,))]

    problem = sampler.problem(study)
    assert problem is not None
    done: list[Training] = []
    while not isinstance(action := decide(problem, Evidence(tuple(done)), sampler.settings),
                         Stop):
        assert isinstance(action, Train)
        for shape in action.shapes:
            done.append(Training(shape, acc(shape, 1 + sum(t.shape == shape for t in done))))
    assert trained == [t.shape for t in done]
    assert osh.best_shape(study) == action.answer
    # the summary counts the model's trained shapes as shapes, not as trainings (repeats)
    from optuna_shape.reporting.tables import summary_lines

    assert len(set(trained)) < len(trained)
    line = next(x for x in summary_lines(osh.search_summary(study), wrap=False)
                if x.startswith("accuracy model:"))
    assert line.endswith(f"on {len(set(trained))} trained shapes")


class _AlwaysPrune(optuna.pruners.BasePruner):
    """A pruner that stops every trial at its first report (as MedianPruner may)."""

    def prune(self, study, trial):
        return True


def test_a_training_stopped_by_another_pruner_is_a_named_failure_warned_once(caplog):
    space = small_space(depth=[10, 16], width=[0.5, 1.0, 2.0])
    sampler = osh.ShapeSampler(space, osh.Constraints(min_accuracy=90.0), goal="size",
                               policy=osh.Adaptive(n_initial=3, max_trainings=5))
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=_AlwaysPrune())

    def objective(trial):
        s = osh.suggest_shape(trial, space)
        trial.report(landscape(s) - 5.0, 1)
        if s.width <= 1.0 and trial.should_prune():
            raise optuna.TrialPruned()
        return landscape(s)

    with caplog.at_level("WARNING", logger="optuna_shape"):
        study.optimize(objective, n_trials=40)
    stopped = [t for t in study.trials if t.state == TrialState.PRUNED
               and st.decode_trial(t).trained]
    assert len(stopped) >= 2
    for t in stopped:
        assert "stopped by the study's pruner _AlwaysPrune" in t.user_attrs["fail_reason"]
        assert "osh.ShapePruner()" in t.user_attrs["fail_reason"]
    warned = [r for r in caplog.records if "_AlwaysPrune" in r.getMessage()]
    assert len(warned) == 1


# ------------------------------------------------------------------ compute budget ----------
def test_budget_is_stored_checked_and_bounds_the_charged_seconds():
    space = small_space()

    def objective(trial):
        shape = osh.suggest_shape(trial, space)
        trial.set_user_attr("train_seconds", 10.0 * shape.width * shape.depth / 10)
        return landscape(shape)

    sampler = osh.ShapeSampler(space, goal="accuracy", seed=0, policy=osh.Adaptive(budget="2m"))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=60)
    summary = osh.search_summary(study)
    assert summary.finished and summary.compute["budget_s"] == 120.0
    assert summary.compute["spent_s"] <= 120.0 * 1.2
    assert summary.compute["spent_s"] == pytest.approx(sum(
        t.user_attrs["train_seconds"] for t in study.trials if "train_seconds" in t.user_attrs))
    assert st.read_config(st.study_attrs(study))["budget_seconds"] == 120.0
    # the printed summary and the dashboard note say what was spent and what the budget means
    from optuna_shape.reporting.dashboard import note_markdown
    from optuna_shape.reporting.tables import summary_lines

    line = next(x for x in summary_lines(summary, wrap=False) if x.startswith("compute: "))
    assert " of 2 min budget; training every feasible shape to the end ≈ " in line
    assert "GPU-hours (a budget of 8 h is 8 GPU-hours)" in note_markdown(study)
    # a worker with another budget is refused
    other = osh.ShapeSampler(space, goal="accuracy", seed=0, policy=osh.Adaptive(budget="3m"))
    with pytest.raises(ValueError, match="budget_seconds"):
        checks.check_study(other._context(), study)


@pytest.mark.parametrize("budget", ["10 parsecs", 0])
def test_bad_budget_is_refused_before_anything_is_stored(budget):
    with pytest.raises(ValueError, match="budget must be a positive number of seconds"):
        osh.ShapeSampler(small_space(), policy=osh.Adaptive(budget=budget))
    with pytest.raises(TypeError, match="budget"):  # the paper's plan is fixed: no budget
        osh.Paper(budget="1h")  # type: ignore[call-arg]


def test_the_family_s_accuracy_trend_reaches_the_policy_and_the_stored_problem():
    from optuna_shape.families.mlp_size import mlp_param_count
    from optuna_shape.families.registry import get_family
    from optuna_shape.sampler.requery import stored_problem

    mlp = get_family("mlp")
    osh.register_family("test-smooth-mlp", mlp.build, param_count=mlp_param_count,
                        input_kind="features", accuracy_trend="smooth", overwrite=True)
    for family, kw, trend in (
            ("test-smooth-mlp", {"in_channels": 8, "num_classes": 2, "image_size": None},
             "smooth"),
            ("mlp", {"in_channels": 8, "num_classes": 2, "image_size": None}, "paper"),
            ("wrn", {"in_channels": 1, "num_classes": 10, "image_size": 8}, "paper")):
        depth = [10, 16] if family == "wrn" else [1, 2, 3]
        space = osh.ShapeSpace(family, depth=depth, width=[0.5, 1.0], **kw)
        sampler = osh.ShapeSampler(space, osh.Constraints(), seed=0,
                                   policy=osh.Adaptive(max_trainings=3))
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(lambda t, sp=space: 90.0 + osh.suggest_shape(t, sp).depth, n_trials=3)
        assert sampler.problem(study).trend == trend
        if trend == "smooth":
            smooth_study = study
        assert stored_problem(study, osh.Constraints(), "accuracy")[0].trend == trend
        words = "a quadratic in log depth and width" if trend == "smooth" else "Eq. 2 features"
        assert osh.search_summary(study).surrogate["method"] == f"posterior (GP on {words})"
        assert st.read_config(st.study_attrs(study)).get("accuracy_trend") == (
            None if trend == "paper" else trend)  # the default absent: older studies load
    # a worker whose family of that name decides on another trend is refused
    osh.register_family("test-smooth-mlp", mlp.build, param_count=mlp_param_count,
                        input_kind="features", overwrite=True)
    space = osh.ShapeSpace("test-smooth-mlp", depth=[1, 2, 3], width=[0.5, 1.0],
                           in_channels=8, num_classes=2, image_size=None)
    other = osh.ShapeSampler(space, osh.Constraints(), seed=0,
                             policy=osh.Adaptive(max_trainings=3))
    with pytest.raises(ValueError, match="accuracy_trend: study has 'smooth', this worker has "
                                         "None"):
        checks.check_study(other._context(), smooth_study)
