"""Boosting: one adapter per backend (LightGBM, XGBoost) behind the steps that make, fit and read a booster.

A difference between the libraries (defaults, device, early stopping, margins, SHAP contributions,
model files, Dask training) lives in its adapter (``_lightgbm.py``, ``_xgboost.py``), never as an
``if kind == ...`` elsewhere. A new backend is one new adapter registered in ``_registry.py``.
"""

from ._adapter import BoosterAdapter
from ._average import BoosterAverage, averaged, members_of
from ._lightgbm import LightGBMAdapter
from ._registry import ADAPTERS, BOOSTERS, adapter_for, booster_kind
from ._step import BoostingStep, n_rounds
from ._training import contributions, fit_booster, make_booster, margin
from ._xgboost import XGBoostAdapter

__all__ = [
    "ADAPTERS",
    "BOOSTERS",
    "BoosterAdapter",
    "BoosterAverage",
    "BoostingStep",
    "LightGBMAdapter",
    "XGBoostAdapter",
    "adapter_for",
    "averaged",
    "booster_kind",
    "contributions",
    "fit_booster",
    "make_booster",
    "margin",
    "members_of",
    "n_rounds",
]
