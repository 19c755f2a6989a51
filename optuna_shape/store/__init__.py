"""Every key optuna-shape writes into an Optuna storage, every Optuna-internal call, typed records.

This package is the only code that touches Optuna's storage internals (``study._storage``,
system attributes, ``get_all_trials(deepcopy=False)``, ``create_new_trial`` with a template
trial, heartbeats, the gRPC proxy). The sampler, the results API, the CLI, reporting and the
dashboard read the records decoded here.
Keys are prefixed ``osh:`` so they never clash with other samplers' data. Long JSON values are
split into chunks of at most 2045 characters, as Optuna's own samplers do, so they fit any RDB
backend.

Study system attributes:
    ``osh:config``                the search configuration (space, constraints, goal, policy…)
    ``osh:hw:<hash>``             the full hardware key measurements under ``<hash>`` were taken on
    ``osh:m:<hash>:<shape key>``  one shape's hardware measurements on that hardware
    ``osh:screened:<hash>``       screening on that hardware is complete
    ``osh:costscreen:<hash>``     how screening on that hardware predicted costs (counts, error)
    ``osh:fit``                   the accuracy model's fit and the goal-ordered candidates
    ``osh:result``                the answer, once the search has finished (final once written)
Trial system attributes (set when the trial is created, in the same storage call, or — for a
planning trial that takes a training itself — by :func:`claim_training`):
    ``fixed_params``              Optuna's own: ``{"depth": …, "width": …}`` of a planned training
    ``osh:slot``                  ``"<shape key>#<k>"``: the k-th training of that shape, or
                                  ``"screen:<hash>#1"`` for the screening task
    ``osh:stage``                 the stage the trial was planned in
    ``osh:heartbeat``             through Optuna's gRPC proxy only: the worker's last beat
                                  (:class:`optuna_shape.store.backends.HeartbeatGrpcStorageProxy`)
Trial user attributes (shown by optuna-dashboard, numbers sortable): ``stage``, ``params``,
``size_mb``, ``latency_ms``, ``energy_j``, ``predicted_accuracy``, ``predicted_std``,
``prediction_source``, ``reject_reason`` (screening rejected the shape), ``end_reason`` (why a
trial that does not train ended: stages ``plan``, ``duplicate``, ``screen``, ``stopped``),
``fail_reason``, ``interrupted`` (Ctrl-C stopped the training: not the shape's failure),
``constraint_<name>``; in a search over precisions ``accuracy_by_precision``
and ``test_accuracy_by_precision`` (``{precision: accuracy}``, written by the objective: the
trained fp32 network evaluated after conversion to each precision of the space, in the units of
the trial's value), ``precision_errors`` (``{precision: why it could not be converted}``) and
``precision`` (the candidate the policy proposed; the training serves every precision).
Measurements of a precision other than fp32 are stored under the candidate's key
(``osh:m:<hash>:d22-w2.5-int8``); fp32 measurements keep the shape's key.
A training stopped early by :class:`~optuna_shape.ShapePruner` (PRUNED) carries ``prune_reason``,
``projected_accuracy``, ``projected_std`` and ``pruned_epoch``, and the default objective writes
``planned_epochs``.

Modules (every name below is re-exported here: ``from optuna_shape import store as st``, then
``st.<name>``):
    :mod:`~optuna_shape.store.keys`          key and attribute names, chunked JSON study attributes
    :mod:`~optuna_shape.store.records`       the configuration, the fit and the result
    :mod:`~optuna_shape.store.measurements`  hardware measurements and screening marks
    :mod:`~optuna_shape.store.trials`        :class:`TrialRecord`, trial reads and writes
    :mod:`~optuna_shape.store.slots`         slot strings of queued trainings and screening
    :mod:`~optuna_shape.store.engine`        handles, the SQLite lock, trial counts, stale trials
    :mod:`~optuna_shape.store.copying`       a study's trainings and measurements into another
    :mod:`~optuna_shape.store.backends`      :func:`~optuna_shape.store.backends.open_storage`
    :mod:`~optuna_shape.store.attributes`    trial user attributes readable in optuna-dashboard
"""

from __future__ import annotations

from optuna_shape.store.copying import copy_trainings
from optuna_shape.store.engine import (
    exception_chain,
    fail_stale,
    has_heartbeat,
    is_in_memory,
    keep_alive,
    make_sqlite_atomic,
    rdb_engine,
    spread_pops,
    storage_of,
    study_id,
    trial_counts,
    trial_id,
)
from optuna_shape.store.keys import (
    ACCURACY_BY_PRECISION,
    CHUNK,
    CONFIG,
    FIT,
    INTERRUPTED,
    PLANNED_EPOCHS,
    PLANNING,
    PRECISION_ERRORS,
    PROJECTED_ACCURACY,
    PROJECTED_STD,
    PRUNE_REASON,
    PRUNED_EPOCH,
    RESULT,
    SLOT,
    STAGE,
    TEST_ACCURACY_BY_PRECISION,
    TRAIN_SECONDS,
    TRAINING_STAGES,
    candidate_from_key,
    cost_screen_key,
    hardware_hash,
    hardware_name_key,
    measurement_key,
    measurement_name,
    read_json,
    screened_key,
    set_study_user_attr,
    shape_from_key,
    study_attrs,
    write_json,
)
from optuna_shape.store.measurements import (
    CostScreenRecord,
    count_predicted,
    is_predicted,
    known_hardware,
    mark_screened,
    measurement_of,
    read_cost_screen,
    read_measurements,
    screened_hashes,
    store_measurements,
    write_cost_screen,
    write_hardware_name,
    write_measurement,
)
from optuna_shape.store.records import (
    FitRecord,
    ResultRecord,
    config_difference,
    read_config,
    read_fit,
    read_result,
    write_config,
    write_fit,
    write_result,
)
from optuna_shape.store.slots import (
    mark_interrupted,
    screen_slot,
    screened_hash,
    slot_index,
    slot_of,
    training_attempt,
    training_index,
)
from optuna_shape.store.trials import (
    TrialRecord,
    accuracy_by_precision,
    all_trials,
    claim_training,
    create_waiting_trial,
    curves,
    decode_trial,
    epoch_curve,
    frozen_trial,
    set_trial_system_attr,
    set_trial_user_attrs,
    trial_record,
    trial_state,
)

__all__ = [
    "copy_trainings",
    "ACCURACY_BY_PRECISION",
    "CHUNK",
    "CONFIG",
    "FIT",
    "INTERRUPTED",
    "PLANNED_EPOCHS",
    "PRECISION_ERRORS",
    "PROJECTED_ACCURACY",
    "PROJECTED_STD",
    "PRUNE_REASON",
    "PRUNED_EPOCH",
    "RESULT",
    "SLOT",
    "STAGE",
    "PLANNING",
    "TEST_ACCURACY_BY_PRECISION",
    "TRAIN_SECONDS",
    "TRAINING_STAGES",
    "accuracy_by_precision",
    "all_trials",
    "candidate_from_key",
    "claim_training",
    "config_difference",
    "cost_screen_key",
    "CostScreenRecord",
    "count_predicted",
    "create_waiting_trial",
    "curves",
    "decode_trial",
    "epoch_curve",
    "exception_chain",
    "fail_stale",
    "FitRecord",
    "frozen_trial",
    "hardware_hash",
    "hardware_name_key",
    "has_heartbeat",
    "is_in_memory",
    "is_predicted",
    "keep_alive",
    "known_hardware",
    "make_sqlite_atomic",
    "mark_interrupted",
    "mark_screened",
    "measurement_key",
    "measurement_name",
    "measurement_of",
    "rdb_engine",
    "read_config",
    "read_cost_screen",
    "read_fit",
    "read_json",
    "read_measurements",
    "read_result",
    "ResultRecord",
    "screen_slot",
    "screened_hash",
    "screened_hashes",
    "screened_key",
    "set_study_user_attr",
    "set_trial_system_attr",
    "set_trial_user_attrs",
    "shape_from_key",
    "slot_index",
    "slot_of",
    "spread_pops",
    "storage_of",
    "study_id",
    "store_measurements",
    "study_attrs",
    "training_attempt",
    "training_index",
    "trial_counts",
    "trial_id",
    "trial_record",
    "trial_state",
    "TrialRecord",
    "write_config",
    "write_cost_screen",
    "write_fit",
    "write_hardware_name",
    "write_json",
    "write_measurement",
    "write_result",
]
