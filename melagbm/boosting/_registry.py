"""The backends melagbm boosts with, and the adapter that serves a name or an estimator instance."""

from __future__ import annotations

from typing import Any

from ._adapter import BoosterAdapter
from ._lightgbm import LightGBMAdapter
from ._xgboost import XGBoostAdapter

__all__ = ["ADAPTERS", "BOOSTERS", "adapter_for", "booster_kind"]

#: name -> adapter, in the order the docs list them.
ADAPTERS: dict[str, BoosterAdapter] = {adapter.name: adapter for adapter in (LightGBMAdapter(), XGBoostAdapter())}
BOOSTERS = tuple(ADAPTERS)


def adapter_for(booster: Any) -> BoosterAdapter:
    """The adapter for ``booster``: a name ("lightgbm", "xgboost") or an estimator from either library."""
    if isinstance(booster, str):
        if booster not in ADAPTERS:
            raise ValueError(f"booster must be one of {BOOSTERS} or an estimator, got {booster!r}")
        return ADAPTERS[booster]
    for adapter in ADAPTERS.values():
        if adapter.owns(booster):
            return adapter
    raise TypeError(
        f"booster must be 'lightgbm', 'xgboost' or an LGBMClassifier/XGBClassifier instance, "
        f"got {type(booster).__name__}"
    )


def booster_kind(estimator: Any) -> str:
    """"lightgbm" or "xgboost" for an estimator instance from either library."""
    return adapter_for(estimator).name
