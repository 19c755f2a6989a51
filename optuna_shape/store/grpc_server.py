"""The gRPC storage proxy's server: Optuna's, with one database read shared by concurrent reads.

Every worker's read of a study (Optuna's ``GetTrials``) makes Optuna's server read every
unfinished trial from the database and encode every trial it sends. With many workers those
reads arrive together, each one waiting behind the others for the same rows; the proxy's one
Python process was the busiest program of a 16-worker search. :class:`SharedReadService` answers
the reads that arrive while one is being made from the *next* single read, and encodes a trial
once per version of it. A worker's read of one trial (``GetTrial``: Optuna reads the trial it
just took, and the trial it just finished, a few times per training) is answered from the same
shared read of the trial's study, once the proxy has seen the trial in one. What a client
sees is unchanged: every answer comes from a database read that started after its request
arrived, so a worker reads its own writes and everything committed before it asked, as with
Optuna's server. The encoded trials are kept beside Optuna's cache of the decoded ones, about as
much memory again, with each trial's study and number; a study deleted through the proxy takes
its encoded trials, their numbers and its last read with it (a read in flight when it is
deleted keeps its own until it is answered, then nothing is left of it).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._grpc import servicer as grpc_servicer
from optuna.storages._grpc.auto_generated import api_pb2, api_pb2_grpc
from optuna.trial import FrozenTrial

__all__ = ["SharedReadService", "make_server"]


class _Reads:
    """Single-flight reads of one study: ``started`` reads begun, ``done`` the latest finished
    (its trials in ``trials``), ``busy`` while one runs; ``encoded``: trial id → (the version
    of the trial, its message)."""

    def __init__(self) -> None:
        self.started = 0
        self.done = 0
        self.busy = False
        self.trials: list[FrozenTrial] = []
        self.error: BaseException | None = None
        self.encoded: dict[int, tuple[FrozenTrial, Any]] = {}
        self.indexed = 0  # trials of this study whose id → number is in the service's index


class SharedReadService(grpc_servicer.OptunaStorageProxyService):
    """Optuna's storage service whose ``GetTrials`` and ``GetTrial`` share database reads
    (module docstring)."""

    def __init__(self, storage: BaseStorage) -> None:
        super().__init__(storage)
        self._cond = threading.Condition()
        self._reads: dict[int, _Reads] = {}
        self._numbers: dict[int, tuple[int, int]] = {}  # trial id → (study id, number)
        self.database_reads = 0
        """Reads of the study's trials made (for the benchmark and the tests)."""

    def _trials(self, study_id: int) -> tuple[list[FrozenTrial], _Reads]:
        """Every trial of the study, from a read that started after this call, and the
        study's reads (where its trials' messages are kept)."""
        with self._cond:
            r = self._reads.setdefault(study_id, _Reads())
            need = r.started + 1  # a read that begins after this request arrived
            while True:
                if r.done >= need:
                    if r.error is not None:
                        raise r.error
                    return r.trials, r
                if not r.busy:
                    break
                self._cond.wait()
            r.busy = True
            r.started += 1
            mine = r.started
        trials: list[FrozenTrial] = []
        error: BaseException | None = None
        try:
            trials = self._backend.get_all_trials(study_id, deepcopy=False)
        except BaseException as exc:  # noqa: BLE001 (handed to every request of this read)
            error = exc
        with self._cond:
            r.busy = False
            r.done, r.trials, r.error = mine, trials, error
            self.database_reads += 1
            if self._reads.get(study_id) is r:  # not deleted meanwhile
                for t in trials[r.indexed:]:  # ordered by number: the new ones at the end
                    self._numbers[t._trial_id] = (study_id, t.number)
                r.indexed = max(r.indexed, len(trials))
            if error is not None and self._reads.get(study_id) is r and not r.encoded:
                self._reads.pop(study_id)  # e.g. no such study: keep nothing of it
            self._cond.notify_all()
        if error is not None:
            raise error
        return trials, r

    @staticmethod
    def _encode(trial: FrozenTrial, reads: _Reads) -> Any:
        """The trial's message, encoded once per version (the cache hands out a new object
        whenever it reads a trial again), kept with its study's reads."""
        hit = reads.encoded.get(trial._trial_id)
        if hit is not None and hit[0] is trial:
            return hit[1]
        proto = grpc_servicer._to_proto_trial(trial)
        reads.encoded[trial._trial_id] = (trial, proto)
        return proto

    def DeleteStudy(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC's name)
        """Optuna's ``DeleteStudy``, then the study's last read and encoded trials are dropped
        (a long-running proxy serving many studies would otherwise keep every deleted one)."""
        reply = super().DeleteStudy(request, context)
        with self._cond:
            self._reads.pop(request.study_id, None)
            self._numbers = {k: v for k, v in self._numbers.items() if v[0] != request.study_id}
        return reply

    def GetTrial(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC's name)
        """Optuna's ``GetTrial`` of a trial this proxy has read before, answered from the next
        shared read of its study (a read that began after the request arrived, as for
        ``GetTrials``); others, as Optuna's service answers them."""
        where = self._numbers.get(request.trial_id)
        if where is not None:
            study_id, number = where
            try:
                trials, reads = self._trials(study_id)
            except KeyError:
                trials = []
            if number < len(trials) and trials[number]._trial_id == request.trial_id:
                return api_pb2.GetTrialReply(trial=self._encode(trials[number], reads))
        return super().GetTrial(request, context)

    def GetTrials(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC's name)
        """Optuna's ``GetTrials`` on a shared read."""
        study_id = request.study_id
        included = set(request.included_trial_ids)
        greater = request.trial_id_greater_than
        try:
            trials, reads = self._trials(study_id)
        except KeyError as e:
            import grpc

            context.abort(code=grpc.StatusCode.NOT_FOUND, details=str(e))
        return api_pb2.GetTrialsReply(trials=[
            self._encode(t, reads) for t in trials
            if t._trial_id > greater or t._trial_id in included])


def make_server(storage: BaseStorage, host: str, port: int,
                thread_pool: ThreadPoolExecutor | None = None) -> Any:
    """A gRPC server of ``storage`` (wrapped in Optuna's cache) with :class:`SharedReadService`,
    as Optuna's ``make_server`` builds one with its own service; call ``start()`` on it."""
    import grpc

    server = grpc.server(thread_pool or ThreadPoolExecutor(max_workers=10))
    service = SharedReadService(optuna.storages.get_storage(storage))
    api_pb2_grpc.add_StorageServiceServicer_to_server(service, server)
    server.add_insecure_port(f"{host}:{port}")
    server.service = service  # type: ignore[attr-defined]
    return server
