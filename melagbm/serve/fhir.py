"""The service's answers as FHIR R4: a ``Bundle`` (type "collection") of one ``RiskAssessment`` per lesion."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..card.render import figure_words

__all__ = ["MELANOMA", "risk_assessment_bundle"]

#: The predicted outcome: SNOMED CT 372244006 |Malignant melanoma (disorder)|.
MELANOMA = {"coding": [{"system": "http://snomed.info/sct", "code": "372244006",
                        "display": "Malignant melanoma (disorder)"}], "text": "melanoma"}


def referral_rationale(result: dict[str, Any], card: dict[str, Any]) -> str:
    """The referral decision in words, with what the threshold did on patients that did not choose it (from the
    card's cross-fitted estimate; a card of melagbm 0.1 has none, and the rationale says so). A lesion scored alone
    is judged by the card's figures for lesions alone."""
    alone = result.get("alone") and card.get("lone_lesions")
    point = card["lone_lesions"]["operating_point"] if alone else card.get("operating_point")
    estimate = (point or {}).get("estimate")
    decision = "refer" if result["refer"] else "no referral"
    side = "at or above" if result["refer"] else "below"
    words = (f"{decision}: the melanoma probability {100 * result['probability']:.2f} % is {side} the referral "
             f"threshold {100 * result['threshold']:.2f} %")
    if not estimate:
        return words + "; what the threshold does on new patients was not estimated for this model"
    if alone:
        words += " for a lesion scored alone (no other lesion of its patient in the request: no patient context)"
    return (words + "; on patients that did not choose the threshold the model referred "
            f"{figure_words(estimate['sensitivity'])} of melanomas and cleared "
            f"{figure_words(estimate['specificity'])} of other lesions, referring "
            f"{figure_words(estimate['referral_rate'])} of all lesions")


def _assessment(result: dict[str, Any], lesion: dict[str, Any], card: dict[str, Any], issued: str) -> dict[str, Any]:
    patient = lesion.get("patient_id")  # never blank: the request schema reads a blank id as none
    subject = ({"identifier": {"value": str(patient)}} if patient is not None
               else {"display": "a patient not identified in the request"})
    drivers = ", ".join([f"{family} {value:+.2f}" for family, value in
                         sorted(result["contributions"].items(), key=lambda item: -abs(item[1]))]
                        + [f"{family}: {why}" for family, why in (result.get("not_available") or {}).items()])
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "method": {"text": f"melagbm {result.get('melagbm') or ''} model {result['model_id']}".replace("  ", " ")},
        "code": {"text": "melanoma risk of a skin lesion from a dermoscopic image and patient metadata"},
        "subject": subject,
        "occurrenceDateTime": issued,
        "prediction": [{
            "outcome": MELANOMA,
            # R4: "decimal values are expressed as percentages as well (max = 100)" (invariant ras-2)
            "probabilityDecimal": round(100 * float(result["probability"]), 4),
            "rationale": referral_rationale(result, card),
        }],
        "note": [
            {"text": f"What drove the model's score before calibration (SHAP, log-odds from a base of "
                     f"{result['base_value']:+.2f}): {drivers}."},
            {"text": card.get("intended_use") or "Decision support only; not a diagnostic device."},
        ],
    }
    if result["refer"]:
        resource["mitigation"] = "Refer the lesion for a dermatologist's assessment."
    return resource


def risk_assessment_bundle(results: list[dict[str, Any]], lesions: list[dict[str, Any]],
                           card: dict[str, Any] | None) -> dict[str, Any]:
    """The answers of one request as a FHIR R4 ``Bundle`` of ``RiskAssessment`` resources, in lesion order.

    Parameters
    ----------
    results : list of dict
        The service's answer for each lesion (probability, refer, threshold, contributions, ...).
    lesions : list of dict
        The request's lesions (their ``patient_id`` becomes the subject's identifier).
    card : dict or None
        The model's card (its out-of-fold sensitivity and specificity explain the referral).

    Returns
    -------
    bundle : dict
        A JSON-ready ``Bundle`` resource.
    """
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entries = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": _assessment(result, lesion, card or {}, issued)}
               for result, lesion in zip(results, lesions)]
    return {"resourceType": "Bundle", "type": "collection", "timestamp": issued, "entry": entries}
