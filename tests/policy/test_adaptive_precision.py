"""The adaptive policy over (shape, precision) candidates, on a synthetic landscape."""

from __future__ import annotations

import numpy as np

from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.models.variant_posterior import VariantPosterior
from optuna_shape.policy import Evidence, Problem, Settings, Stop, Train, Training, decide
from optuna_shape.space.shape import Shape, Variant

GRID = tuple(Shape(d, w) for d in (10, 16, 22, 28, 34) for w in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0))
PRECISIONS = ("fp32", "int8")
BYTES = {"fp32": 4.0, "int8": 1.0}
DROP = {"fp32": 0.0, "int8": 0.6}


def surface(s: Shape) -> float:
    return 97.0 - 2.0 / s.width - 30.0 / s.depth


def size(v: Variant) -> float:
    return v.depth * v.width**2 * 0.0025 * BYTES[v.precision]


def problem(goal: str, floor: float | None = None, max_size: float | None = None) -> Problem:
    cands = [Variant(s.depth, s.width, p) for s in GRID for p in PRECISIONS]
    feasible = tuple(v for v in cands if max_size is None or size(v) <= max_size)
    sizes = {v: size(v) for v in feasible}
    return Problem(feasible, sizes, dict(sizes) if goal == "size" else {}, goal, floor)


def simulate(prob: Problem, sett: Settings, noise: float = 0.3, seed: int = 0,
             fail: frozenset[Shape] = frozenset()
             ) -> tuple[Stop, list[Training], list[tuple[Shape, ...]]]:
    """Run the policy; each training of a shape yields one entry per precision."""
    rng = np.random.default_rng(seed)
    trainings: list[Training] = []
    trained: list[tuple[Shape, ...]] = []
    for _ in range(200):
        act = decide(prob, Evidence(tuple(trainings)), sett)
        if isinstance(act, Stop):
            return act, trainings, trained
        assert isinstance(act, Train), act
        bases = tuple(dict.fromkeys(v.shape for v in act.shapes))
        trained.append(bases)
        for s in bases:
            acc = surface(s) + rng.normal(0, noise)
            for p in PRECISIONS:
                value = None if s in fail else acc - DROP[p] - 0.1 * rng.random()
                trainings.append(Training(Variant(s.depth, s.width, p), value))
    raise AssertionError("no stop")


def test_accuracy_search_answers_a_trained_variant() -> None:
    stop, trainings, trained = simulate(problem("accuracy"), Settings())
    assert stop.status == "answered" and isinstance(stop.answer, Variant)
    assert stop.answer in {t.shape for t in trainings}
    assert stop.answer.precision == "fp32"  # int8 only loses accuracy here
    # budget and initial design count trainings (shapes), not candidates
    n_trainings = sum(len(b) for b in trained)
    assert len(trainings) == n_trainings * len(PRECISIONS)
    assert len(trained[0]) == 5
    shapes = stop.details["shapes"]
    assert [22, 1.0, "int8"] in shapes and len(shapes) == 2 * len(GRID)


def test_size_limit_picks_int8_of_a_big_shape_when_only_it_fits() -> None:
    """Under a size limit the most accurate candidate is a big shape that fits only at int8
    (its fp32 network is over the limit; every fp32 candidate that fits is clearly worse)."""
    max_size = 0.25
    prob = problem("accuracy", max_size=max_size)
    best_fp32 = max(surface(v.shape) for v in prob.feasible if v.precision == "fp32")
    best_int8 = max(surface(v.shape) - DROP["int8"] for v in prob.feasible
                    if v.precision == "int8")
    assert best_int8 > best_fp32 + 0.5
    stop, trainings, _ = simulate(prob, Settings(), noise=0.2)
    assert stop.status == "answered", stop.reason
    assert stop.answer is not None and stop.answer.precision == "int8"
    assert size(stop.answer) <= max_size
    assert size(Variant(stop.answer.depth, stop.answer.width, "fp32")) > max_size
    measured = [t.value for t in trainings if t.shape == stop.answer]
    assert np.mean(measured) > best_fp32


def test_failed_training_fails_every_variant() -> None:
    bad = frozenset(GRID)
    stop, trainings, _ = simulate(problem("accuracy"), Settings(max_attempts=1), fail=bad)
    assert stop.status == "all_failed"
    assert all(t.value is None for t in trainings)
    # every training failed once and listed each precision: n_initial trainings, not 2×
    assert len(trainings) == 5 * len(PRECISIONS)


def test_pending_shape_makes_all_its_variants_pending() -> None:
    prob = problem("accuracy")
    first = decide(prob, Evidence(), Settings())
    assert isinstance(first, Train)
    pending = tuple(Variant(v.depth, v.width, p) for v in first.shapes for p in PRECISIONS)
    again = decide(prob, Evidence(pending=pending), Settings())
    assert not isinstance(again, Train) or not ({v.shape for v in again.shapes}
                                                & {v.shape for v in first.shapes})


def test_one_training_is_one_observation_whatever_the_precisions() -> None:
    """No double counting: a base shape's posterior std after one training with several
    precisions equals the std from that one fp32 value alone."""
    shapes = [GRID[0], GRID[14], GRID[29]]
    values = {s: surface(s) for s in shapes}
    cands = [Variant(s.depth, s.width, p) for s in GRID for p in PRECISIONS]
    by_variant = {Variant(s.depth, s.width, p): [v - DROP[p]] for s, v in values.items()
                  for p in PRECISIONS}
    vpost = VariantPosterior.fit(cands, by_variant)
    plain = ShapePosterior(GRID).fit(shapes, [values[s] for s in shapes])
    _, std_v = vpost.predict([Variant(s.depth, s.width, "fp32") for s in shapes])
    _, std_p = plain.predict(shapes)
    np.testing.assert_allclose(std_v, std_p, rtol=1e-6)
    # the int8 candidate of a trained shape: its own measured drop, no extra spread
    mean8, std8 = vpost.predict([Variant(s.depth, s.width, "int8") for s in shapes])
    np.testing.assert_allclose(std8, std_p, rtol=1e-6)
    mean32, _ = vpost.predict([Variant(s.depth, s.width, "fp32") for s in shapes])
    np.testing.assert_allclose(mean32 - mean8, DROP["int8"], atol=1e-9)


def test_untrained_variant_carries_the_spread_of_measured_drops() -> None:
    shapes = [GRID[0], GRID[14], GRID[29]]
    drops = [0.2, 0.6, 1.3]
    by_variant: dict[Variant, list[float]] = {}
    for s, d in zip(shapes, drops, strict=True):
        by_variant[Variant(s.depth, s.width, "fp32")] = [surface(s)]
        by_variant[Variant(s.depth, s.width, "int8")] = [surface(s) - d]
    cands = [Variant(s.depth, s.width, p) for s in GRID for p in PRECISIONS]
    vpost = VariantPosterior.fit(cands, by_variant)
    other = GRID[7]
    m32, s32 = vpost.predict([Variant(other.depth, other.width, "fp32")])
    m8, s8 = vpost.predict([Variant(other.depth, other.width, "int8")])
    assert abs((m32 - m8)[0] - np.mean(drops)) < 1e-9
    assert s8[0] ** 2 - s32[0] ** 2 > np.var(drops, ddof=1)
    draws = vpost.sample([Variant(other.depth, other.width, p) for p in PRECISIONS], 4000,
                         np.random.default_rng(0))
    diff = draws[:, 0] - draws[:, 1]
    assert abs(diff.mean() - np.mean(drops)) < 0.1 and diff.std() > 0.3


def test_a_training_stopped_early_lowers_every_precision_of_its_shape():
    """A stopped training (censored at its projection) enters the shape posterior once, through
    the reference precision, and so lowers each of the shape's candidates."""
    domain = [Variant(s.depth, s.width, p) for s in GRID for p in PRECISIONS]
    rng = np.random.default_rng(1)
    values: dict[Variant, list[float]] = {}
    for s in GRID[::4]:
        acc = surface(s) + rng.normal(0, 0.3)
        for p in PRECISIONS:
            values[Variant(s.depth, s.width, p)] = [acc - DROP[p]]
    stopped = GRID[7]
    assert Variant(stopped.depth, stopped.width, "fp32") not in values
    plain = VariantPosterior.fit(domain, values)
    before, _ = plain.predict([Variant(stopped.depth, stopped.width, p) for p in PRECISIONS])
    projected = float(before[0]) - 5.0
    censored = {Variant(stopped.depth, stopped.width, p): [(projected, 0.5)] for p in PRECISIONS}
    post = VariantPosterior.fit(domain, values, censored)
    after, _ = post.predict([Variant(stopped.depth, stopped.width, p) for p in PRECISIONS])
    assert np.all(after < before - 1.0)
