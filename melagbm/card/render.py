"""A model card as Markdown or as a self-contained HTML page, sections named after the TRIPOD+AI topics."""

from __future__ import annotations

import html
from typing import Any

from .facts import short_confidence_words

__all__ = ["describe_rounds", "figure_words", "lone_lesion_lines", "operating_point_lines", "to_html", "to_markdown"]


def _figure(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _metric_rows(performance: dict[str, Any]) -> list[str]:
    rows = ["| metric | value | 95 % CI |", "|---|---|---|"]
    for metric in performance["metrics"].values():
        interval = (f"[{_figure(metric['ci_low'])}, {_figure(metric['ci_high'])}]"
                    if metric["ci_low"] is not None else "n/a")
        rows.append(f"| {metric['label']} | {_figure(metric['value'])} | {interval} |")
    return rows


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{value} {count}" for value, count in counts.items())


def _data_lines(data: dict[str, Any]) -> list[str]:
    lines = [f"- Datasets: {', '.join(data['datasets']) or 'not named at fit'}",
             f"- Images (rows): {data['rows']}, of which melanomas: {data['melanomas']} "
             f"(prevalence {_figure(data['prevalence'])}); unreadable and skipped: {data['skipped_unreadable']}"]
    for kind in ("patients", "lesions"):
        if kind in data:
            lines.append(f"- {kind.capitalize()}: {data[kind]}")
    lines.append(f"- Internal splits grouped by: {data['split_groups']} groups" if data["split_groups"] is not None
                 else "- Internal splits NOT grouped: no patient or lesion ids")
    age = data.get("age")
    if age:
        lines.append(f"- Age (years): median {age['median']:g} (IQR {age['q1']:g}-{age['q3']:g}), range "
                     f"{age['min']:g}-{age['max']:g}, missing {age['missing']}")
    for field in ("sex", "site"):
        if data.get(field):
            lines.append(f"- {field.capitalize()}: {_counts(data[field])}")
    size = data.get("image_size")
    if size and size.get("width"):
        lines.append(f"- Image size (px): width {size['width'][0]}-{size['width'][2]} (median {size['width'][1]:g}), "
                     f"height {size['height'][0]}-{size['height'][2]} (median {size['height'][1]:g})")
    return lines


def to_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown.

    Parameters
    ----------
    card : dict
        A fitted model's ``model_card_``.

    Returns
    -------
    markdown : str
        The card's sections (warnings first, when there are any) as Markdown headings, lists and tables.
    """
    model, point, performance = card["model"], card["operating_point"], card["performance"]
    lines = [f"# Model card: {model['class']} (melagbm {model['melagbm']})", "",
             f"Fitted {card['created']}.", ""]
    if card["warnings"]:
        lines += ["## Warnings", ""] + [f"- **{warning}**" for warning in card["warnings"]] + [""]
    lines += ["## Intended use and target population", "", card["intended_use"], ""]
    lines += ["## Training data (source, participants, outcome)", "",
              "Outcome: melanoma (1) against every other diagnosis (0), as labelled in the training data.", ""]
    lines += _data_lines(card["training_data"]) + [""]
    lines += ["## Predictors and model", "",
              f"- Booster: {model['booster']}, {describe_rounds(model.get('member_rounds') or [model['rounds']])}, "
              f"{model['features']} features",
              "- Feature families: " + ", ".join(f"{family} ({count})" for family, count in model["families"].items()),
              ""]
    lines += ["| encoder | weights (SHA-256 prefix) | source | licence | runtime |", "|---|---|---|---|---|"]
    for encoder in card["encoders"]:
        licence = encoder["license"] + (" (NON-COMMERCIAL use only)" if encoder["non_commercial"] else "")
        lines.append(f"| {encoder['backbone']} | {encoder['weights']} | {encoder['source']} | {licence} | "
                     f"{encoder['runtime']} |")
    lines += ["", "## Performance (internal validation)", ""]
    if performance is None:
        lines += ["Not estimated: the fit made no out-of-fold predictions (no calibration or threshold, or too few "
                  "melanomas for folds).", ""]
    else:
        lines += [f"{performance['method']}; {performance['rows']} rows; 95 % CIs from {performance['bootstrap']} "
                  "bootstrap resamples of whole groups.", ""] + _metric_rows(performance)
        lines += ["", f"Calibration: mean out-of-fold probability {_figure(performance['mean_probability'])} "
                      f"against a prevalence of {_figure(performance['prevalence'])}.", ""]
    evaluation = card.get("cross_validation")
    if evaluation is not None:
        lines += ["## Performance (cross-validation)", "",
                  f"{evaluation['method']}; {evaluation['rows']} rows; seed {evaluation['seed']}.", ""]
        lines += _metric_rows(evaluation) + [""]
    lines += ["## Operating point", ""] + operating_point_lines(point, performance)
    calibration = point["calibration"] or "not calibrated (the booster's own probability)"
    lines += [f"Probabilities: {calibration}.", ""]
    if card.get("lone_lesions"):
        lines += ["## A lesion sent alone", ""] + lone_lesion_lines(card["lone_lesions"], performance)
    lines += ["## Limits", ""] + [f"- {limit}" for limit in card["limits"]] + [""]
    lines += ["## Libraries", "", ", ".join(f"{name} {version}" for name, version in card["libraries"].items()
                                            if version is not None), ""]
    return "\n".join(lines)


def figure_words(figure: dict[str, Any]) -> str:
    """"15 % (95 % CI 8-54 %)" from a card figure (value, ci_low, ci_high); "unknown" without a value."""
    if figure.get("value") is None:
        return "unknown"
    if figure.get("ci_low") is None or figure.get("ci_high") is None:
        return f"{100 * figure['value']:.0f} %"
    return f"{100 * figure['value']:.0f} % (95 % CI {100 * figure['ci_low']:.0f}-{100 * figure['ci_high']:.0f} %)"


def operating_point_lines(point: dict[str, Any], performance: dict[str, Any] | None) -> list[str]:
    """The operating point in sentences: the threshold, its rule, and what it does on patients that did not choose
    it (a card of melagbm 0.1 read its figures off the predictions that chose it, and says so).

    Parameters
    ----------
    point : dict
        The card's ``operating_point``.
    performance : dict or None
        The card's ``performance`` (a card of melagbm 0.1 keeps the threshold's figures there).

    Returns
    -------
    lines : list of str
    """
    threshold = f"Refer at a probability of {point['threshold']:.3g} or more"
    target = point.get("target_sensitivity")
    if target is None:
        return [f"{threshold} (no sensitivity target)."]
    estimate = point.get("estimate")
    confidence = point.get("sensitivity_confidence")
    if estimate is None:
        old = ((performance or {}).get("metrics") or {}).get("sensitivity")
        chosen = f"{threshold}: the threshold chosen out of fold for {100 * target:.0f} % sensitivity"
        if old is None or "estimate" in point:
            return [f"{chosen}; what it does on new patients was not estimated (too few melanomas for folds)."]
        return [f"{chosen}. Its figures were read off the predictions that chose it (it caught "
                f"{100 * old['value']:.0f} % of the training melanomas there) and are optimistic for new patients: "
                "refit with this melagbm for an estimate that holds."]
    target_words = f"{100 * target:.0f} % sensitivity"
    rule = (f"chosen on out-of-fold predictions to keep {target_words} for new patients with "
            f"{100 * confidence:.0f} % confidence" if confidence is not None
            else f"the highest out-of-fold threshold that reached {target_words} (no confidence margin)")
    achieved = estimate.get("achieved_confidence")
    if confidence is not None and achieved is not None and achieved < confidence - 1e-9:
        rule += (f"; with {estimate.get('melanoma_units')} melanomas (patients or lesions) no threshold can promise "
                 f"that, and this one keeps it with {short_confidence_words(achieved, confidence)} confidence")
    lines = [f"{threshold}: the threshold {rule}.", "",
             f"On patients that did not choose it ({estimate['method']}): melanomas referred "
             f"{figure_words(estimate['sensitivity'])}; other lesions not referred "
             f"{figure_words(estimate['specificity'])}; all lesions referred "
             f"{figure_words(estimate['referral_rate'])}."]
    if confidence is not None:
        lines += ["", f"What the confidence costs: the plain rule (the highest threshold that reached "
                      f"{100 * target:.0f} % on the training predictions) would clear "
                      f"{figure_words(estimate['plain_specificity'])} of other lesions, and keep its target for new "
                      "patients about half the time."]
    return lines + [""]


def lone_lesion_lines(lone: dict[str, Any], performance: dict[str, Any] | None) -> list[str]:
    """How the model scores a lesion whose patient has no other lesion in the call, in sentences: what scores it,
    its out-of-fold ROC AUC beside the model's own, and its operating point.

    Parameters
    ----------
    lone : dict
        The card's ``lone_lesions``.
    performance : dict or None
        The card's ``performance`` (the model's own, with patient context).

    Returns
    -------
    lines : list of str
    """
    lines = [f"A lesion whose patient has no other lesion in the same call has no patient context: it is scored by "
             f"{lone['scored_by']}.", ""]
    auc = ((lone.get("performance") or {}).get("metrics") or {}).get("roc_auc")
    own = ((performance or {}).get("metrics") or {}).get("roc_auc")
    if auc and auc.get("value") is not None:
        beside = (f", against {_figure(own['value'])} for lesions scored with their patient's others"
                  if own and own.get("value") is not None else "")
        lines += [f"Out-of-fold ROC AUC of lesions scored alone {_figure(auc['value'])} (95 % CI "
                  f"{_figure(auc['ci_low'])}-{_figure(auc['ci_high'])}){beside}.", ""]
    return lines + operating_point_lines(lone["operating_point"], lone.get("performance"))


def to_html(card: dict[str, Any]) -> str:
    """The card as one self-contained HTML page (no scripts, no external resources).

    Parameters
    ----------
    card : dict
        A fitted model's ``model_card_``.

    Returns
    -------
    page : str
        The Markdown rendering as HTML, every value from the card escaped.
    """
    body: list[str] = []
    open_block = ""  # "table" or "ul" while one is open
    for line in to_markdown(card).splitlines():
        block = "table" if line.startswith("|") else "ul" if line.startswith("- ") else ""
        if open_block and block != open_block:
            body.append(f"</{open_block}>")
            open_block = ""
        if block and not open_block:
            body.append(f"<{block}>")
            open_block = block
        if block == "table":
            cells = [html.escape(cell.strip()) for cell in line.strip("|").split("|")]
            if set("".join(cells)) <= {"-"}:
                continue
            tag = "th" if body[-1] == "<table>" else "td"
            body.append("<tr>" + "".join(f"<{tag}>{cell}</{tag}>" for cell in cells) + "</tr>")
        elif block == "ul":
            text = html.escape(line[2:])
            if text.startswith("**") and text.endswith("**"):
                text = f"<strong>{text[2:-2]}</strong>"
            body.append(f"<li>{text}</li>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
    if open_block:
        body.append(f"</{open_block}>")
    title = html.escape(f"Model card: {card['model']['class']}")
    style = ("body{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
             "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def describe_rounds(rounds: list[int]) -> str:
    """"52 rounds", or for several boosters "5 boosters averaged (34-65 rounds each)".

    Parameters
    ----------
    rounds : list of int
        Boosting rounds of each booster the model averages (cards before melagbm 0.2 hold one total).

    Returns
    -------
    str
    """
    if len(rounds) == 1:
        return f"{rounds[0]} rounds"
    return f"{len(rounds)} boosters averaged ({min(rounds)}-{max(rounds)} rounds each)"
