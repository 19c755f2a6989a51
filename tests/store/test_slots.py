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


def test_a_claiming_planner_is_a_planner_or_a_training_at_every_write():
    """Another worker reading the study while a planner takes a training itself must count it:
    as an idle worker (no slot, no shape — the others then leave the deciding to it) or as a
    pending training of its shape. Seen as neither, a finishing training decided beside it
    with room for one training more than the cap had left, and the cap was passed by one."""
    study = optuna.create_study(direction="maximize")
    planner = study.ask()
    storage = study._storage
    seen: list[tuple[str | None, Shape | None, bool]] = []

    def look() -> None:
        rec = st.decode_trial(storage.get_trial(planner._trial_id))
        seen.append((rec.slot, rec.shape, rec.is_training))

    for name in ("set_trial_system_attr", "set_trial_user_attr"):
        real = getattr(storage, name)

        def write(*args, _real=real, **kw):
            out = _real(*args, **kw)
            look()
            return out

        setattr(storage, name, write)
    st.claim_training(study, planner._trial_id, slot=st.slot_of(Shape(10, 1.0), 1),
                      stage="sample", shape=Shape(10, 1.0), user_attrs={"params": 5},
                      system_attrs={"osh:predicted": 95.0})
    assert len(seen) >= 4
    for slot, shape, training in seen:
        assert (slot is None and shape is None) or (shape == Shape(10, 1.0) and training), seen
    assert seen[-1] == (st.slot_of(Shape(10, 1.0), 1), Shape(10, 1.0), True)
