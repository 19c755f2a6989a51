"""Model families: how a shape becomes a network, and how many parameters it has.

``WideResNet`` (a torch module) is imported on first use, so sizing a design space needs no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optuna_shape.families.registry import Family, get_family, list_families, register_family
from optuna_shape.families.wrn_size import wrn_param_count

if TYPE_CHECKING:
    from optuna_shape.families.wrn import WideResNet

__all__ = [
    "Family",
    "WideResNet",
    "get_family",
    "list_families",
    "register_family",
    "wrn_param_count",
]


def __getattr__(name: str) -> Any:
    if name == "WideResNet":
        from optuna_shape.families.wrn import WideResNet

        return WideResNet
    raise AttributeError(f"module 'optuna_shape.families' has no attribute {name!r}")
