"""Optuna's RDB storage with a study's trials read, and new trials' attributes written, without
SQLAlchemy's ORM.

Optuna's cache in front of an RDB storage re-reads every unfinished trial whenever a worker
reads the study, and Optuna reads them through its ORM models: six queries, then one Python
object per row, each tracked by a session, before the trials are built. With many workers that
is a busy storage's largest cost: about 40 % of the gRPC proxy's busy time in a 16-worker search.
Creating a trial from a template (every queued training: its slot, stage, fixed params and the
dashboard's attributes, fifteen or so) writes each attribute as Optuna writes one into an
existing trial: a query for the trial, then an upsert — two statements per attribute.
:class:`LeanRDBStorage` is Optuna's ``RDBStorage`` with the same reads made from plain rows of
the same tables (SQLAlchemy Core): the same ``FrozenTrial`` objects for less than half the CPU;
and a new trial's attributes inserted in one statement per table, in Optuna's transaction: the
same rows. Everything else — reading one trial, every other write, the queue pop, heartbeats,
the schema and its migrations — is Optuna's, and so is a read the plain rows cannot make (a
database error) or one asked for inside one of Optuna's transactions (it must be made in it).
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Container, Iterable, Iterator
from typing import Any

import optuna
import sqlalchemy
from optuna import distributions
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState

__all__ = ["LeanRDBStorage", "read_trials"]

_TRIALS = models.TrialModel.__table__
_STUDIES = models.StudyModel.__table__
_PARAMS = models.TrialParamModel.__table__
_VALUES = models.TrialValueModel.__table__
_USER = models.TrialUserAttributeModel.__table__
_SYSTEM = models.TrialSystemAttributeModel.__table__
_STEPS = models.TrialIntermediateValueModel.__table__


def _local(utc_naive: Any) -> Any:
    """A stored (naive UTC) time as Optuna's ORM model hands it out: naive local time."""
    if utc_naive is None:
        return None
    return utc_naive.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)


def read_trials(engine: sqlalchemy.engine.Engine, where: Any) -> list[FrozenTrial]:
    """The trials matching ``where`` (a condition on Optuna's ``trials`` table), ordered by
    trial id, built as Optuna's ``RDBStorage`` builds them, from one transaction."""
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.select(_TRIALS.c.trial_id, _TRIALS.c.number, _TRIALS.c.state,
                              _TRIALS.c.datetime_start, _TRIALS.c.datetime_complete)
            .where(where).order_by(_TRIALS.c.trial_id)).all()
        if not rows:
            conn.commit()
            return []
        # the rows of the trials just read, by their ids (as the ORM's loads): a condition on
        # the state read again could miss a trial whose state changed since
        ids = [r[0] for r in rows]
        params: dict[int, list[tuple[str, float, str]]] = {}
        for tid, name, value, dist in _rows(
                conn, ids, _PARAMS, _PARAMS.c.param_name, _PARAMS.c.param_value,
                _PARAMS.c.distribution_json, order=_PARAMS.c.param_id):
            params.setdefault(tid, []).append((name, value, dist))
        values: dict[int, dict[int, float]] = {}
        for tid, objective, value, kind in _rows(conn, ids, _VALUES, _VALUES.c.objective,
                                                 _VALUES.c.value, _VALUES.c.value_type):
            values.setdefault(tid, {})[objective] = \
                models.TrialValueModel.stored_repr_to_value(value, kind)
        user = _attrs(conn, _USER, ids)
        system = _attrs(conn, _SYSTEM, ids)
        steps: dict[int, dict[int, float]] = {}
        for tid, step, value, kind in _rows(conn, ids, _STEPS, _STEPS.c.step,
                                            _STEPS.c.intermediate_value,
                                            _STEPS.c.intermediate_value_type):
            steps.setdefault(tid, {})[step] = \
                models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(value, kind)
        conn.commit()  # end the read's transaction (a SQLite file's lock with it)
    parsed: dict[str, distributions.BaseDistribution] = {}
    out = []
    for tid, number, state, start, complete in rows:
        ps, ds = {}, {}
        for name, value, dist_json in params.get(tid, ()):
            dist = parsed.get(dist_json)
            if dist is None:
                dist = parsed[dist_json] = distributions.json_to_distribution(dist_json)
            ps[name] = dist.to_external_repr(value)
            ds[name] = dist
        by_objective = values.get(tid)
        out.append(FrozenTrial(
            number=number, state=state, value=None,
            values=None if not by_objective else [by_objective[k] for k in sorted(by_objective)],
            datetime_start=_local(start), datetime_complete=_local(complete),
            params=ps, distributions=ds, user_attrs=user.get(tid, {}),
            system_attrs=system.get(tid, {}), intermediate_values=steps.get(tid, {}),
            trial_id=tid))
    return out


_CHUNK = 500  # ids per query, as the ORM's loads (databases limit a statement's parameters)


def _rows(conn: Any, ids: list[int], table: sqlalchemy.Table, *columns: Any,
          order: Any = None) -> Iterator[Any]:
    """``(trial_id, *columns)`` of ``table``'s rows of the trials ``ids``, by ``order``
    within each chunk of ids (every trial's rows come from one chunk)."""
    for i in range(0, len(ids), _CHUNK):
        query = sqlalchemy.select(table.c.trial_id, *columns).where(
            table.c.trial_id.in_(ids[i:i + _CHUNK]))
        yield from conn.execute(query if order is None else query.order_by(order))


def _attrs(conn: Any, table: sqlalchemy.Table, ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for tid, key, value_json in _rows(conn, ids, table, table.c.key, table.c.value_json):
        out.setdefault(tid, {})[key] = json.loads(value_json)
    return out


class LeanRDBStorage(optuna.storages.RDBStorage):
    """Optuna's ``RDBStorage`` whose reads of a study's trials, and whose writes of a new
    trial's attributes, skip the ORM (module docstring); everything else is Optuna's — reading
    one trial too, which Optuna also does inside its own transactions. Takes ``RDBStorage``'s
    arguments."""

    def _get_prepared_new_trial(self, study_id: int, template_trial: FrozenTrial | None,
                                session: Any) -> models.TrialModel:
        """Optuna's new trial (in Optuna's transaction, under its lock on the study), with the
        template's user and system attributes inserted in one statement per table instead of
        a query and an upsert per attribute: the trial was created in this transaction, so no
        attribute of it exists to update. Other databases than SQLite and PostgreSQL get
        Optuna's code."""
        if template_trial is None or self.engine.name not in ("sqlite", "postgresql") or \
                not (template_trial.user_attrs or template_trial.system_attrs):
            return super()._get_prepared_new_trial(study_id, template_trial, session)
        bare = copy.copy(template_trial)
        bare.user_attrs, bare.system_attrs = {}, {}
        trial = super()._get_prepared_new_trial(study_id, bare, session)
        for table, attrs in ((_USER, template_trial.user_attrs),
                             (_SYSTEM, template_trial.system_attrs)):
            if attrs:
                session.execute(table.insert(), [
                    {"trial_id": trial.trial_id, "key": key, "value_json": json.dumps(value)}
                    for key, value in attrs.items()])
        return trial

    def _get_trials(self, study_id: int, states: Container[TrialState] | None,
                    included_trial_ids: set[int], trial_id_greater_than: int
                    ) -> list[FrozenTrial]:
        """Optuna's ``_get_trials`` (what its cache reads): the study's trials in ``states``
        that are among ``included_trial_ids`` or newer than ``trial_id_greater_than``."""
        included = [i for i in included_trial_ids if i <= trial_id_greater_than]
        where = _TRIALS.c.study_id == study_id
        if states is not None:
            assert isinstance(states, Iterable)
            where = where & _TRIALS.c.state.in_(list(states))
        if included and trial_id_greater_than > -1:
            where = where & sqlalchemy.or_(_TRIALS.c.trial_id.in_(included),
                                           _TRIALS.c.trial_id > trial_id_greater_than)
        elif trial_id_greater_than > -1:
            where = where & (_TRIALS.c.trial_id > trial_id_greater_than)
        if not self._in_session():
            try:
                trials = read_trials(self.engine, where)
                if trials or self._study_exists(study_id):
                    return trials
            except sqlalchemy.exc.SQLAlchemyError:
                pass  # Optuna's read falls back (too many ids) or raises its own error
        return super()._get_trials(study_id, states, included_trial_ids, trial_id_greater_than)

    def _in_session(self) -> bool:
        """Whether this thread is inside one of Optuna's database transactions: a read made
        there must be made in it (on a SQLite file a read from another connection would wait
        for the lock this thread holds)."""
        registry = self.scoped_session.registry
        return registry.has() and self.scoped_session().in_transaction()

    def _study_exists(self, study_id: int) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(sqlalchemy.select(_STUDIES.c.study_id)
                                 .where(_STUDIES.c.study_id == study_id)).first()
            conn.commit()
        return found is not None
