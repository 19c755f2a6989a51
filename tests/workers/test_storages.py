"""``optuna_shape.store.backends``: every URL form, clear one-line errors, stale-trial recovery."""

from __future__ import annotations

import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from optuna_shape.store.backends import (
    fail_stale_on_start,
    has_heartbeat,
    mask_url,
    open_storage,
    resolve_driver,
)


def test_memory():
    assert open_storage(None) is None
    assert open_storage(":memory:") is None


def test_sqlite_has_heartbeat_and_lock_timeout(tmp_path):
    s = open_storage(f"sqlite:///{tmp_path / 'a.db'}", heartbeat_interval=1, grace_period=3)
    assert isinstance(s, optuna.storages.RDBStorage)
    assert s.get_heartbeat_interval() == 1 and s.grace_period == 3
    assert s.engine.dialect.name == "sqlite"
    study = optuna.create_study(storage=s)
    assert has_heartbeat(study._storage)  # through Optuna's _CachedStorage wrapper


def test_grace_period_defaults_to_three_heartbeats(tmp_path):
    s = open_storage(f"sqlite:///{tmp_path / 'g.db'}", heartbeat_interval=2)
    assert s.grace_period == 6
    s = open_storage(f"sqlite:///{tmp_path / 'n.db'}", heartbeat_interval=None)
    assert s.get_heartbeat_interval() is None and not has_heartbeat(s)


@pytest.mark.parametrize("form", ["journal:{}", "{}"])
def test_journal(tmp_path, form):
    path = tmp_path / "s.log"
    s = open_storage(form.format(path))
    assert isinstance(s, optuna.storages.JournalStorage)
    assert not has_heartbeat(s)
    optuna.create_study(storage=s, study_name="j").optimize(lambda t: 1.0, n_trials=1)
    assert path.exists()


def test_bad_urls_are_one_clear_line(tmp_path):
    cases = {
        "ftp://host/x": "ftp://host/x",
        "notaurl": "expected a URL",
        f"sqlite:///{tmp_path}/missing/dir/x.db": "does not exist",
        f"journal:{tmp_path}/missing/x.log": "does not exist",
        "mysql+nosuchdriver://u@h/db": "mysql",
    }
    for url, needle in cases.items():
        with pytest.raises(ValueError) as err:
            open_storage(url)
        msg = str(err.value)
        assert "\n" not in msg and "cannot open storage" in msg and needle in msg, msg
        # no chained SQLAlchemy traceback
        assert err.value.__cause__ is None
        assert err.value.__context__ is None or err.value.__suppress_context__


def test_unreachable_postgres_masks_the_password():
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://alice:s3cret@127.0.0.1:{port}/nowhere"
    with pytest.raises(ValueError) as err:
        open_storage(url)
    msg = str(err.value)
    assert "s3cret" not in msg and "alice:***@" in msg and "\n" not in msg
    assert "server is running" in msg


def test_mask_url_and_driver():
    assert mask_url("postgresql://u:p%40ss@h:5/db") == "postgresql://u:***@h:5/db"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
    assert resolve_driver("sqlite:///x.db") == "sqlite:///x.db"
    assert resolve_driver("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert resolve_driver("postgresql://u@h/d").startswith("postgresql")


@pytest.mark.postgres
def test_postgres_round_trip(postgres_url):
    s = open_storage(postgres_url, heartbeat_interval=1, grace_period=2)
    assert s.engine.dialect.name == "postgresql"
    study = optuna.create_study(storage=s, study_name="p")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="p", storage=postgres_url).trials) == 2


def test_wrong_password_for_postgres_is_clear(postgres_server):
    import sqlalchemy

    url = sqlalchemy.engine.make_url(postgres_server).set(database="no_such_db_osh")
    url = url.render_as_string(hide_password=False)
    with pytest.raises(ValueError, match="no_such_db_osh") as err:
        open_storage(url)
    assert "\n" not in str(err.value)


def _stale_study(tmp_path, heartbeat):
    url = f"sqlite:///{tmp_path / 'st.db'}"
    s = open_storage(url, heartbeat_interval=heartbeat, grace_period=1 if heartbeat else None)
    study = optuna.create_study(storage=s, study_name="st")
    with warnings.catch_warnings():  # Optuna warns that heartbeats belong to study.optimize
        warnings.filterwarnings("ignore", message="Heartbeat of storage", category=UserWarning)
        t = study.ask()  # a worker that died mid-trial: RUNNING, no more heartbeats
    if heartbeat:
        s.record_heartbeat(t._trial_id)
    return study


def test_fail_stale_on_start_with_heartbeats(tmp_path):
    study = _stale_study(tmp_path, heartbeat=1)
    time.sleep(2.5)
    assert fail_stale_on_start(study) == 1
    assert study.trials[0].state == TrialState.FAIL


def test_fail_stale_on_start_without_heartbeats_needs_an_age(tmp_path):
    path = tmp_path / "j.log"
    study = optuna.create_study(storage=open_storage(f"journal:{path}"), study_name="j")
    study.ask()
    assert fail_stale_on_start(study) == 0  # no heartbeat, no age: nothing is touched
    assert study.trials[0].state == TrialState.RUNNING
    assert fail_stale_on_start(study, older_than_s=3600) == 0  # too young
    assert fail_stale_on_start(study, older_than_s=0) == 1
    assert study.trials[0].state == TrialState.FAIL


def test_workers_opening_a_new_database_together(tmp_path):
    """The schema-creation race (UNIQUE constraint failed: alembic_version) is retried."""
    import concurrent.futures as cf

    url = f"sqlite:///{tmp_path / 'race.db'}"
    with cf.ThreadPoolExecutor(6) as ex:
        storages = list(ex.map(lambda _: open_storage(url), range(6)))
    assert all(isinstance(s, optuna.storages.RDBStorage) for s in storages)


def _counts_follow_every_queue_event(study):
    """The trial counts change when a trial is created, queued, taken from the queue or
    finished, and not when only attributes change."""
    from optuna_shape import store as st
    from optuna_shape.sampler import coordination
    from optuna_shape.space.shape import Shape

    assert st.trial_counts(study) == ()
    running = study.ask()
    after_ask = st.trial_counts(study)
    assert after_ask == (("RUNNING", 1),)
    st.set_trial_user_attrs(study, running._trial_id, {"stage": "plan"})
    assert st.trial_counts(study) == after_ask
    st.create_waiting_trial(study, slot=coordination.slot_of(Shape(10, 1.0), 1),
                            stage="sample", shape=Shape(10, 1.0), user_attrs={})
    assert st.trial_counts(study) == (("RUNNING", 1), ("WAITING", 1))
    popped = study.ask()
    assert st.trial_counts(study) == (("RUNNING", 2),)
    study.tell(popped, 1.0)
    assert st.trial_counts(study) == (("COMPLETE", 1), ("RUNNING", 1))


def test_trial_counts_on_a_sqlite_file(tmp_path):
    """One small query counts a study's trials by state (what a waiting worker looks at)."""
    _counts_follow_every_queue_event(optuna.create_study(
        storage=open_storage(f"sqlite:///{tmp_path / 'c.db'}")))


def test_trial_counts_on_postgres(postgres_url):
    _counts_follow_every_queue_event(optuna.create_study(storage=open_storage(postgres_url)))
