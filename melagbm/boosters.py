"""Deprecated: moved to :mod:`melagbm.boosting` (one adapter per backend); this module goes in the next release."""

from __future__ import annotations

import warnings

from .boosting import ADAPTERS, BOOSTERS, booster_kind, fit_booster, make_booster

__all__ = ["BOOSTERS", "DEFAULT_PARAMS", "booster_kind", "fit_booster", "make_booster"]

#: Each backend's defaults, now ``melagbm.boosting.ADAPTERS[name].default_params``.
DEFAULT_PARAMS = {name: adapter.default_params for name, adapter in ADAPTERS.items()}

warnings.warn(
    "melagbm.boosters is deprecated and will be removed in the next release: import from melagbm.boosting",
    DeprecationWarning,
    stacklevel=2,
)
