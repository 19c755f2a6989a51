"""The measurement record's codec: stored records (real ones, taken by a search on this CPU, and
every form predicted screening and older versions wrote) decode and encode byte-identically,
unknown keys and undecodable values are kept, and the record reads as the dict it replaces."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

import optuna
import pytest

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.measurement.screening import apply_limits, constraint_values
from optuna_shape.space.measurement_record import Measurement

optuna.logging.set_verbosity(optuna.logging.WARNING)

# every key order the versions write: measured, measured with a precision, failed, predicted
# latency, measured latency then predicted energy, predicted latency then predicted energy,
# predicted latency then measured energy, and a record of a later version with a key unknown here
STORED = [
    {"latency_ms": 1.25, "latency_iqr_ms": 0.03125, "latency_runs": 3},
    {"precision": "int8", "latency_ms": 0.5, "latency_iqr_ms": 0.01, "latency_runs": 10,
     "energy_j": 0.002, "energy_method": "counter"},
    {"error": "could not be measured: RuntimeError: out of memory"},
    {"latency_ms": 1.0, "latency_iqr_ms": 0.1, "latency_runs": 10,
     "error": "could not be measured: MeasurementError: no NVML"},
    {"latency_ms": 3.5, "latency_low_ms": 3.0, "latency_high_ms": 4.0, "predicted": True},
    {"latency_ms": 2.0, "latency_iqr_ms": 0.1, "latency_runs": 10, "energy_j": 0.5,
     "energy_low_j": 0.4, "energy_high_j": 0.6, "predicted": True},
    {"latency_ms": 2.0, "latency_low_ms": 1.5, "latency_high_ms": 2.5, "predicted": True,
     "energy_j": 0.5, "energy_low_j": 0.4, "energy_high_j": 0.6},
    {"latency_ms": 2.0, "latency_low_ms": 1.5, "latency_high_ms": 2.5, "predicted": True,
     "energy_j": 0.5, "energy_method": "power_sampling"},
    {"latency_ms": 7, "latency_runs": 3, "throughput": {"img_s": 12.5}, "device_note": "x"},
    {},
]


def _bytes(d: Mapping) -> str:
    return json.dumps(d)


@pytest.mark.parametrize("stored", STORED)
def test_round_trip_is_byte_identical(stored):
    m = Measurement.from_json(stored)
    assert _bytes(m.to_json()) == _bytes(stored)
    assert _bytes(Measurement.from_json(m.to_json()).to_json()) == _bytes(stored)
    # the read-only mapping reads as the stored dict did
    assert dict(m) == stored and list(m) == list(stored) and len(m) == len(stored)
    assert m == stored and all(m[k] == v and m.get(k) == v for k, v in stored.items())
    assert m.get("no such key") is None and "no such key" not in m


def test_typed_fields_and_cost():
    m = Measurement.from_json(STORED[1])
    assert (m.precision, m.latency_ms, m.latency_runs, m.energy_j, m.energy_method) == \
        ("int8", 0.5, 10, 0.002, "counter")
    assert m.cost("latency") == 0.5 and m.cost("energy") == 0.002
    assert not m.is_predicted and not m.failed and m.extra == {}
    with pytest.raises(KeyError):
        m.cost("size")
    p = Measurement.from_json(STORED[4])
    assert p.is_predicted and (p.latency_low_ms, p.latency_high_ms) == (3.0, 4.0)
    assert Measurement.from_json(STORED[2]).failed
    assert not Measurement() and Measurement().to_json() == {}
    # an int stays an int, so it is written back the same
    assert type(Measurement.from_json(STORED[8]).latency_ms) is int


def test_unknown_keys_are_kept_and_written_back():
    m = Measurement.from_json(STORED[8])
    assert m.extra == {"throughput": {"img_s": 12.5}, "device_note": "x"}
    assert m["throughput"] == {"img_s": 12.5}


@pytest.mark.parametrize("bad", [
    {"latency_ms": "fast", "latency_runs": 2.5, "predicted": 1, "error": None},
    {"latency_ms": None, "energy_j": [1, 2], "energy_method": 3, "precision": 8},
    {"latency_runs": True, "latency_iqr_ms": False, "extra": 1, "order": [1]},
])
def test_bad_values_are_kept_in_extra_never_raising(bad):
    m = Measurement.from_json(bad)
    assert dict(m.extra) == bad and _bytes(m.to_json()) == _bytes(bad)
    assert m.latency_ms is None and m.latency_runs is None and m.energy_j is None
    # read as every version read them: a truthy "predicted" is a prediction, an "error" a failure
    assert m.is_predicted == bool(bad.get("predicted")) and m.failed == bool(bad.get("error"))


def test_updated_gives_what_a_dict_update_gave():
    for a in STORED:
        for b in STORED:
            want = dict(a)
            want.update(b)
            got = Measurement.from_json(a).updated(Measurement.from_json(b))
            assert _bytes(got.to_json()) == _bytes(want)
            assert _bytes(Measurement.from_json(a).updated(b).to_json()) == _bytes(want)


def test_built_records_store_as_the_dicts_did():
    # what measure_shape and predicted screening build, in the order they built it
    built = Measurement(latency_ms=1.0, latency_iqr_ms=0.1, latency_runs=3)
    assert list(built.to_json()) == ["latency_ms", "latency_iqr_ms", "latency_runs"]
    pred = Measurement().updated({"latency_ms": 2.0, "latency_low_ms": 1.0,
                                  "latency_high_ms": 3.0, "predicted": True})
    assert _bytes(pred.to_json()) == _bytes(STORED[4] | {"latency_ms": 2.0,
                                                        "latency_low_ms": 1.0,
                                                        "latency_high_ms": 3.0})
    assert Measurement.of(built) is built and Measurement.of(None) == {}


def test_readers_accept_records_and_dicts():
    cons = osh.Constraints(max_latency_ms=1.5, max_energy_j=0.1)
    shapes = [osh.Shape(10, 1.0), osh.Shape(16, 1.0), osh.Shape(22, 1.0), osh.Shape(28, 1.0)]
    recs = dict(zip(shapes, [STORED[0], STORED[4], STORED[2], {"latency_ms": 1.0}]))
    for meas in (recs, {s: Measurement.from_json(r) for s, r in recs.items()}):
        ok, rej = apply_limits(shapes, meas, cons, latency=True, energy=False)
        assert ok == [shapes[0], shapes[3]]
        assert rej == {shapes[1]: "predicted latency 3.5 ms > 1.5 ms",
                       shapes[2]: STORED[2]["error"]}
        ok, rej = apply_limits(shapes, meas, cons, latency=True, energy=True)
        assert ok == [] and rej[shapes[0]] == "energy not measured"
        assert constraint_values(cons, 1.0, meas[shapes[0]]) == {"latency": 1.25 - 1.5}
    assert constraint_values(cons, 1.0, None) == {}


def test_records_of_a_real_search_round_trip_byte_identically(tmp_path):
    """Latency measured on this CPU by a small search stored in SQLite: each stored record's
    bytes are what encoding its decoded record gives, and storing the decoded record again
    stores the same bytes."""
    space = osh.ShapeSpace(family="wrn", depth=[10, 16], width=[0.25, 0.5], in_channels=1,
                           num_classes=10, image_size=8)
    path = tmp_path / "s.db"
    storage = f"sqlite:///{path}"
    sampler = osh.ShapeSampler(space, osh.Constraints(max_latency_ms=1e3), goal="latency", seed=0,
                               policy=osh.Paper(), measurement=osh.MeasurementSettings(
                                   batch_size=1, repeats=3, warmup=1, threads=1))
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage,
                                study_name="m")
    study.optimize(lambda t: 90.0 + osh.suggest_shape(t, space).width)

    def raw() -> dict[str, str]:
        with sqlite3.connect(path) as db:
            return dict(db.execute("SELECT key, value_json FROM study_system_attributes "
                                   "WHERE key LIKE 'osh:m:%'"))

    stored = raw()
    assert len(stored) == len(space)
    for text in stored.values():
        m = Measurement.from_json(json.loads(text))
        assert m.latency_ms is not None and m.latency_runs == 3 and not m.extra
        assert json.dumps(m.to_json()) == text
    records = st.read_measurements(st.study_attrs(study))
    assert all(isinstance(m, Measurement) for m in records.values())
    hw = st.known_hardware(st.study_attrs(study)).pop()
    for shape, m in records.items():
        st.write_measurement(study, hw, shape, m)
    assert raw() == stored
    # the trials' attributes carry the typed record's latency
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.user_attrs["latency_ms"] == pytest.approx(records[osh.suggest_shape(
                optuna.trial.FixedTrial(t.params), space)].latency_ms, rel=1e-2)
