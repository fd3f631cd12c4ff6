"""Model cards: what a fitted model was trained on, how well it did out of fold, and what it is not for.

Every fit computes its card (``FusionClassifier.model_card_``, a JSON-able dict); ``save`` writes it into the
model file, ``melagbm card MODEL`` prints it as Markdown (``--html``: a page).
"""

from .facts import CARD_SCHEMA, INTENDED_USE, NOT_MEASURED, attach_cross_validation, build_card, weakness
from .render import describe_rounds, operating_point_lines, to_html, to_markdown

__all__ = ["CARD_SCHEMA", "INTENDED_USE", "NOT_MEASURED", "attach_cross_validation", "build_card", "describe_rounds",
           "operating_point_lines", "to_html", "to_markdown", "weakness"]
