"""Slot strings: built and parsed back, and read from a running trial."""

from __future__ import annotations

import optuna

from optuna_shape import store as st
from optuna_shape.space.shape import Shape


def test_slot_index_inverts_slot_of():
    from optuna_shape.space.shape import Shape

    assert st.slot_index(st.slot_of(Shape(22, 2.5), 3)) == 3
    assert st.slot_index(st.screen_slot("abc")) == 1
    assert st.slot_index("d22-w2.5") is None and st.slot_index("d22-w2.5#0") is None


def test_screened_hash_inverts_screen_slot():
    from optuna_shape.space.shape import Shape

    assert st.screened_hash(st.screen_slot("ab12")) == "ab12"
    assert st.screened_hash(st.slot_of(Shape(22, 2.5), 1)) is None
    assert st.screened_hash("screen:#1") is None and st.screened_hash("screen:ab12#2") is None


def test_a_running_trial_s_slot_is_read_once():
    """A trial taken from the queue carries its slot in the record Optuna read when it was
    taken: asking which training it runs reads nothing more. A trial that got its slot after it
    was taken (a planner that took a training itself) is read from the storage."""
    study = optuna.create_study(direction="maximize")
    st.create_waiting_trial(study, slot=st.slot_of(Shape(22, 2.5), 3), stage="sample",
                            shape=Shape(22, 2.5))
    queued = study.ask()
    reads: list[int] = []
    storage = study._storage
    real = storage.get_trial

    def counted(trial_id):
        reads.append(trial_id)
        return real(trial_id)

    storage.get_trial = counted
    assert st.training_index(queued) == 3 and reads == []
    planner = study.ask()
    reads.clear()  # Optuna's own read of the trial it just created
    st.claim_training(study, planner._trial_id, slot=st.slot_of(Shape(10, 1.0), 2),
                      stage="sample", shape=Shape(10, 1.0))
    assert st.training_index(planner) == 2 and reads == [planner._trial_id]
