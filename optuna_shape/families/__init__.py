"""Model families: how a shape becomes a network, and how many parameters it has."""

from optuna_shape.families.registry import Family, get_family, list_families, register_family
from optuna_shape.families.wrn import WideResNet, wrn_param_count

__all__ = [
    "Family",
    "WideResNet",
    "get_family",
    "list_families",
    "register_family",
    "wrn_param_count",
]
