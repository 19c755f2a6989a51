"""Every coordination rule, each with a test that fails when the rule is broken."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.policy import Stop, Train
from optuna_shape.sampler import checks, coordination, planning
from optuna_shape.sampler.snapshot import TrialCache, read_snapshot

optuna.logging.set_verbosity(optuna.logging.WARNING)


def space(**kw):
    args = dict(family="wrn", depth=(10, 34, 6), width=(0.5, 2.0, 0.5), in_channels=1,
                num_classes=10, image_size=8)
    args.update(kw)
    return osh.ShapeSpace(**args)


def acc(shape: osh.Shape) -> float:
    return 99.0 - 1.0 / shape.width - 12.0 / shape.depth


def new_study(sp=None, storage=None, **kw):
    sp = sp or space()
    kw.setdefault("mode", "paper")
    sampler = osh.ShapeSampler(sp, seed=0, poll_interval=0.05, **kw)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage,
                                study_name="c", load_if_exists=True)
    return study, sampler


def objective(calls, sp=None):
    def f(trial):
        s = osh.suggest_shape(trial, sp)
        calls.append((trial.number, s))
        return acc(s)
    return f


def queue(study, shape, k=1, stage="sample"):
    return st.create_waiting_trial(study, slot=coordination.slot_of(shape, k), stage=stage,
                                   shape=shape, user_attrs={"size_mb": 0.1})


def stage_of(study, number):
    return study.trials[number].user_attrs.get("stage")


# ------------------------------------------------------------------ creation -----------------
def test_a_training_is_created_in_one_storage_call_with_slot_and_stage():
    study, sampler = new_study()
    storage = study._storage
    calls = Counter()
    for name in ("create_new_trial", "set_trial_user_attr", "set_trial_system_attr",
                 "set_trial_state_values"):
        orig = getattr(storage, name)

        def wrap(*a, _orig=orig, _name=name, **k):
            calls[_name] += 1
            return _orig(*a, **k)
        setattr(storage, name, wrap)
    snap = read_snapshot(study, TrialCache())
    problem = sampler.problem(study)
    shapes = problem.feasible[:3]
    planning.enqueue(sampler._context(), study, snap, problem, Train(tuple(shapes), "sample"))
    assert calls == Counter({"create_new_trial": 3})
    for t, s in zip(study.trials, shapes, strict=True):
        assert t.state == TrialState.WAITING
        assert t.system_attrs["fixed_params"] == {"depth": s.depth, "width": s.width}
        assert t.system_attrs["osh:slot"] == f"{s.key}#1"
        assert t.system_attrs["osh:stage"] == "sample" and t.user_attrs["stage"] == "sample"
        # rounded for the dashboard: 4 significant digits, depth and width as sortable columns
        assert t.user_attrs["size_mb"] == pytest.approx(sampler.space.size_mb(s), rel=1e-3)
        assert (t.user_attrs["depth"], t.user_attrs["width"]) == (s.depth, s.width)


def test_repeat_index_counts_complete_and_pending_trainings_not_failures():
    study, sampler = new_study()
    s = sampler.space.shapes[0]
    for state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING):
        tid = queue(study, s, k=9)
        study._storage.set_trial_state_values(tid, TrialState.RUNNING)
        if state != TrialState.RUNNING:
            study._storage.set_trial_state_values(
                tid, state, [90.0] if state == TrialState.COMPLETE else None)
    snap = read_snapshot(study, TrialCache())
    assert snap.repeat_index(s) == 3  # one complete + one running; the failure does not count


def test_planner_queues_only_shapes_not_already_pending():
    study, sampler = new_study()
    problem = sampler.problem(study)
    first = problem.feasible[0]
    queue(study, first)  # already queued
    snap = read_snapshot(study, TrialCache())
    queued = planning.enqueue(sampler._context(), study, snap, problem,
                              Train(problem.feasible[:3], "sample"))
    assert queued == list(problem.feasible[1:3])
    slots = Counter(t.system_attrs["osh:slot"] for t in study.trials)
    assert max(slots.values()) == 1


def test_a_pending_shape_the_policy_trains_alongside_is_queued_in_its_next_slot():
    study, sampler = new_study()
    problem = sampler.problem(study)
    first, other = problem.feasible[:2]
    queue(study, first)  # already queued (slot #1)
    queue(study, other)
    snap = read_snapshot(study, TrialCache())
    queued = planning.enqueue(sampler._context(), study, snap, problem,
                              Train((first, other), "repeat", alongside=frozenset({first})))
    assert queued == [first]  # ``other`` is pending and not asked for alongside: skipped
    slots = sorted(t.system_attrs["osh:slot"] for t in study.trials
                   if t.system_attrs.get("fixed_params") == {"depth": first.depth,
                                                             "width": first.width})
    assert slots == [f"{first.key}#1", f"{first.key}#2"]  # a new slot: both train


def test_a_planner_trains_a_running_shape_the_policy_asks_for_alongside(monkeypatch):
    import optuna_shape.sampler as sampler_module

    study, sampler = new_study()
    x = sampler.problem(study).feasible[0]
    tid = queue(study, x)
    study._storage.set_trial_state_values(tid, TrialState.RUNNING)  # another worker trains it
    monkeypatch.setattr(sampler_module, "decide", lambda *a, **k: Train(
        (x,), "repeat", alongside=frozenset({x})))
    calls = []
    study.optimize(objective(calls, sampler.space), n_trials=1)
    assert calls == [(1, x)]  # the planning trial took it itself, in the next slot
    assert study.trials[1].system_attrs["osh:slot"] == f"{x.key}#2"


# ------------------------------------------------------------------ winner rule --------------
def test_later_copy_of_a_slot_yields_to_the_earlier_one():
    study, _ = new_study()
    s = study.sampler.space.shapes[2]
    queue(study, s)
    queue(study, s)  # a second planner queued the same slot concurrently
    calls = []
    study.optimize(objective(calls), n_trials=2)
    assert calls == [(0, s)]
    assert study.trials[1].state == TrialState.PRUNED and stage_of(study, 1) == "duplicate"


def test_lower_number_yields_when_a_copy_of_its_slot_completed():
    """The earlier copy is still queued but a later one already trained: no second training."""
    study, _ = new_study()
    s = study.sampler.space.shapes[2]
    queue(study, s)
    later = queue(study, s)
    storage = study._storage
    storage.set_trial_state_values(later, TrialState.RUNNING)
    storage.set_trial_param(later, "depth", study.sampler.space.depths.index(s.depth),
                            optuna.distributions.CategoricalDistribution(
                                study.sampler.space.depths))
    storage.set_trial_state_values(later, TrialState.COMPLETE, [acc(s)])
    calls = []
    study.optimize(objective(calls), n_trials=1)
    assert calls == []
    assert stage_of(study, 0) == "duplicate"


def test_a_failed_copy_does_not_hold_its_slot():
    study, _ = new_study()
    s = study.sampler.space.shapes[2]
    first = queue(study, s)
    study._storage.set_trial_state_values(first, TrialState.RUNNING)
    study._storage.set_trial_state_values(first, TrialState.FAIL)  # e.g. failed as stale
    queue(study, s)  # the policy planned the slot again
    calls = []
    study.optimize(objective(calls), n_trials=1)
    assert calls == [(1, s)]


def test_wins_is_the_rule_on_records():
    def rec(n, state, slot="a#1"):
        return st.TrialRecord(n, n, state, osh.Shape(10, 1.0), slot, "sample", None)

    from optuna_shape.sampler.snapshot import Snapshot

    def snap(*recs):
        return Snapshot(tuple(recs), {}, None)

    me = rec(5, TrialState.RUNNING)
    assert coordination.wins(snap(me), me)
    for state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE):
        assert not coordination.wins(snap(rec(3, state), me), me)
    for state in (TrialState.FAIL, TrialState.PRUNED):
        assert coordination.wins(snap(rec(3, state), me), me)
    assert not coordination.wins(snap(me, rec(7, TrialState.COMPLETE)), me)
    assert coordination.wins(snap(me, rec(7, TrialState.RUNNING)), me)
    assert coordination.wins(snap(rec(3, TrialState.RUNNING, "b#1"), me), me)


def test_a_waiting_planner_ends_only_for_a_queued_training_left_for_it():
    """Idle workers take queued trainings oldest planner first: a waiting planner ends (its
    next ``ask`` takes one) only when enough are queued for the planners ahead of it too."""
    from optuna_shape.sampler.snapshot import Snapshot

    def planner(n):
        return st.TrialRecord(n, n, TrialState.RUNNING, None, None, None, None)

    def queued(n):
        return st.TrialRecord(n, n, TrialState.WAITING, osh.Shape(10, 1.0), f"a#{n}", "sample",
                              None)

    planners = [planner(n) for n in (3, 5, 8)]
    snap = Snapshot((*planners, queued(9)), {}, None)
    mine = coordination.a_queued_training_is_mine
    # a finishing training decides: the oldest planner takes the one queued training
    assert [mine(snap, n, planner_decides=False) for n in (3, 5, 8)] == [True, False, False]
    # planner 3 decides (and trains): the next oldest takes it
    assert [mine(snap, n, planner_decides=True) for n in (5, 8)] == [True, False]
    snap = Snapshot((*planners, queued(9), queued(10)), {}, None)
    assert [mine(snap, n, planner_decides=False) for n in (3, 5, 8)] == [True, True, False]
    assert [mine(snap, n, planner_decides=True) for n in (5, 8)] == [True, True]
    assert not mine(Snapshot(tuple(planners), {}, None), 3, planner_decides=False)


# ------------------------------------------------------------------ planner and after_trial --
def test_one_worker_runs_only_trainings_each_trial_counts_against_n_trials():
    """The first trial plans and trains the first shape itself; after_trial queues the next
    action, so trainings follow each other without planners: every trial is a training."""
    study, _ = new_study(strategy=6)
    calls = []
    study.optimize(objective(calls), n_trials=4)
    assert len(study.trials) == 4 + 2  # 4 trainings ran; the other 2 planned wait in the queue
    assert [t.state for t in study.trials[:4]] == [TrialState.COMPLETE] * 4 and len(calls) == 4
    study.optimize(objective(calls))
    stages = Counter(t.user_attrs.get("stage") for t in study.trials)
    assert stages["sample"] == 6 and set(stages) == {"sample", "verify"}  # no plan, stopped
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert osh.is_finished(study) and len(calls) == len(study.trials)


def test_stored_result_is_final_and_a_popped_trial_does_not_train_after_it():
    study, sampler = new_study()
    s = sampler.space.shapes[1]
    queue(study, s)
    snap = read_snapshot(study, TrialCache())
    checks.check_study(sampler._context(), study)
    first = planning.finish(sampler._context(), study, snap, sampler.problem(study),
                            Stop(s, "first answer")) or st.read_result(st.study_attrs(study))
    planning.finish(sampler._context(), study, snap, sampler.problem(study),
                    Stop(None, "second answer"))
    assert st.read_result(st.study_attrs(study)).reason == "first answer" == first.reason
    calls = []
    study.optimize(objective(calls), n_trials=5)  # the stop ends optimize after one trial
    assert calls == [] and len(study.trials) == 1
    assert stage_of(study, 0) == "stopped"


def test_hand_enqueued_shape_trains_as_user_stage():
    study, sampler = new_study()
    s = sampler.space.shapes[3]
    study.enqueue_trial({"depth": s.depth, "width": s.width})
    calls = []
    study.optimize(objective(calls), n_trials=1)
    assert calls == [(0, s)] and stage_of(study, 0) == "user"
    assert read_snapshot(study, TrialCache()).evidence().trainings[0].shape == s


def test_optimize_reads_no_finished_trial_back_unless_a_callback_wants_it(tmp_path):
    """``osh.optimize`` counts trials as their objective begins, not with a callback of its own:
    with any callback, Optuna reads each finished trial back from the storage to hand it over
    — a storage call per trial that a search without callbacks does not need. ``n_trials``
    still counts every trial, and a user's callback still gets each finished trial."""
    study, _ = new_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    read: list[TrialState] = []
    real = study._storage.get_trial

    def get_trial(trial_id):
        t = real(trial_id)
        read.append(t.state)
        return t

    study._storage.get_trial = get_trial

    def asked():  # trials taken from the queue or created by ask (not those still queued)
        return len([t for t in study.trials if t.state != TrialState.WAITING])

    osh.optimize(study, objective([]), n_trials=3)
    assert asked() == 3
    assert read and not [s for s in read if s.is_finished()], read
    handed: list[TrialState] = []
    osh.optimize(study, objective([]), n_trials=2,
                 callbacks=[lambda _study, t: handed.append(t.state)])
    assert asked() == 5
    assert handed == [TrialState.COMPLETE] * 2


# ------------------------------------------------------------------ stale trials -------------
def test_worker_whose_trial_was_failed_as_stale_carries_on(tmp_path):
    """Another worker fails this worker's trial while it trains (it was paused longer than the
    heartbeat grace period): Optuna refuses to record it; optuna_shape.optimize goes on and the
    slot is trained again under a new trial."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study, _ = new_study(storage=url, strategy=4)
    calls = []
    failed: list[int] = []
    fail_next = [True]

    def obj(trial):
        s = osh.suggest_shape(trial)
        calls.append((trial.number, s))
        if fail_next[0] and len(calls) > 1:  # the second training of this call
            fail_next[0] = False
            failed.append(trial.number)
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return acc(s)

    # plain Optuna: the worker crashes (``Cannot tell a FAIL trial``, or on a cached RDB
    # storage UpdateFinishedTrialError followed by Optuna's own "Should not reach" assertion)
    with pytest.raises((ValueError, AssertionError)):
        study.optimize(obj)
    fail_next[0] = True
    osh.optimize(study, obj)  # the same happens again: this time the worker carries on
    assert len(failed) == 2
    assert osh.is_finished(study)
    for number in failed:
        lost = study.trials[number]
        retried = [t for t in study.trials if t.number != lost.number and t.state ==
                   TrialState.COMPLETE and t.system_attrs.get("osh:slot") ==
                   lost.system_attrs["osh:slot"]]
        assert len(retried) == 1
    done = Counter(t.system_attrs.get("osh:slot") for t in study.trials
                   if t.state == TrialState.COMPLETE)
    assert max(done.values()) == 1


def test_n_trials_counts_a_trial_lost_to_staleness(tmp_path):
    """``n_trials`` of ``osh.optimize`` counts every trial started, the one Optuna refused to
    record (failed as stale while its worker was paused) included."""
    study, _ = new_study(storage=f"sqlite:///{tmp_path / 's.db'}", strategy=4)
    calls: list[int] = []

    def obj(trial):
        s = osh.suggest_shape(trial)
        calls.append(trial.number)
        if len(calls) == 2:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return acc(s)

    osh.optimize(study, obj, n_trials=4)
    states = Counter(t.state for t in study.trials if t.state != TrialState.WAITING)
    assert len(calls) == 4 and states == {TrialState.COMPLETE: 3, TrialState.FAIL: 1}


def test_a_trial_failed_as_stale_leaves_no_traceback_from_the_after_trial_bookkeeping(
        tmp_path, caplog, monkeypatch):
    """With an accuracy floor the after-trial hook writes the trial's accuracy constraint; when
    another worker failed the trial as stale just before (this one was paused between Optuna's
    check and the write), the write is refused. That is the pause the worker reports in one
    line, not an error of the bookkeeping: no traceback (seen once in a real-process test of
    random pauses)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study, _ = new_study(storage=url, mode="adaptive",
                         constraints=osh.Constraints(min_accuracy=90.0), goal="size")
    other = optuna.storages.RDBStorage(url)  # another worker's connection
    failed: list[int] = []
    real = st.set_trial_system_attr

    def paused_then_written(study_, trial_id, key, value):
        if key == "constraints:accuracy" and not failed:  # the pause, and the stale check
            failed.append(trial_id)
            other.set_trial_state_values(trial_id, TrialState.FAIL)
        return real(study_, trial_id, key, value)

    monkeypatch.setattr(st, "set_trial_system_attr", paused_then_written)
    with caplog.at_level("ERROR", logger="optuna_shape"):
        osh.optimize(study, lambda trial: acc(osh.suggest_shape(trial)), n_trials=3)
    assert failed
    assert not [r for r in caplog.records if "bookkeeping" in r.getMessage()], caplog.text
    assert any(t.state == TrialState.COMPLETE for t in study.trials)


def test_a_popped_trial_already_failed_does_not_train():
    study, sampler = new_study()
    s = sampler.space.shapes[0]
    tid = queue(study, s)
    trial = study.ask()
    assert trial._trial_id == tid
    study._storage.set_trial_state_values(tid, TrialState.FAIL)  # failed while paused
    with pytest.raises(optuna.TrialPruned, match="FAIL"):
        osh.suggest_shape(trial)


# ------------------------------------------------------------------ screening election -------
def test_exactly_one_worker_screens_while_others_wait(tmp_path, monkeypatch):
    """Two threads start together on a latency-limited search: the screening task is queued
    (twice, by both planners, when they race) and popped by both; the winner rule lets one
    measure. Every shape is measured exactly once."""
    import optuna_shape.sampler.screen as sampler_module

    measured: Counter = Counter()
    lock = threading.Lock()

    def fake_measure(space_, shape, settings, *, latency, energy, builder=None):
        with lock:
            measured[shape] += 1
        time.sleep(0.02)
        return {"latency_ms": 1.0 + shape.depth / 100 + shape.width}

    monkeypatch.setattr(sampler_module, "measure_shape", fake_measure)
    url = f"sqlite:///{tmp_path / 'scr.db'}"
    sp = space(depth=[10, 16, 22], width=[0.5, 1.0])
    study, _ = new_study(sp, storage=url, constraints=osh.Constraints(max_latency_ms=2.5),
                         target_hardware="test-hw")
    h = st.hardware_hash("test-hw")
    coordination.queue_screening(study, h)
    coordination.queue_screening(study, h)  # two planners raced
    calls = []
    barrier = threading.Barrier(2)

    def worker():
        s2, _ = new_study(sp, storage=url, constraints=osh.Constraints(max_latency_ms=2.5),
                          target_hardware="test-hw")
        barrier.wait()
        osh.optimize(s2, objective(calls, sp))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(measured) == set(sp.shapes) and max(measured.values()) == 1, measured
    stages = Counter(t.user_attrs.get("stage") for t in study.trials
                     if (t.system_attrs.get("osh:slot") or "").startswith("screen:"))
    assert stages == Counter({"screen": 1, "duplicate": 1})
    assert osh.is_finished(study)


def test_the_queue_is_capped_and_refilled_once_it_drains():
    sp = space(depth=(10, 58, 6), width=(0.25, 3.0, 0.25))  # 108 shapes
    study, sampler = new_study(sp, strategy=40)
    calls = []
    study.optimize(objective(calls, sp), n_trials=2)  # the planning training, then one more
    waiting = [t for t in study.trials if t.state == TrialState.WAITING]
    assert len(waiting) == coordination.QUEUE_CAP - 1  # nothing planned while some wait
    study.optimize(objective(calls, sp), n_trials=len(waiting))  # the queue drains...
    waiting = [t for t in study.trials if t.state == TrialState.WAITING]
    assert len(waiting) == coordination.QUEUE_CAP  # ...and its last training refills it
    study.optimize(objective(calls, sp))
    stages = Counter(t.user_attrs.get("stage") for t in study.trials)
    assert stages["sample"] == 40 and stages["plan"] == 0


def test_a_training_stopped_by_ctrl_c_is_retried_without_counting_as_a_failure(tmp_path):
    """Ctrl-C during a training: the trial is FAIL (Optuna's rule) but marked interrupted, not
    failed; the resumed search trains the same slot again and ends as if nothing happened."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study, _ = new_study(storage=url, strategy=4, max_attempts=1)
    calls: list = []
    interrupt = [True]

    def obj(trial):
        s = osh.suggest_shape(trial)
        calls.append((trial.number, s))
        if interrupt[0] and len(calls) == 2:
            raise KeyboardInterrupt
        return acc(s)

    with pytest.raises(KeyboardInterrupt):
        osh.optimize(study, obj)
    number = calls[-1][0]
    stopped = study.trials[number]
    assert stopped.state == TrialState.FAIL
    assert stopped.user_attrs[st.INTERRUPTED] is True
    assert "fail_reason" not in stopped.user_attrs
    assert st.decode_trial(stopped).lost
    assert not osh.is_finished(study)

    interrupt[0] = False
    resumed, _ = new_study(storage=url, strategy=4, max_attempts=1)
    osh.optimize(resumed, obj)
    assert osh.is_finished(resumed)
    slot = stopped.system_attrs["osh:slot"]
    assert [t.state for t in resumed.trials if t.system_attrs.get("osh:slot") == slot] == [
        TrialState.FAIL, TrialState.COMPLETE]
    assert not any(t.user_attrs.get("fail_reason") for t in resumed.trials)


# ------------------------------------------------------------------ many workers -------------
def noisy(calls, sp):
    def f(trial):
        s = osh.suggest_shape(trial, sp)
        calls.append((trial.number, s))
        return acc(s) + 1.5 * math.sin(7.0 * trial.number)  # seed noise, repeatable
    return f


def adaptive_study(n_done: int = 7, storage=None):
    """An adaptive study past its initial design: one worker trained ``n_done`` times (the
    search is far from confident, and its next training is queued)."""
    sp = space(depth=(10, 58, 6), width=(0.25, 3.0, 0.25))  # 108 shapes
    sampler = osh.ShapeSampler(sp, policy=osh.Adaptive(max_trainings=60, confidence=0.99),
                               goal="accuracy", seed=0)
    sampler.poll_interval = 0.05
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage)
    study.optimize(noisy([], sp), n_trials=n_done)
    assert n_waiting(study) == 1
    return study, sampler


def running_trainings(study, sampler, n):
    """``n`` trainings taken by (simulated) workers: the queued one and untrained shapes."""
    done = {(t.params["depth"], t.params["width"]) for t in study.trials if t.params}
    fresh = [s for s in sampler.space.shapes if (s.depth, s.width) not in done]
    for s in fresh[: n - n_waiting(study)]:
        queue(study, s)
    trials = [study.ask() for _ in range(n)]
    assert sum(t.state == TrialState.RUNNING for t in study.trials) == n
    return trials


def shape_of(study, trial):
    return osh.Shape(*(study._storage.get_trial(trial._trial_id).system_attrs["fixed_params"]
                       [k] for k in ("depth", "width")))


def finish(study, trial):
    """A (simulated) worker's training ends with the shape's accuracy."""
    study.tell(trial, acc(shape_of(study, trial)))


def marked(study, trial):
    """The trial's ``osh:planning`` mark (``None`` when it has none)."""
    return study.trials[trial.number].system_attrs.get(st.PLANNING)


def n_waiting(study):
    return sum(t.state == TrialState.WAITING for t in study.trials)


def test_with_many_workers_trainings_are_queued_ahead():
    """16 workers: a finishing training leaves one training per eight running workers queued
    beyond the one it takes itself, so workers finishing meanwhile start at once."""
    assert [coordination.lookahead(n) for n in (1, 7, 8, 15, 16, 64)] == [0, 0, 1, 1, 2, 8]
    study, sampler = adaptive_study()
    trials = running_trainings(study, sampler, 16)
    assert n_waiting(study) == 0
    finish(study, trials[0])
    assert n_waiting(study) == 1 + 2 * coordination.lookahead(15)  # 15 others still running


def test_few_workers_queue_nothing_ahead():
    study, sampler = adaptive_study()
    trials = running_trainings(study, sampler, 4)
    finish(study, trials[0])
    assert n_waiting(study) == 1  # the finishing worker's own next training


def test_a_finishing_training_leaves_the_decision_to_one_already_deciding():
    study, sampler = adaptive_study()
    trials = running_trainings(study, sampler, 3)
    st.set_trial_system_attr(study, trials[2]._trial_id, st.PLANNING, True)  # deciding now
    finish(study, trials[0])
    assert n_waiting(study) == 0
    assert marked(study, trials[0]) is None
    finish(study, trials[1])  # trials[2] still deciding
    assert n_waiting(study) == 0


def _at_the_mark(monkeypatch, study, trial, then):
    """Run ``then()`` just after ``trial``'s hook marks itself deciding, before it reads the
    study again: what another worker does in that moment."""
    real = st.set_trial_system_attr

    def mark(study_, trial_id, key, value):
        real(study_, trial_id, key, value)
        if key == st.PLANNING and trial_id == trial._trial_id:
            then()

    monkeypatch.setattr(st, "set_trial_system_attr", mark)


def test_of_two_finishing_trainings_marked_at_once_neither_decides_beside_the_other(
        monkeypatch):
    """The higher-numbered training read the study before the lower one marked itself and
    decided; the lower one, seeing only a higher mark, used to decide too: the last room of
    the trainings cap was given out twice. Now a hook that sees any other mark leaves the
    decision to it (or to the idle workers)."""
    study, sampler = adaptive_study()
    trials = running_trainings(study, sampler, 3)
    # trials[1]'s hook, racing this one, marks itself in the moment between this hook's
    # first read (no mark yet) and its mark
    _at_the_mark(monkeypatch, study, trials[0], lambda: st.set_trial_system_attr(
        study, trials[1]._trial_id, st.PLANNING, True))
    finish(study, trials[0])
    assert n_waiting(study) == 0  # it left the decision to trials[1]


def test_a_finishing_training_leaves_the_decision_to_a_planner_that_began_meanwhile(
        monkeypatch):
    """An idle worker's planner that read the study before this hook marked itself decides
    for the idle workers; the hook, which sees that planner on its second read, does not
    decide beside it."""
    study, sampler = adaptive_study()
    trials = running_trainings(study, sampler, 2)
    other = optuna.load_study(study_name=study.study_name, storage=study._storage)
    _at_the_mark(monkeypatch, study, trials[0], other.ask)  # the queue is empty: a planner
    finish(study, trials[0])
    assert n_waiting(study) == 0


def test_without_heartbeats_each_finishing_training_decides_for_itself(tmp_path):
    """On the journal storage a dead worker's trial is never failed: a mark it left would hold
    every other worker back, so marks are neither written nor obeyed there."""
    journal = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log")))
    study, sampler = adaptive_study(storage=journal)
    trials = running_trainings(study, sampler, 3)
    st.set_trial_system_attr(study, trials[2]._trial_id, st.PLANNING, True)  # e.g. died so
    finish(study, trials[0])
    assert n_waiting(study) == 1
    assert marked(study, trials[0]) is None


def test_a_finishing_training_marks_itself_while_it_decides_for_others():
    study, sampler = adaptive_study()
    trials = running_trainings(study, sampler, 2)
    finish(study, trials[0])
    assert n_waiting(study) == 1
    assert marked(study, trials[0]) is True


def test_an_idle_worker_waits_for_a_finishing_training_that_decides():
    study, sampler = adaptive_study()
    trials = running_trainings(study, sampler, 2)
    st.set_trial_system_attr(study, trials[1]._trial_id, st.PLANNING, True)
    worker = threading.Thread(target=study.optimize, args=(noisy([], sampler.space),),
                              kwargs={"n_trials": 1})
    worker.start()
    time.sleep(1.0)
    assert worker.is_alive()  # waiting: it did not decide (and train) on its own
    assert n_waiting(study) == 0
    finish(study, trials[1])  # the decider's training ends
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert study.trials[-1].user_attrs.get("stage") in ("acquire", "repeat")


def test_a_planner_queues_the_rest_before_taking_its_own_training(monkeypatch):
    """Once a planning trial holds a slot it is no longer a planner, so the next idle worker
    decides on what it sees queued: everything proposed must be queued by then."""
    study, sampler = new_study()
    seen = []
    claim = st.claim_training

    def spy(study_, trial_id, **kw):
        seen.append(n_waiting(study_))
        return claim(study_, trial_id, **kw)

    monkeypatch.setattr(st, "claim_training", spy)
    study.optimize(objective([], sampler.space), n_trials=1)
    assert seen and seen[0] >= 1 and seen[0] == n_waiting(study)


def test_a_waiting_worker_looks_again_soon_then_less_often(monkeypatch):
    study, sampler = new_study()
    sleeps = []
    monkeypatch.setattr(planning.time, "sleep", sleeps.append)
    sampler.poll_interval = 1.0
    for polls in range(7):
        planning._wait(sampler._context(), study, "waiting", polls)
    assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    sleeps.clear()
    planning._wait(sampler._context(), study, "waiting", 0, running=64)  # many workers look
    assert sleeps == [0.2]  # less often, so that together they read the study about as often


def test_with_more_workers_than_the_queue_cap_the_queue_holds_one_training_each():
    sp = space(depth=(10, 58, 6), width=(0.25, 3.0, 0.25))  # 108 shapes
    study, sampler = new_study(sp, strategy=40)
    running = coordination.QUEUE_CAP + 4
    for s in sp.shapes[:running]:
        queue(study, s)
    for _ in range(running):
        study.ask()
    snap = read_snapshot(study, TrialCache())
    problem = sampler.problem(study)
    queued = planning.enqueue(sampler._context(), study, snap, problem,
                              Train(tuple(sp.shapes[running:running + 30]), "sample"))
    assert len(queued) == running


def test_a_waiting_planner_checks_for_stale_trials_once_an_interval_has_passed(monkeypatch):
    """Optuna's optimize fails stale trials before every trial: a planner's first looks do not
    check again, and with many running trials every waiting worker checks less often."""
    study, sampler = new_study()
    checks = []
    monkeypatch.setattr(planning.time, "sleep", lambda s: None)
    monkeypatch.setattr(planning.st, "fail_stale", lambda study_: checks.append(1))
    ctx = sampler._context()
    now = [1000.0]
    monkeypatch.setattr(planning.time, "monotonic", lambda: now[0])
    ctx.state.last_stale_check = now[0]  # a planner trial began (Optuna just checked)
    planning._wait(ctx, study, "waiting", 0)
    assert checks == []
    now[0] += planning.STALE_CHECK_S
    planning._wait(ctx, study, "waiting", 1)
    assert checks == [1]
    now[0] += planning.STALE_CHECK_S
    planning._wait(ctx, study, "waiting", 2, running=64)  # 64 running: 4 × the interval
    assert checks == [1]
    now[0] += 3 * planning.STALE_CHECK_S
    planning._wait(ctx, study, "waiting", 3, running=64)
    assert checks == [1, 1]


def test_a_planner_waits_a_check_interval_before_its_first_stale_check(monkeypatch):
    """Optuna's optimize loop failed stale trials just before the planner trial's ask: its
    first looks do not read every running trial's heartbeat again."""

    class Enough(Exception):
        pass

    study, sampler = adaptive_study()
    trials = running_trainings(study, sampler, 2)
    st.set_trial_system_attr(study, trials[1]._trial_id, st.PLANNING, True)  # it decides
    checks, sleeps = [], []
    monkeypatch.setattr(planning.st, "fail_stale", lambda study_: checks.append(1))
    sampler._context().state.last_stale_check = 0.0  # this worker never checked before

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise Enough

    monkeypatch.setattr(planning.time, "sleep", sleep)
    with pytest.raises(Enough):
        study.optimize(noisy([], sampler.space), n_trials=1)
    assert len(sleeps) == 3 and checks == []


def test_a_waiting_planner_reads_the_study_again_only_when_its_trial_counts_change(
        monkeypatch, tmp_path):
    """On an RDB storage a waiting worker's look is one small count query; the whole study is
    read again only when a trial was created, queued, taken or finished (here: a training is
    queued on the fourth look, and the planner ends so that its worker takes it)."""

    class Enough(Exception):
        pass

    from optuna_shape.store.backends import open_storage

    study, sampler = adaptive_study(storage=open_storage(f"sqlite:///{tmp_path / 'w.db'}",
                                                         heartbeat_interval=5))
    trials = running_trainings(study, sampler, 2)
    st.set_trial_system_attr(study, trials[1]._trial_id, st.PLANNING, True)  # it decides
    reads, sleeps = [], []
    real_read = planning.read_snapshot

    def read(*a, **kw):
        reads.append(len(sleeps))
        return real_read(*a, **kw)

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 4:
            queue(study, sampler.space.shapes[-1])
        if len(sleeps) > 8:
            raise Enough

    monkeypatch.setattr(planning, "read_snapshot", read)
    monkeypatch.setattr(planning.time, "sleep", sleep)
    study.optimize(noisy([], sampler.space), n_trials=1)
    # the trial's first read, the first look (no counts seen yet), then the look after the
    # training was queued; the looks in between read nothing but the counts
    assert reads == [0, 1, 4]
    planner = study.trials[-2]
    assert planner.state == TrialState.PRUNED
    assert planner.user_attrs["end_reason"] == "a queued training is waiting"
