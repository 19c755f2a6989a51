"""The study an ``optuna-shape search`` worker runs in, checked before any trial starts: a study
made with other settings is refused, and the study ``--from-study`` names must have searched the
same design space with the same training recipe before its trainings are copied in.
"""

from __future__ import annotations

import json
from typing import Any

from optuna_shape.cli._common import CLIError, UsageError
from optuna_shape.store.records import config_difference

FLAGS_GIVE = "these flags give"

__all__: list[str] = []


def _check_study(study: Any, sampler: Any, training: dict[str, Any]) -> None:
    """Refuse to join a study made with other settings (before any trial starts)."""
    from optuna_shape.reporting.results import load_config

    try:
        stored = load_config(study)
    except ValueError:
        stored = None
    if stored is not None:
        mine = json.loads(json.dumps(sampler.config()))
        details = config_difference(stored, mine, ours=FLAGS_GIVE)
        if details:
            name = study.study_name
            hint = "use the same flags or another --study-name"
            if stored.get("space") == mine.get("space"):  # its trainings serve these flags
                from optuna_shape.reporting.outcomes import spare_study_name

                hint = (f"use the same flags, or start a new study from its trainings: "
                        f"--from-study {name} --study-name {spare_study_name(study)}")
            raise CLIError(f"study {name!r} was created with other settings ({details}); "
                           f"{hint}")
    old = study.user_attrs.get("training")
    if isinstance(old, dict):
        old = {"early_stopping": False, **old}  # studies stored before the setting existed
    mine_t = json.loads(json.dumps(training))
    if old is None:
        if stored is None and study.trials:
            raise CLIError(f"study {study.study_name!r} exists but holds no optuna-shape "
                           "search; use another --study-name")
        study.set_user_attr("training", mine_t)
    elif old != mine_t:
        details = config_difference(old, mine_t, ours=FLAGS_GIVE)
        raise CLIError(f"study {study.study_name!r} was trained with other settings "
                       f"({details}); use the same flags or another --study-name")


def _differences(theirs: dict[str, Any], mine: dict[str, Any], name: str) -> str:
    """``key: 'name' has X, these flags give Y`` for each differing key (one level into nested
    settings: ``config.epochs``)."""
    return config_difference(theirs, mine, theirs=f"{name!r} has", ours=FLAGS_GIVE, nested=True)


def _source_study(name: str, study_name: str, storage: Any, url: str, sampler: Any,
                  training: dict[str, Any]) -> Any:
    """The study ``--from-study`` names, checked before the new study is created: an
    optuna-shape search made by ``optuna-shape search`` with the same design space and training
    settings (early stopping aside: it does not change the trainings' recipe).

    Raises:
        UsageError: ``name`` is the study being searched.
        CLIError: no such study, not an optuna-shape search, made by Python code (no training
            settings stored), or searched with another design space or training settings.
    """
    import optuna

    from optuna_shape.cli._common import resolve_study_name
    from optuna_shape.reporting.results import load_config

    if name == study_name:
        raise UsageError(f"--from-study {name} names the study being searched: give the new "
                         "study another --study-name")
    resolve_study_name(storage, name, url)  # CLIError naming the studies there
    source = optuna.load_study(study_name=name, storage=storage)
    try:
        cfg = load_config(source)
    except ValueError as exc:
        raise CLIError(f"--from-study {name}: {exc}") from None
    mine = json.loads(json.dumps(sampler.config()))
    if cfg.get("space") != mine.get("space"):
        raise CLIError(f"--from-study {name}: that study searched another design space "
                       f"({_differences(cfg['space'], mine['space'], name)}); give the same "
                       "--family, --depth, --width and --precision")
    theirs = source.user_attrs.get("training")
    if not isinstance(theirs, dict):
        raise CLIError(f"--from-study {name}: that study was not made by `optuna-shape search` "
                       "(no training settings stored), so its trainings may not match these; "
                       "copy them in Python with osh.copy_trainings(source, target)")
    # the recipe must match; whether a search stops trainings early does not change them
    theirs = {k: v for k, v in theirs.items() if k != "early_stopping"}
    mine_t = {k: v for k, v in json.loads(json.dumps(training)).items()
              if k != "early_stopping"}
    if theirs != mine_t:
        raise CLIError(f"--from-study {name}: its trainings used other settings "
                       f"({_differences(theirs, mine_t, name)}); give the same training flags")
    return source


def _copy_from(source: Any, study: Any, console: Any) -> int:
    """Copy the finished trainings and measurements of ``source`` into ``study`` when it has
    no trials yet (a study that has some — copied by an earlier run or another worker —
    resumes as it is); returns the trainings copied."""
    import optuna_shape as osh

    if study.trials:
        return 0
    try:
        n = osh.copy_trainings(source, study)
    except ValueError:  # another worker copied them first
        return 0
    if console is not None:
        console.print(f"started from {n} trainings of study {source.study_name!r} "
                      "(--max-trainings counts them)", highlight=False, soft_wrap=True)
    return n
