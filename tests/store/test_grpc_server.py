"""The gRPC proxy's server (shared reads) and the workers' gRPC client (decoded once, stale checks
spaced), against a real server on a loopback port and a real SQLite file."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from pathlib import Path

import optuna
import pytest

pytest.importorskip("grpc", reason="the gRPC proxy tests need grpcio (the test extra)")

from optuna.storages._grpc import servicer as grpc_servicer  # noqa: E402

from optuna_shape.store.backends import (  # noqa: E402
    STALE_LOOKS_PER_GRACE,
    HeartbeatGrpcStorageProxy,
    open_storage,
)
from optuna_shape.store.grpc_server import SharedReadService, make_server  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path):
    """A real proxy server of a SQLite file; yields (server, client factory)."""
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=None)
    port = _free_port()
    server = make_server(storage, "127.0.0.1", port)
    server.start()
    clients: list[HeartbeatGrpcStorageProxy] = []

    def client(**kw) -> HeartbeatGrpcStorageProxy:
        c = HeartbeatGrpcStorageProxy(host="127.0.0.1", port=port, **kw)
        c.wait_server_ready(timeout=10)
        clients.append(c)
        return c

    yield server, client
    for c in clients:
        c.close()
    server.stop(None)


def test_a_worker_reads_what_another_wrote_just_before(served):
    _, client = served
    a, b = client(), client()
    study = optuna.create_study(storage=a, study_name="s")
    seen_by_b = optuna.load_study(study_name="s", storage=b)
    trial = study.ask()
    assert [t.state for t in seen_by_b.get_trials(deepcopy=False)] == [
        optuna.trial.TrialState.RUNNING]
    trial.set_user_attr("k", 1)
    assert seen_by_b.get_trials(deepcopy=False)[0].user_attrs == {"k": 1}
    trial.set_user_attr("k", 2)  # a changed trial is encoded (server) and decoded (client) anew
    assert seen_by_b.get_trials(deepcopy=False)[0].user_attrs == {"k": 2}
    study.tell(trial, 0.5)
    assert seen_by_b.get_trials(deepcopy=False)[0].value == 0.5


def test_a_client_decodes_only_the_trials_that_changed(served, monkeypatch):
    _, client = served
    c = client()
    study = optuna.create_study(storage=c, study_name="s")
    t1, t2 = study.ask(), study.ask()
    c.get_all_trials(study._study_id)
    decoded: list[int] = []
    real = grpc_servicer._from_proto_trial

    def counted(proto):
        decoded.append(proto.number)
        return real(proto)

    monkeypatch.setattr(grpc_servicer, "_from_proto_trial", counted)
    c.get_all_trials(study._study_id)
    assert decoded == []  # both running trials came back unchanged
    t2.set_user_attr("k", 1)
    trials = c.get_all_trials(study._study_id)
    assert decoded == [t2.number] and trials[1].user_attrs == {"k": 1}
    assert trials[0].number == t1.number


def test_a_trial_read_comes_from_the_shared_read_of_its_study(served, monkeypatch):
    """Once the proxy has read a trial with its study, a read of that one trial is answered from
    the study's next shared read (no read of its own), and still sees every write made before
    it; a trial the proxy has not read yet is read as Optuna's service reads it."""
    server, client = served
    a, b = client(), client()
    study = optuna.create_study(storage=a, study_name="s")
    done = study.ask()
    study.tell(done, 0.5)
    running = study.ask()
    service: SharedReadService = server.service
    own: list[int] = []
    real = service._backend.get_trial

    def counted(trial_id):
        own.append(trial_id)
        return real(trial_id)

    fresh = study.ask()  # not read by the proxy yet: Optuna's read
    monkeypatch.setattr(service._backend, "get_trial", counted)
    assert b.get_trial(fresh._trial_id).number == 2 and own == [fresh._trial_id]
    b.get_all_trials(study._study_id)  # the proxy reads the study: now it knows all three
    before = service.database_reads
    running.set_user_attr("k", 1)
    assert b.get_trial(running._trial_id).user_attrs == {"k": 1}  # the write just before
    assert b.get_trial(done._trial_id).value == 0.5
    assert own == [fresh._trial_id] and service.database_reads == before + 2
    study.tell(running, 0.7)
    assert b.get_trial(running._trial_id).state == optuna.trial.TrialState.COMPLETE
    assert b.get_trial(running._trial_id).value == 0.7


def test_reads_that_arrive_during_a_read_share_the_next_one():
    """A read that arrives while another is being made is answered by a read that starts after
    it arrived (it would miss writes made just before it otherwise), shared with every other
    read that arrived meanwhile."""
    release = threading.Event()
    calls: list[int] = []

    @dataclasses.dataclass
    class Read:
        n: int
        _trial_id: int = 0
        number: int = 0

    class Backend:
        def get_all_trials(self, study_id, deepcopy=False):
            calls.append(len(calls))
            n = len(calls)
            if n == 1:
                release.wait(10)
            return [Read(n)]  # the read's number stands for its trials

    service = SharedReadService.__new__(SharedReadService)
    SharedReadService.__init__(service, Backend())  # type: ignore[arg-type]
    results: dict[str, object] = {}
    first = threading.Thread(target=lambda: results.setdefault("first", service._trials(0)[0]))
    first.start()
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.001)
    assert calls, "the first request made no read"
    late = [threading.Thread(target=lambda i=i: results.setdefault(f"late{i}",
                                                                 service._trials(0)[0]))
            for i in range(5)]
    for t in late:
        t.start()
    time.sleep(0.05)
    release.set()
    for t in [first, *late]:
        t.join(10)
    assert results["first"] == [Read(1)]
    assert all(results[f"late{i}"] == [Read(2)] for i in range(5))  # not the read already running
    assert len(calls) == 2 and service.database_reads == 2


def test_a_failed_read_fails_every_request_that_shared_it():
    class Backend:
        def get_all_trials(self, study_id, deepcopy=False):
            raise KeyError(study_id)

    service = SharedReadService(Backend())  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        service._trials(7)
    with pytest.raises(KeyError):  # and the next request reads again
        service._trials(7)
    assert service.database_reads == 2


def test_the_stale_check_reads_the_running_trials_a_few_times_per_grace_period(served):
    _, client = served
    c = client(heartbeat_interval=1, grace_period=8)
    study = optuna.create_study(storage=c, study_name="s")
    reads: list[float] = []
    real = c.get_all_trials

    def counted(*a, **k):
        reads.append(time.monotonic())
        return real(*a, **k)

    c.get_all_trials = counted  # type: ignore[method-assign]
    assert c._get_stale_trial_ids(study._study_id) == []
    assert c._get_stale_trial_ids(study._study_id) == []  # at once: no new look
    assert len(reads) == 1
    time.sleep(8 / STALE_LOOKS_PER_GRACE + 0.05)
    c._get_stale_trial_ids(study._study_id)
    assert len(reads) == 2


def test_a_deleted_study_leaves_nothing_in_the_proxy(served):
    """A long-running proxy serving many studies keeps no deleted study's trials."""
    server, client = served
    c = client()
    kept = optuna.create_study(storage=c, study_name="kept")
    gone = optuna.create_study(storage=c, study_name="gone")
    for study in (kept, gone):
        study.tell(study.ask(), 1.0)
        study.ask()
        c.get_all_trials(study._study_id)
    service: SharedReadService = server.service
    ids = {s.study_name: [t._trial_id for t in s.get_trials(deepcopy=False)]
           for s in (kept, gone)}
    for s in (kept, gone):
        assert sorted(service._reads[s._study_id].encoded) == ids[s.study_name]
    optuna.delete_study(study_name="gone", storage=c)
    assert gone._study_id not in service._reads and kept._study_id in service._reads
    assert sorted(service._numbers) == ids["kept"]
    assert sorted(service._reads[kept._study_id].encoded) == ids["kept"]
    assert [t.state for t in c.get_all_trials(kept._study_id)] == [
        optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING]


def test_a_read_in_flight_when_its_study_is_deleted_leaves_nothing(served):
    """The deletion lands while a read of the study is under way (its database read started,
    its answer not yet encoded): once the read is answered nothing of the study is left, and a
    read of the deleted study afterwards keeps nothing either."""
    server, client = served
    c, d = client(), client()
    study = optuna.create_study(storage=c, study_name="gone")
    study.tell(study.ask(), 1.0)
    service: SharedReadService = server.service
    backend = service._backend
    real = backend.get_all_trials
    started, release = threading.Event(), threading.Event()

    def slow(*a, **k):
        trials = real(*a, **k)
        started.set()
        assert release.wait(10)
        return trials

    backend.get_all_trials = slow
    got: list = []
    reader = threading.Thread(target=lambda: got.append(d.get_all_trials(study._study_id)))
    reader.start()
    assert started.wait(10)
    backend.get_all_trials = real
    optuna.delete_study(study_name="gone", storage=c)
    assert study._study_id not in service._reads
    release.set()
    reader.join(10)
    assert [t.state for t in got[0]] == [optuna.trial.TrialState.COMPLETE]
    assert study._study_id not in service._reads
    with pytest.raises(KeyError):
        c.get_all_trials(study._study_id)
    assert service._reads == {} and service._numbers == {}
