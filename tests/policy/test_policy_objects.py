"""Policy objects instead of mode flags: ``osh.Adaptive`` / ``osh.Paper`` validate their own
fields, ``ShapeSampler`` takes at most ten parameters, keyword-only after the first three, the
old keywords still work with one ``FutureWarning`` per call, an option the chosen policy would
not use is an error, and the stored configuration is the same whichever way it was spelled."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import warnings

import optuna
import pytest

import optuna_shape as osh

optuna.logging.set_verbosity(optuna.logging.WARNING)


def space(**kw) -> osh.ShapeSpace:
    args = dict(family="wrn", depth=(10, 28, 6), width=[0.5, 1.0, 2.0], in_channels=1,
                num_classes=10, image_size=8)
    args.update(kw)
    return osh.ShapeSpace(**args)


def stand_in(shape: osh.Shape) -> float:
    """Accuracy in percent of a shape, without training."""
    return 99.2 - 1.1 / shape.width - 14.0 / shape.depth


def build(*args, **kw) -> tuple[osh.ShapeSampler, list[warnings.WarningMessage]]:
    """A sampler and the warnings its construction raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler = osh.ShapeSampler(*args, **kw)
    return sampler, list(caught)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------ the objects themselves ----
@pytest.mark.parametrize("kw, message", [
    (dict(confidence=1.5),
     "confidence must be a probability strictly between 0 and 1, got confidence=1.5"),
    (dict(confidence=0),
     "confidence must be a probability strictly between 0 and 1, got confidence=0"),
    (dict(confidence=True),
     "confidence must be a probability strictly between 0 and 1, got confidence=True"),
    (dict(max_trainings=0), "max_trainings must be an integer >= 1 or None, got max_trainings=0"),
    (dict(max_trainings=2.5),
     "max_trainings must be an integer >= 1 or None, got max_trainings=2.5"),
    (dict(n_initial=1), "n_initial must be an integer >= 2, got n_initial=1"),
    (dict(budget="10 parsecs"), "budget must be a positive number of seconds, or a number with "
     "a unit: s, m, h (GPU-hours with one GPU per worker), d — e.g. 3600, 45m, 8h, 1h30m; "
     "got budget='10 parsecs'"),
    (dict(budget=0), "budget must be a positive number of seconds"),
    (dict(strategy="lazy"), "strategy must be one of thorough, standard, optimistic or a "
     "positive int, got strategy='lazy'"),
])
def test_adaptive_validates_each_field_in_one_line(kw, message):
    with pytest.raises(ValueError) as exc:
        osh.Adaptive(**kw)
    assert one_line(exc).startswith(message)


@pytest.mark.parametrize("kw, message", [
    (dict(strategy="lazy"), "strategy must be one of thorough, standard, optimistic or a "
     "positive int, got strategy='lazy'"),
    (dict(strategy=0), "strategy must be one of thorough, standard, optimistic or a positive "
     "int, got strategy=0"),
    (dict(strategy=True), "got strategy=True"),
    (dict(sampling="zigzag"), "sampling must be one of interval, random, wider, "
     "got sampling='zigzag'"),
    (dict(refit="yes"), "refit must be True or False, got refit='yes'"),
])
def test_paper_validates_each_field_in_one_line(kw, message):
    with pytest.raises(ValueError) as exc:
        osh.Paper(**kw)
    assert message in one_line(exc)


def test_the_constructor_gives_the_objects_messages():
    """The validation lives in the policy objects; the old keywords reach the same words."""
    for kw in (dict(confidence=1.5), dict(max_trainings=0), dict(n_initial=1),
               dict(budget="10 parsecs")):
        with pytest.raises(ValueError) as new:
            osh.Adaptive(**kw)
        with pytest.raises(ValueError) as old:  # refused before any warning
            osh.ShapeSampler(space(), **kw)
        assert str(old.value) == str(new.value)
    with pytest.raises(ValueError) as exc:
        osh.ShapeSampler(space(), max_attempts=0)
    assert one_line(exc) == "max_attempts must be an integer >= 1, got max_attempts=0"


def test_fields_are_keyword_only_frozen_and_budget_is_in_seconds():
    assert osh.Adaptive(budget="8h").budget == 28800.0
    assert osh.Adaptive(budget="45m") == osh.Adaptive(budget=2700)
    assert osh.Adaptive().budget is None and osh.Adaptive().strategy is None
    with pytest.raises(TypeError):
        osh.Adaptive(0.8)  # type: ignore[misc]
    with pytest.raises(TypeError):
        osh.Paper("thorough")  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        osh.Paper().refit = False  # type: ignore[misc]
    for cls in (osh.Adaptive, osh.Paper):
        assert cls.__doc__
        for f in dataclasses.fields(cls):
            assert f"{f.name}:" in cls.__doc__, (cls.__name__, f.name)
    assert {"Adaptive", "Paper"} <= set(osh.__all__)


def test_the_objects_make_the_settings_the_policy_functions_read():
    s = osh.Adaptive(confidence=0.8, n_initial=3, max_trainings=9, budget="1h").to_settings(
        seed=None, max_attempts=3)
    assert (s.mode, s.confidence, s.n_initial, s.max_trainings, s.budget, s.seed,
            s.max_attempts, s.strategy, s.sampling) == (
        "adaptive", 0.8, 3, 9, 3600.0, 0, 3, "standard", "interval")
    p = osh.Paper(strategy=6, sampling="random", refit=False).to_settings(seed=4, max_attempts=1)
    assert (p.mode, p.strategy, p.sampling, p.refit, p.seed, p.max_attempts) == (
        "paper", 6, "random", False, 4, 1)


# ------------------------------------------------------------------ the signature ----
def test_the_sampler_takes_at_most_ten_parameters_keyword_only_after_goal():
    params = inspect.signature(osh.ShapeSampler).parameters
    assert len(params) <= 10, list(params)
    kinds = {name: p.kind for name, p in params.items()}
    assert list(params)[:3] == ["space", "constraints", "goal"]
    assert all(kinds[n] == inspect.Parameter.POSITIONAL_OR_KEYWORD
               for n in ("space", "constraints", "goal"))
    assert all(k in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
               for n, k in kinds.items() if n not in ("space", "constraints", "goal"))
    assert params["policy"].default is None and osh.ShapeSampler(space()).policy == osh.Adaptive()
    with pytest.raises(TypeError):
        osh.ShapeSampler(space(), None, "accuracy", osh.Paper())  # type: ignore[misc]


def test_an_unknown_keyword_is_a_type_error_like_pythons_own():
    with pytest.raises(TypeError) as exc:
        osh.ShapeSampler(space(), confidance=0.8)
    assert str(exc.value) == ("ShapeSampler.__init__() got an unexpected keyword argument "
                              "'confidance'")
    with pytest.raises(TypeError, match="policy must be osh.Adaptive"):
        osh.ShapeSampler(space(), policy="paper")  # type: ignore[arg-type]


# ------------------------------------------------------------------ deprecated keywords ----
@pytest.mark.parametrize("kw, goal, new", [
    (dict(mode="paper"), "accuracy", "policy=osh.Paper()"),
    (dict(mode="adaptive"), "accuracy", "policy=osh.Adaptive()"),
    (dict(mode="paper", strategy="thorough"), "accuracy",
     "policy=osh.Paper(strategy='thorough')"),
    (dict(mode="paper", sampling="random"), "accuracy", "policy=osh.Paper(sampling='random')"),
    (dict(mode="paper", refit=False), "accuracy", "policy=osh.Paper(refit=False)"),
    (dict(strategy="thorough"), None, "policy=osh.Adaptive(strategy='thorough')"),
    (dict(confidence=0.8), "accuracy", "policy=osh.Adaptive(confidence=0.8)"),
    (dict(max_trainings=7), "accuracy", "policy=osh.Adaptive(max_trainings=7)"),
    (dict(n_initial=3), "accuracy", "policy=osh.Adaptive(n_initial=3)"),
    (dict(budget="8h"), "accuracy", "policy=osh.Adaptive(budget='8h')"),
    (dict(device="cpu"), "accuracy", "measurement=osh.MeasurementSettings(device='cpu')"),
    (dict(latency_batch_size=4), "accuracy",
     "measurement=osh.MeasurementSettings(batch_size=4)"),
    (dict(threads=1), "accuracy", "measurement=osh.MeasurementSettings(threads=1)"),
    (dict(target_hardware="hw"), "accuracy",
     "measurement=osh.MeasurementSettings(target_hardware='hw')"),
    (dict(screening="measure"), "accuracy",
     "measurement=osh.MeasurementSettings(screening='measure')"),
    (dict(poll_interval=0.05), "accuracy", "sampler.poll_interval = 0.05 after construction"),
])
def test_each_old_keyword_warns_once_with_the_new_spelling(kw, goal, new):
    sampler, caught = build(space(), goal=goal, **kw)
    assert [w.category for w in caught] == [FutureWarning]
    text = str(caught[0].message)
    assert text.startswith("ShapeSampler(") and " is deprecated: use " in text
    assert new in text, text
    assert caught[0].filename == __file__  # points at the caller
    old = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    assert text.startswith(f"ShapeSampler({old})")
    if "poll_interval" in kw:
        assert sampler.poll_interval == 0.05


def test_many_old_keywords_in_one_call_warn_once():
    sampler, caught = build(space(), osh.Constraints(max_latency_ms=5.0), goal="latency",
                            mode="paper", strategy=6, sampling="wider", device="cpu",
                            latency_batch_size=2, threads=1, target_hardware="hw",
                            screening="measure", poll_interval=0.5)
    assert len(caught) == 1 and caught[0].category is FutureWarning
    text = str(caught[0].message)
    assert ("use policy=osh.Paper(strategy=6, sampling='wider'); "
            "measurement=osh.MeasurementSettings(device='cpu', batch_size=2, threads=1, "
            "target_hardware='hw', screening='measure'); sampler.poll_interval = 0.5") in text
    assert sampler.policy == osh.Paper(strategy=6, sampling="wider")
    assert sampler.measurement == osh.MeasurementSettings(
        batch_size=2, threads=1, target_hardware="hw", screening="measure")
    # the attributes other modules read still say the same
    assert (sampler.mode, sampler.strategy, sampler.sampling, sampler.refit,
            sampler.max_attempts, sampler.screening, sampler.target_hardware,
            sampler.poll_interval) == ("paper", 6, "wider", True, 2, "measure", "hw", 0.5)


def test_the_new_spelling_warns_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        osh.ShapeSampler(space(), osh.Constraints(max_latency_ms=5.0), "latency",
                         policy=osh.Adaptive(confidence=0.8, budget="1h"), seed=1,
                         measurement=osh.MeasurementSettings(batch_size=2, screening="measure"),
                         max_attempts=3)
        osh.ShapeSampler(space(), goal=None, policy=osh.Adaptive(strategy="thorough"))
        osh.ShapeSampler(space(), policy=osh.Paper(strategy=6, refit=False))


def test_deprecated_options_with_their_default_value_change_nothing_and_are_accepted():
    """Old code that spelled out a default keeps working: the value is what the policy does."""
    sampler, caught = build(space(), strategy="standard", sampling="interval", refit=True)
    assert sampler.policy == osh.Adaptive() and len(caught) == 1
    sampler, caught = build(space(), mode="paper", confidence=0.9, n_initial=5,
                            max_trainings=None, budget=None)
    assert sampler.policy == osh.Paper() and len(caught) == 1


# ------------------------------------------------------------------ options a policy ignores ----
@pytest.mark.parametrize("kw, words", [
    (dict(strategy="thorough"), "strategy needs mode='paper' or goal=None (the adaptive search "
     "uses it only to size the complying set of goal=None), got mode='adaptive' with "
     "strategy='thorough' and goal='accuracy'"),
    (dict(strategy=4, mode="adaptive"), "strategy needs mode='paper' or goal=None"),
    (dict(sampling="random"), "sampling needs mode='paper' (the adaptive search always takes an "
     "interval sample), got mode='adaptive' with sampling='random'"),
    (dict(refit=False), "refit needs mode='paper' (the adaptive search refits its posterior "
     "after every training), got mode='adaptive' with refit=False"),
])
def test_a_paper_only_keyword_with_the_adaptive_policy_is_an_error(kw, words):
    with pytest.raises(ValueError) as exc:
        osh.ShapeSampler(space(), **kw)
    assert one_line(exc).startswith(words)


def test_sampling_with_the_adaptive_complying_set_is_an_error_too():
    with pytest.raises(ValueError, match="sampling needs mode='paper'"):
        osh.ShapeSampler(space(), goal=None, sampling="random")


def test_adaptive_strategy_with_a_goal_is_an_error():
    with pytest.raises(ValueError) as exc:
        osh.ShapeSampler(space(), goal="size", policy=osh.Adaptive(strategy="thorough"))
    assert one_line(exc) == (
        "Adaptive(strategy=...) sizes the complying set of goal=None; the adaptive search for "
        "goal='size' does not use it: drop it, or use policy=osh.Paper(strategy='thorough')")


@pytest.mark.parametrize("kw", [dict(confidence=0.8), dict(max_trainings=7),
                                dict(n_initial=3), dict(budget="1h")])
def test_an_adaptive_only_keyword_with_the_paper_policy_is_an_error(kw):
    (name, value), = kw.items()
    with pytest.raises(ValueError) as exc:
        osh.ShapeSampler(space(), mode="paper", **kw)
    assert one_line(exc) == (
        f"{name} needs mode='adaptive' (the paper's Algorithm 1 trains a fixed plan; osh.Paper "
        f"has no {name}), got mode='paper' with {name}={value!r}")
    with pytest.raises(TypeError, match=name):
        osh.Paper(**kw)


@pytest.mark.parametrize("kw", [dict(sampling="random"), dict(refit=False)])
def test_the_adaptive_object_has_no_paper_fields(kw):
    with pytest.raises(TypeError, match=next(iter(kw))):
        osh.Adaptive(**kw)


def test_mixing_an_object_with_the_keywords_it_replaces_is_an_error():
    with pytest.raises(ValueError) as exc:
        osh.ShapeSampler(space(), policy=osh.Paper(), mode="paper")
    assert one_line(exc).startswith("policy= replaces mode: give one or the other")
    with pytest.raises(ValueError, match="policy= replaces confidence"):
        osh.ShapeSampler(space(), policy=osh.Adaptive(), confidence=0.8)
    with pytest.raises(ValueError, match="measurement= replaces device, threads"):
        osh.ShapeSampler(space(), measurement=osh.MeasurementSettings(), device="cpu",
                         threads=2)


def test_old_measurement_keywords_the_old_api_combined_with_measurement_still_combine():
    ms = osh.MeasurementSettings(threads=1, repeats=2)
    sampler, caught = build(space(), measurement=ms, target_hardware="hw", screening="measure")
    assert len(caught) == 1
    assert sampler.measurement == dataclasses.replace(ms, target_hardware="hw",
                                                      screening="measure")


def test_measurement_settings_validate_screening_and_target_hardware():
    with pytest.raises(ValueError, match="auto, measure, predict, got screening='guess'"):
        osh.MeasurementSettings(screening="guess")
    with pytest.raises(ValueError, match="target_hardware must be a hardware key"):
        osh.MeasurementSettings(target_hardware=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval must be > 0"):
        osh.ShapeSampler(space()).poll_interval = 0


def test_precision_search_needs_the_adaptive_policy_in_either_spelling():
    sp = space(precision=("fp32", "int8"))
    with pytest.raises(ValueError, match=r"precision search needs policy=osh.Adaptive\(\), got "
                                         r"policy=osh.Paper\(\) with precisions fp32, int8"):
        osh.ShapeSampler(sp, policy=osh.Paper())
    with pytest.raises(ValueError, match="precision search needs mode='adaptive', got "
                                         "mode='paper'"), pytest.warns(FutureWarning):
        osh.ShapeSampler(sp, mode="paper")


# ------------------------------------------------------------------ stored configuration ----
_CASES = [
    # (goal, old keywords, new arguments, the policy part of the stored configuration)
    ("accuracy", dict(mode="paper", strategy=6, sampling="random", refit=False),
     dict(policy=osh.Paper(strategy=6, sampling="random", refit=False)),
     {"mode": "paper", "max_attempts": 2, "strategy": 6, "sampling": "random", "refit": False,
      "seed": 3}),
    ("size", dict(mode="paper"), dict(policy=osh.Paper()),
     {"mode": "paper", "max_attempts": 2, "strategy": "standard", "sampling": "interval",
      "refit": True}),
    ("accuracy", dict(confidence=0.8, n_initial=3, max_trainings=7),
     dict(policy=osh.Adaptive(confidence=0.8, n_initial=3, max_trainings=7)),
     {"mode": "adaptive", "max_attempts": 2, "confidence": 0.8, "max_trainings": 7,
      "n_initial": 3, "seed": 3}),
    ("accuracy", dict(), dict(),
     {"mode": "adaptive", "max_attempts": 2, "confidence": 0.9, "max_trainings": None,
      "n_initial": 5, "seed": 3}),
    ("accuracy", dict(budget="8h"), dict(policy=osh.Adaptive(budget="8h")),
     {"mode": "adaptive", "max_attempts": 2, "confidence": 0.9, "max_trainings": None,
      "n_initial": 5, "seed": 3, "budget_seconds": 28800.0}),
    (None, dict(strategy="thorough"), dict(policy=osh.Adaptive(strategy="thorough")),
     {"mode": "adaptive", "max_attempts": 2, "confidence": 0.9, "max_trainings": None,
      "n_initial": 5, "seed": 3, "strategy": "thorough", "sampling": "interval"}),
    (None, dict(), dict(policy=osh.Adaptive()),
     {"mode": "adaptive", "max_attempts": 2, "confidence": 0.9, "max_trainings": None,
      "n_initial": 5, "seed": 3, "strategy": "standard", "sampling": "interval"}),
    (None, dict(mode="paper", strategy="optimistic"), dict(policy=osh.Paper(strategy="optimistic")),
     {"mode": "paper", "max_attempts": 2, "strategy": "optimistic", "sampling": "interval",
      "refit": True}),
]


@pytest.mark.parametrize("goal, old, new, stored", _CASES)
def test_old_and_new_spellings_store_the_same_configuration(goal, old, new, stored):
    """The configuration a study stores (and every later worker must match) is the one these
    settings stored before policy objects, so studies made then still load and resume."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        before = osh.ShapeSampler(space(), goal=goal, seed=3, **old)
    after = osh.ShapeSampler(space(), goal=goal, seed=3, **new)
    assert after.config() == before.config()
    assert after.settings == before.settings
    cfg = after.config()
    assert {k: v for k, v in cfg.items() if k not in ("space", "constraints", "goal")} == stored
    assert cfg["goal"] == goal


def test_measurement_keywords_store_the_same_configuration():
    cons = osh.Constraints(max_latency_ms=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        before = osh.ShapeSampler(space(), cons, "latency", latency_batch_size=4,
                                  target_hardware="hw")
    after = osh.ShapeSampler(space(), cons, "latency", measurement=osh.MeasurementSettings(
        batch_size=4, target_hardware="hw"))
    assert after.config() == before.config() and after.config()["latency_batch_size"] == 4
    assert after.hardware() == before.hardware() == "hw"


def test_a_study_made_with_the_old_keywords_resumes_with_the_new_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    sp = space()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        old = osh.ShapeSampler(sp, osh.Constraints(max_size_mb=0.5), seed=0, mode="paper",
                               strategy=4)
    study = optuna.create_study(direction="maximize", sampler=old, storage=url, study_name="s")
    study.optimize(lambda t: stand_in(osh.suggest_shape(t, sp)), n_trials=2)
    new = osh.ShapeSampler(sp, osh.Constraints(max_size_mb=0.5), seed=0,
                           policy=osh.Paper(strategy=4))
    resumed = optuna.load_study(study_name="s", storage=url, sampler=new)
    resumed.optimize(lambda t: stand_in(osh.suggest_shape(t, sp)))
    assert osh.is_finished(resumed) and osh.best_shape(resumed) is not None


# ------------------------------------------------------------------ end to end ----
@pytest.mark.parametrize("policy, stages", [
    (osh.Paper(strategy=4, sampling="interval", refit=False), {"sample", "verify"}),
    (osh.Adaptive(confidence=0.8, n_initial=3, max_trainings=6), {"initial", "acquire",
                                                                   "repeat"}),
])
def test_a_tiny_search_with_each_policy_object(policy, stages):
    sp = space(depth=(10, 34, 6), width=[0.5, 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        sampler = osh.ShapeSampler(sp, osh.Constraints(max_size_mb=1.0), "accuracy",
                                   policy=policy, seed=0)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        trained: list[osh.Shape] = []

        def objective(trial: optuna.Trial) -> float:
            shape = osh.suggest_shape(trial, sp)
            trained.append(shape)
            return stand_in(shape)

        study.optimize(objective, n_trials=40)
    best = osh.best_shape(study)
    assert osh.is_finished(study) and best is not None and best in trained
    assert sp.size_mb(best) <= 1.0
    assert st_stages(study) <= stages | {"plan", "stopped"} and st_stages(study) & stages
    if isinstance(policy, osh.Adaptive):
        assert len(trained) <= 6  # max_trainings
    else:
        assert len(set(trained[:4])) == 4  # the sample stage: strategy=4 distinct shapes


def st_stages(study: optuna.Study) -> set[str]:
    return {t.user_attrs.get("stage") for t in study.trials}


# ------------------------------------------------------------------ the command line ----
def _args(**kw) -> argparse.Namespace:
    base = dict(mode=None, confidence=None, max_trainings=None, n_initial=None, budget=None,
                strategy=None, sampling=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_the_command_line_builds_policy_objects():
    from optuna_shape.cli._common import UsageError
    from optuna_shape.cli.search import _policy

    assert _policy(_args(), "accuracy") == osh.Adaptive()
    assert _policy(_args(confidence=0.8, budget=60.0), "size") == osh.Adaptive(
        confidence=0.8, budget=60)
    assert _policy(_args(strategy="thorough"), None) == osh.Adaptive(strategy="thorough")
    assert _policy(_args(mode="paper", strategy=5, sampling="wider"), "accuracy") == osh.Paper(
        strategy=5, sampling="wider")
    with pytest.raises(UsageError, match="--n-initial works with the adaptive search only"):
        _policy(_args(mode="paper", n_initial=3), "accuracy")
    assert _policy(_args(mode="paper"), "size") == osh.Paper()
    for paper_only in ({"strategy": 4}, {"sampling": "random"}):
        with pytest.raises(UsageError, match="works with --mode paper only"):
            _policy(_args(**paper_only), "accuracy")
