"""Several fitted boosters read as one: their margins and SHAP contributions averaged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

from ._registry import adapter_for

__all__ = ["BoosterAverage", "averaged", "members_of"]


class BoosterAverage:
    """The mean of fitted boosters of one library (``FusionClassifier(n_seeds=k)``'s ``booster_``).

    Each member was fitted on its own version of the training table (image scores from its own
    probe fold partitions) and stopped early on its own validation split; the model is the mean
    of their margins, so small-data noise in any one of them is averaged away. Exact SHAP values
    of the mean are the mean of the members' (TreeSHAP is linear in the model).

    Parameters
    ----------
    members : list of LGBMClassifier or XGBClassifier
        Fitted classifiers of one library, on the same columns and classes.
    """

    def __init__(self, members: list[Any]) -> None:
        if not members:
            raise ValueError("BoosterAverage needs at least one member")
        kinds = {adapter_for(member).name for member in members}
        if len(kinds) > 1:
            raise ValueError(f"BoosterAverage members must come from one library, got {sorted(kinds)}")
        self.members = list(members)

    def __len__(self) -> int:
        return len(self.members)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def rounds(self) -> list[int]:
        """Boosting rounds of each member."""
        return [int(member.get_params()["n_estimators"]) for member in self.members]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The first member's parameters (the members share all but ``n_estimators`` and ``random_state``).

        Parameters
        ----------
        deep : bool, default=True
            Passed to the member's ``get_params``.

        Returns
        -------
        dict
            Parameter name -> value.
        """
        return self.members[0].get_params(deep=deep)

    def set_params(self, **params: Any) -> BoosterAverage:
        """Set ``params`` on every member; return self.

        Parameters
        ----------
        **params : dict
            Estimator parameters (for example ``device="cpu"``).

        Returns
        -------
        self : BoosterAverage
        """
        for member in self.members:
            member.set_params(**params)
        return self

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        """The mean of the members' raw margins: (n,) log-odds for two classes, (n, k) otherwise.

        Parameters
        ----------
        X : DataFrame
            Rows with the columns the members were fitted on.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        return np.mean([adapter_for(member).margin(member, X) for member in self.members], axis=0)

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """The mean of the members' exact SHAP contributions, shaped as the adapters give them.

        Parameters
        ----------
        X : DataFrame
            Rows to explain.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs, n_features + 1)
            Per output, each feature's contribution and (last) the base value.
        """
        return np.mean([adapter_for(member).contributions(member, X) for member in self.members], axis=0)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities of the mean margin (sigmoid for two classes, softmax otherwise).

        Parameters
        ----------
        X : DataFrame
            Rows to score.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        margin = self.margin(X)
        if margin.ndim == 1:
            positive = expit(margin)
            return np.column_stack([1.0 - positive, positive])
        return softmax(margin, axis=1)


def averaged(members: list[Any]) -> Any:
    """The booster a model holds for ``members``: the one booster itself, or the :class:`BoosterAverage` of several.

    Parameters
    ----------
    members : list of LGBMClassifier or XGBClassifier
        Fitted classifiers of one library.

    Returns
    -------
    LGBMClassifier, XGBClassifier or BoosterAverage
    """
    return members[0] if len(members) == 1 else BoosterAverage(members)


def members_of(booster: Any) -> list[Any]:
    """The boosters a model's ``booster_`` averages: a :class:`BoosterAverage`'s members, or the one booster.

    Parameters
    ----------
    booster : LGBMClassifier, XGBClassifier or BoosterAverage

    Returns
    -------
    list of LGBMClassifier or XGBClassifier
    """
    return booster.members if isinstance(booster, BoosterAverage) else [booster]
