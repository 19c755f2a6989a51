"""Slot strings: built and parsed back."""

from __future__ import annotations

from optuna_shape import store as st


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
