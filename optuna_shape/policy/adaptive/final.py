"""How the search stops with what it learned: the stop's details, and the final stop — an
answer, an unconfirmed answer, or the floor not reached — with words that say why, how sure, and
what the next training would have bought."""

from __future__ import annotations

from dataclasses import replace

from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.policy import Stop
from optuna_shape.policy.adaptive.answers import (
    UNCONFIRMED_MIN_P,
    Evaluation,
    p_eligible_after,
    unconfirmed_answer,
)
from optuna_shape.policy.adaptive.goals import evaluate
from optuna_shape.policy.adaptive.min_cost import budget_answer
from optuna_shape.policy.adaptive.search import MAX_REPEATS, MIN_COST_GOALS, Search
from optuna_shape.policy.stop import (
    ComputeUse,
    FailedShape,
    Measured,
    SearchStatus,
    StopDetails,
    StoppedEarly,
    Unconfirmed,
)
from optuna_shape.space.shape import Shape

__all__ = ["details", "final", "unconfirmed"]


def details(search: Search, post: ShapePosterior | None, code: str, gain: float | None
            ) -> StopDetails:
    """The stop's details: posterior mean/std (and P(f ≥ floor) with a floor) per feasible
    shape in ``problem.feasible`` order, measured mean and count per trained shape, the
    noise estimate, the reason code, the next training's expected gain, the budget."""
    posterior: dict = {}
    if post is not None:
        mean, std = post.predict(search.feasible)
        posterior = {
            "posterior_mean": tuple(float(v) for v in mean),
            "posterior_std": tuple(float(v) for v in std),
            "p_floor": None if search.floor is None
            else tuple(float(v) for v in search.p_floor(mean, std)),
            "noise": post.noise_.as_dict(),
            "noise_std": tuple(float(v) for v in post.noise_std(search.feasible)),
        }
    led = search.led
    return StopDetails(
        reason_code=code, max_trainings=search.budget.max_trainings, trainings=search.n_done,
        expected_gain=gain, shapes=tuple(search.feasible),
        compute=ComputeUse(**search.budget.details()),
        measured=tuple(Measured(s, led.mean(s), led.count(s)) for s in led.values),
        failed=tuple(FailedShape(s, c) for s, c in led.failures.items()),
        stopped_early=tuple(StoppedEarly(s, tuple(m for m, _ in ps))
                            for s, ps in led.partial.items()) or None,
        **posterior)


def unconfirmed(search: Search, answer: Shape, post: ShapePosterior, words: str,
                noise_words: str, stop_details: StopDetails, lead: str | None = None) -> Stop:
    """The ``"unconfirmed"`` stop: an answer the evidence supports but does not confirm, with
    its P(f ≥ floor) and what more compute would buy (:class:`Unconfirmed`); ``lead`` opens
    the words on the answer (default: that no shape is confirmed and this one is the
    best-supported)."""
    assert search.floor is not None
    mean, std = post.predict([answer])
    p = float(search.p_floor(mean, std)[0])
    p_next = float(p_eligible_after(search, post, mean, std, [answer])[0])
    more = max(1, MAX_REPEATS - search.led.count(answer))
    p_more = (float(p_eligible_after(search, post, mean, std, [answer], k=more)[0])
              if more > 1 else None)
    seconds = search.budget.cost_or_zero(answer)
    info = Unconfirmed(p_floor=p, p_confirm_next=p_next,
                       training_s=round(seconds, 3) if seconds > 0 else None,
                       more=more if more > 1 else None, p_confirm_more=p_more)
    stop_details = replace(stop_details, answer_probability=p, unconfirmed=info)
    m = search.led.mean(answer)
    if lead is None:
        lead = f"no shape is confirmed at P ≥ {search.conf:g}; best-supported answer"
    what = (f"{lead} {answer} "
            f"measured {m:.4g} over {search.led.count(answer)} training(s), "
            f"P(accuracy ≥ {search.floor:g}) = {p:.2f} (not confirmed)")
    more_words = info.more_words(str(answer))
    return Stop(answer, f"stopped: {words}; {what}; {noise_words}; {more_words}",
                SearchStatus.UNCONFIRMED, p, stop_details)


def final(search: Search, code: str, post: ShapePosterior | None = None,
          evaluation: Evaluation | None = None) -> Stop:
    """The stop with the best answer the evidence justifies; ``code``: why it stops —
    ``"confident"``, ``"budget"`` or ``"exhausted"`` (nothing useful left to train).
    ``post`` and ``evaluation``: the decision's posterior and its evaluation, when made.
    Without confidence, a min-cost answer not confirmed as the cheapest may give way to a
    cheaper trained shape the stopping rule favours
    (:func:`~optuna_shape.policy.adaptive.min_cost.budget_answer`), answered unconfirmed."""
    if post is None:
        post = search.fit()
    answer, prob, gain, _, _ = evaluation if evaluation is not None else evaluate(search, post)
    stop_details = details(search, post, code, gain)
    conf = search.conf
    unit = "points" if post.unit_scale_ == 1.0 else "(fraction)"
    noise = post.noise_
    spent = search.budget.spent_words()
    words = {"confident": f"confident (P = {prob:.2f} ≥ {conf:g})",
             "budget": f"{spent} (P = {prob:.2f} "
                       f"{'≥' if prob >= conf else '<'} {conf:g})",
             "exhausted": f"no useful training left (P = {prob:.2f})"}[code]
    next_gain = (f"next training's expected improvement {gain:.3g} {unit}"
                 if search.goal == "accuracy" else
                 f"next training's expected saving {gain:.3g} (log cost)")
    noise_words = f"seed noise std ≈ {noise.sigma0:.3g} {unit} (median-size shape)"
    if answer is None:
        fallback = unconfirmed_answer(search, post) if code != "confident" else None
        stop_details = replace(stop_details, confidence_rule=conf)
        if fallback is not None:
            plain = spent if code == "budget" else "no useful training left"
            return unconfirmed(search, fallback, post, plain, noise_words, stop_details)
        status = SearchStatus.FLOOR_NOT_REACHED
        what = (f"no trained shape reaches accuracy ≥ {search.floor:g} with P ≥ "
                f"{conf:g} and a measured mean at or above it, nor plausibly meets "
                f"it (P ≥ {UNCONFIRMED_MIN_P:g}, or a measured mean at or above it)")
        return Stop(None, f"stopped: {words}; {what}; {noise_words}; {next_gain}",
                    status, None, stop_details)
    if code != "confident" and prob < conf and search.goal in MIN_COST_GOALS:
        cheaper, p_cheaper = budget_answer(search, post, answer, prob)
        if cheaper != answer:
            plain = spent if code == "budget" else "no useful training left"
            why = (f"{plain}; {answer} meets the floor but P(nothing cheaper does) = "
                   f"{prob:.2f}, while cheaper {cheaper} is the more likely right answer "
                   f"(P(meets the floor and nothing cheaper does) = {p_cheaper:.2f})")
            return unconfirmed(search, cheaper, post, why, noise_words,
                               replace(stop_details, confidence_rule=conf), lead="answer")
    m = search.led.mean(answer)
    what = (f"answer {answer} measured {m:.4g} over {search.led.count(answer)} training(s)")
    if search.goal == "accuracy":
        sure = f"P(within noise of the best feasible shape) = {prob:.2f}"
    else:
        sure = f"P(meets the floor and nothing cheaper does) = {prob:.2f}"
    stop_details = replace(stop_details, answer_probability=prob)
    return Stop(answer, f"stopped: {words}; {what}; {sure}; {noise_words}; {next_gain}",
                SearchStatus.ANSWERED, prob, stop_details)
