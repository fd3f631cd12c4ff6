"""Stage 4, explanation: exact tree SHAP per feature and per feature family.

Plots are in ``melagbm.explain.plots``, the report folder in ``melagbm.explain.report``.
"""

from .contributions import FAMILY_ORDER, family_importance, group_explanation, make_explanation, tree_contributions

__all__ = ["FAMILY_ORDER", "family_importance", "group_explanation", "make_explanation", "tree_contributions"]
