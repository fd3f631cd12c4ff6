"""The facts of a model card, each computed at fit from the training rows and the fitted steps.

Nothing here is free text about the data: every number comes from the rows a model was fitted on, its
out-of-fold predictions, or its fitted steps. The fixed sentences (intended use, what was not measured)
are the library's statements about every melagbm model and say so.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CARD_SCHEMA", "HIGH_REFERRAL_RATE", "INTENDED_USE", "NEAR_CHANCE_AUC", "NOT_MEASURED",
           "attach_cross_validation", "build_card", "image_sizes", "lone_lesions", "operating_point", "performance",
           "short_confidence_words", "training_data", "weakness"]

#: Bump when a key of the card changes meaning. 2: the operating point's figures are cross-fitted
#: (``operating_point["estimate"]``); ``performance`` holds threshold-free metrics only.
CARD_SCHEMA = 2
#: A model is called weak when the lower 95 % bound of its out-of-fold ROC AUC is at most this ...
NEAR_CHANCE_AUC = 0.6
#: ... or when its threshold would refer at least this share of all lesions while clearing fewer of the others.
HIGH_REFERRAL_RATE = 0.5
#: What every melagbm model is for, and is not (the library's statement, the same on every card).
INTENDED_USE = (
    "Research and decision support: estimates the probability that a dermoscopic image of a skin lesion, with "
    "the patient's age, sex and the lesion's body site, shows a melanoma, to help decide which lesions to refer "
    "for a dermatologist's assessment. Not a diagnostic device: not cleared by any regulator, not evaluated "
    "prospectively, and never a replacement for a clinician's examination or histopathology."
)
#: What a fit cannot know, stated on every card.
NOT_MEASURED = (
    "Performance is internal: estimated out of fold on the training data, never on an external population.",
    "Skin tone (Fitzpatrick type) is not recorded by melagbm: performance across skin tones is unknown.",
    "Only the kinds of images in the training data were seen: performance on other imaging (for example "
    "clinical photographs without a dermatoscope) is unknown.",
)
_BOOTSTRAP = 1000
_SHOWN_VALUES = 20  # at most this many categories of a field are listed (the rest counted together)


def image_sizes(images: Sequence[Any]) -> dict[str, Any]:
    """Width and height (minimum, median, maximum, in pixels) of the images, read from their headers.

    Parameters
    ----------
    images : sequence
        Paths, bytes, arrays or PIL images.

    Returns
    -------
    sizes : dict
        ``{"width": [min, median, max], "height": [...], "read": n}``; images whose header cannot be read are
        not counted (``read`` says how many were).
    """
    from PIL import Image

    widths, heights = [], []
    for item in images:
        try:
            if isinstance(item, np.ndarray):
                height, width = item.shape[:2]
            elif isinstance(item, Image.Image):
                width, height = item.size
            else:
                source = io.BytesIO(item) if isinstance(item, (bytes, bytearray)) else Path(item)
                with Image.open(source) as image:  # the header only: nothing is decoded
                    width, height = image.size
        except (OSError, TypeError, ValueError):
            continue
        widths.append(int(width))
        heights.append(int(height))
    if not widths:
        return {"width": None, "height": None, "read": 0}
    spread = (lambda values: [int(np.min(values)), float(np.median(values)), int(np.max(values))])
    return {"width": spread(widths), "height": spread(heights), "read": len(widths)}


def training_data(
    y: np.ndarray,
    encoded_metadata: pd.DataFrame,
    families: dict[str, str],
    *,
    ids: dict[str, pd.Series],
    split_groups: np.ndarray | None,
    images: Sequence[Any] | None,
    skipped: int,
    datasets: list[str],
) -> dict[str, Any]:
    """Who and what a model was fitted on: rows, melanomas, patients and lesions, age, sex, site, image sizes.

    Parameters
    ----------
    y : ndarray of 0/1
        The training labels (1 = melanoma), after unreadable images were skipped.
    encoded_metadata : DataFrame
        The metadata encoder's output for those rows (``age__years``, ``sex__category``, ``site__general``).
    families : dict
        Its column -> family ("age", "sex", "site", "metadata").
    ids : dict
        "patients" / "lesions" -> their id column for those rows (where the data had one).
    split_groups : ndarray or None
        The ids the internal splits were grouped by.
    images : sequence or None
        The training images (None: a metadata-only model).
    skipped : int
        Rows dropped as unreadable.
    datasets : list of str
        Dataset names the data carried (``X.attrs["dataset"]``, set by melagbm's loaders).
    """
    facts: dict[str, Any] = {
        "datasets": datasets,
        "rows": int(len(y)),
        "melanomas": int(np.sum(y == 1)),
        "prevalence": float(np.mean(y == 1)) if len(y) else None,
        "skipped_unreadable": int(skipped),
        **{kind: int(column.nunique()) for kind, column in ids.items()},
        "split_groups": None if split_groups is None else int(len(np.unique(split_groups))),
    }
    for column, family in families.items():
        values = encoded_metadata[column]
        if family == "age":
            known = pd.to_numeric(values, errors="coerce").dropna()
            facts["age"] = None if known.empty else {
                "median": float(known.median()), "q1": float(known.quantile(0.25)),
                "q3": float(known.quantile(0.75)), "min": float(known.min()), "max": float(known.max()),
                "missing": int(len(values) - len(known)),
            }
        elif family in ("sex", "site"):
            facts[family] = _counts(values.astype("string").fillna("missing"))
    if images is not None:
        facts["image_size"] = image_sizes(images)
    return facts


def _counts(values: pd.Series) -> dict[str, int]:
    counts = values.value_counts()
    shown = {str(value): int(count) for value, count in counts.iloc[:_SHOWN_VALUES].items()}
    if len(counts) > _SHOWN_VALUES:
        shown["(other values)"] = int(counts.iloc[_SHOWN_VALUES:].sum())
    return shown


def performance(
    y: np.ndarray, probability: np.ndarray, threshold: float | None, groups: np.ndarray | None, *, folds: int,
    pooled_by_lesion: bool, seed: int,
) -> dict[str, Any]:
    """Out-of-fold metrics with 95 % bootstrap CIs (resampled by group): ROC AUC, pAUC above 80 % TPR,
    sensitivity at 90 % specificity, Brier score, and mean probability against prevalence.

    Parameters
    ----------
    y : ndarray of 0/1
    probability : ndarray
        Out-of-fold calibrated melanoma probabilities (the model's own reading of each row).
    threshold : float or None
        An operating threshold whose sensitivity and specificity are read off the same predictions (the card
        of melagbm 0.1). None, as fit passes it: the operating point's figures are estimated on rows that did
        not choose it (:func:`operating_point`).
    groups : ndarray or None
        The split groups (the bootstrap draws whole groups).
    folds : int
        How many folds made the out-of-fold predictions.
    pooled_by_lesion : bool
        Whether a lesion's images were read together (as predict reads them).
    seed : int
        Seed of the bootstrap.
    """
    from ..evaluation.metrics import metrics_table

    predicted = None if threshold is None else (probability >= threshold).astype(int)
    table = metrics_table(y, probability, predicted=predicted, groups=groups, top_k=None,
                          n_bootstrap=_BOOTSTRAP, random_state=seed)
    metrics = _card_metrics(table)
    return {
        "method": f"{folds}-fold out-of-fold predictions inside fit, folds "
                  + ("grouped" if groups is not None else "NOT grouped (no patient or lesion ids)")
                  + (", a lesion's images pooled" if pooled_by_lesion else ""),
        "folds": int(folds),
        "rows": int(len(y)),
        "confidence": 0.95,
        "bootstrap": _BOOTSTRAP,
        "metrics": metrics,
        "mean_probability": float(np.mean(probability)),
        "prevalence": float(np.mean(y == 1)),
    }


def operating_point(
    threshold: float, *, target_sensitivity: float | None, sensitivity_confidence: float | None,
    calibration: str | None, estimate: Any,
) -> dict[str, Any]:
    """The card's operating point: the threshold, the rule that chose it, and what it does on rows that did not
    choose it (``estimate``, a :class:`~melagbm.referral.ReferralEstimate`, or None)."""
    return {"threshold": float(threshold), "target_sensitivity": target_sensitivity,
            "sensitivity_confidence": sensitivity_confidence if target_sensitivity is not None else None,
            "calibration": calibration, "estimate": None if estimate is None else estimate.to_dict()}


def lone_lesions(performance_facts: dict[str, Any] | None, point: dict[str, Any]) -> dict[str, Any]:
    """The card's ``lone_lesions``: how the model scores a lesion whose patient has no other lesion in the call,
    with the model fitted without patient context that scores it (its out-of-fold ``performance`` and
    ``operating_point``, as the card gives the model's own)."""
    return {"scored_by": "a model fitted on the same rows without patient context, with its own calibration and "
                         "threshold (a lesion alone has no other lesion of its patient to be compared with)",
            "performance": performance_facts, "operating_point": point}


def short_confidence_words(achieved: float, asked: float) -> str:
    """A confidence short of the one asked, in percent, with a decimal where whole percents would read as the asked
    one ("94.8 %" for 0.948 of 0.95, "47 %" for 0.47)."""
    whole = f"{100 * achieved:.0f}"
    return f"{whole} %" if whole != f"{100 * asked:.0f}" else f"{np.floor(1000 * achieved) / 10:.1f} %"


def weakness(
    performance_facts: dict[str, Any] | None, point: dict[str, Any], melanomas: int, *, scoring: str = ""
) -> str | None:
    """One line saying that a model is weak, with its out-of-fold ROC AUC and referral rate and what to do; None
    when none is bad: the AUC's lower 95 % bound at most ``NEAR_CHANCE_AUC``, the threshold referring at least
    ``HIGH_REFERRAL_RATE`` of all lesions while clearing fewer than that share of the others, or too few melanomas
    for the threshold to keep the target sensitivity with the confidence asked.

    Parameters
    ----------
    performance_facts : dict or None
        The card's ``performance`` (None: no out-of-fold predictions, nothing to judge).
    point : dict
        The card's ``operating_point``.
    melanomas : int
        Melanomas the model was fitted on.
    scoring : str, default=""
        Which lesions the figures are about, where not all ("lesions sent alone").
    """
    if performance_facts is None:
        return None
    auc = performance_facts["metrics"].get("roc_auc") or {}
    estimate = point.get("estimate") or {}
    referred, cleared = estimate.get("referral_rate") or {}, estimate.get("specificity") or {}
    near_chance = auc.get("ci_low") is not None and auc["ci_low"] <= NEAR_CHANCE_AUC
    refers_most = (referred.get("value") is not None and referred["value"] >= HIGH_REFERRAL_RATE
                   and cleared.get("value") is not None and cleared["value"] < HIGH_REFERRAL_RATE)
    achieved, asked = estimate.get("achieved_confidence"), point.get("sensitivity_confidence")
    short = achieved is not None and asked is not None and achieved < asked - 1e-9
    if not (near_chance or refers_most or short):
        return None
    auc_words = (f"out-of-fold ROC AUC {auc['value']:.3f} (95 % CI {auc['ci_low']:.3f}-{auc['ci_high']:.3f})"
                 if auc.get("value") is not None else "out-of-fold ROC AUC unknown")
    referral_words = (f"at {100 * point['target_sensitivity']:.0f} % sensitivity it would refer "
                      f"{100 * referred['value']:.0f} % of lesions (95 % CI {100 * referred['ci_low']:.0f}-"
                      f"{100 * referred['ci_high']:.0f} %)"
                      if referred.get("value") is not None else "no referral rate was estimated")
    confidence_words = (f"; with {estimate.get('melanoma_units')} melanomas (patients or lesions) its threshold "
                        f"keeps {100 * point['target_sensitivity']:.0f} % sensitivity with "
                        f"{short_confidence_words(achieved, asked)} confidence, not the {100 * asked:.0f} % asked"
                        if short else "")
    subject = f"Weak model for {scoring}" if scoring else "Weak model"
    return (f"{subject}: {auc_words}; {referral_words}{confidence_words}. Fit on more melanomas (this fit saw "
            f"{melanomas}), lower target_sensitivity, or try other encoders before using its referrals.")


_CARD_METRICS = ("roc_auc", "pauc_80", "sens_at_spec90", "sensitivity", "specificity", "referral_rate", "brier")


def _card_metrics(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The card's metrics (value, 95 % CI, label) from a metrics table as ``metrics_table`` gives it."""
    return {name: {"value": _number(row["value"]), "ci_low": _number(row["ci_low"]),
                   "ci_high": _number(row["ci_high"]), "label": str(row["label"])}
            for name, row in table.iterrows() if name in _CARD_METRICS}


def attach_cross_validation(model: Any, result: Any, *, folds: int, seed: int) -> None:
    """Write a cross-validation of ``model``'s settings on its training data (``cross_validate``'s result, as
    ``melagbm evaluate`` reports it) into ``model.model_card_["cross_validation"]``.

    Parameters
    ----------
    model : FusionClassifier
        The model fitted on the same rows.
    result : CVResult
        What :func:`melagbm.evaluation.cross_validate` gave for the same rows, settings and seed.
    folds : int
        Its number of folds.
    seed : int
        Its ``random_state``.
    """
    grouped = bool(result.info.get("grouped", True))
    model.model_card_["cross_validation"] = {
        "method": f"{folds}-fold cross-validation, the whole fit repeated in each fold (melagbm evaluate), folds "
                  + ("grouped" if grouped else "NOT grouped (no patient or lesion ids)"),
        "folds": int(folds), "seed": int(seed), "rows": int(len(result.oof)),
        "metrics": _card_metrics(result.metrics),
    }


def _number(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def build_card(
    *,
    model: dict[str, Any],
    data: dict[str, Any],
    performance_facts: dict[str, Any] | None,
    operating_point: dict[str, Any],
    encoders: list[dict[str, Any]],
    warnings: list[str],
    versions: dict[str, str | None],
    lone_lesions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card: every section, with the limits that follow from the training data (``lone_lesions`` only for a
    model with a lone-lesion model)."""
    card = {
        "schema": CARD_SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "intended_use": INTENDED_USE,
        "model": model,
        "training_data": data,
        "performance": performance_facts,
        "operating_point": operating_point,
        "encoders": encoders,
        "warnings": warnings,
        "limits": data_limits(data, encoders) + list(NOT_MEASURED),
        "libraries": versions,
    }
    if lone_lesions is not None:
        card["lone_lesions"] = lone_lesions
    return card


def data_limits(data: dict[str, Any], encoders: list[dict[str, Any]]) -> list[str]:
    """The populations and images a model was not trained on, from its training data's facts."""
    limits = []
    age = data.get("age")
    if age:
        limits.append(f"Ages seen in training: {age['min']:g} to {age['max']:g} years (median {age['median']:g}); "
                      "patients outside that range were not seen.")
    else:
        limits.append("No age was known for the training rows: age takes no part in its predictions.")
    for field in ("sex", "site"):
        seen = [value for value in data.get(field, {}) if value not in ("missing", "unknown", "(other values)")]
        if seen:
            limits.append(f"{field.capitalize()} values seen in training: {', '.join(seen)}; others read as unknown.")
    size = data.get("image_size")
    if size and size.get("width"):
        limits.append(f"Training images were {size['width'][0]}-{size['width'][2]} px wide and "
                      f"{size['height'][0]}-{size['height'][2]} px high.")
    if data.get("datasets"):
        limits.append(f"Trained on {', '.join(data['datasets'])} only.")
    if any(encoder.get("non_commercial") for encoder in encoders):
        limits.append("An encoder's weights are licensed for non-commercial use only: so is this model.")
    return limits
