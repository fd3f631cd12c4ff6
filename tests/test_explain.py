"""SHAP explanations on real data: exact, additive, grouped by family, with importance intervals and plots."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import shap  # noqa: E402

from melagbm import FusionClassifier  # noqa: E402
from melagbm.boosting import margin as _margin  # noqa: E402
from melagbm.cli import main  # noqa: E402
from melagbm.datasets import load_isic2020  # noqa: E402
from melagbm.explain import family_importance  # noqa: E402
from melagbm.explain.plots import plot_beeswarm, plot_dependence, plot_importance, plot_site_cohorts  # noqa: E402
from melagbm.explain.report import write_explanation_report  # noqa: E402


def shap_reference(booster, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """shap's own (values, base values) for ``booster``; for boosters averaged (n_seeds > 1), the mean of each
    member's (TreeSHAP is linear in the model)."""
    explained = [shap.TreeExplainer(member)(features) for member in getattr(booster, "members", [booster])]
    return (np.mean([e.values for e in explained], axis=0),
            np.mean([np.ravel(e.base_values) for e in explained], axis=0))


@pytest.fixture(scope="module")
def fused_models(ham_sample) -> dict[str, FusionClassifier]:
    """Default fused models (image score, age, sex, site, lesion features) for both boosters, each image scored
    alone: these tests hold the values against shap's own on the booster's table (pooled explanations:
    tests/test_lesion_pooling.py)."""
    X, y, groups = ham_sample
    return {booster: FusionClassifier(booster=booster, random_state=0, lesion_col=None).fit(X, y, groups=groups)
            for booster in ("lightgbm", "xgboost")}


@pytest.fixture(scope="module")
def isic_metadata(isic_root):
    """2,000 rows of the real ISIC 2020 metadata with patient ids (no images)."""
    X, y, groups = load_isic2020(isic_root, metadata="ISIC_2020_Training_GroundTruth.csv", image_dir=None)
    rows = np.random.default_rng(0).choice(len(X), 2000, replace=False)
    return X.iloc[rows].assign(patient_id=groups.iloc[rows].to_numpy()), y.iloc[rows], groups.iloc[rows]


@pytest.mark.parametrize("booster", ["lightgbm", "xgboost"])
def test_values_add_up_to_the_margin_per_feature_and_per_family(fused_models, ham_sample, booster) -> None:
    X, _, _ = ham_sample
    model = fused_models[booster]
    rows = X.iloc[:120]
    margin = _margin(model.booster_, model.transform_features(rows))
    explanation = model.explain(rows)
    grouped = model.explain(rows, grouped=True)
    assert explanation.values.shape == (120, len(model.feature_names_))
    assert list(explanation.feature_names) == model.feature_names_
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values, margin, atol=1e-4)
    np.testing.assert_allclose(grouped.values.sum(axis=1) + grouped.base_values, margin, atol=1e-4)
    assert list(grouped.feature_names) == [
        "image", "lesion size", "lesion shape", "lesion colour", "age", "sex", "site"
    ]
    table = model.transform_features(rows)
    assert str(table["site__general"].dtype) == "category" and str(table["sex__category"].dtype) == "category"


@pytest.mark.parametrize("booster", ["lightgbm", "xgboost"])
def test_additivity_holds_where_the_trees_split_on_categories(isic_metadata, booster) -> None:
    X, y, _ = isic_metadata
    model = FusionClassifier(  # 300 rounds without early stopping: deep enough to split on every column
        image_col=None, booster=booster, early_stopping=False, booster_params={"n_estimators": 300},
        calibration=None, target_sensitivity=None, random_state=0,
    ).fit(X, y)
    table, alone = model.transform_features(X), model.lone_lesions(X)  # a patient's only lesion: the lone model's
    lone = model.lone_lesion_model_
    margin = np.where(alone, _margin(lone.booster_, table[lone.feature_names_]), _margin(model.booster_, table))
    explanation = model.explain(X)
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values, margin, atol=1e-4)
    grouped = model.explain(X, grouped=True)
    np.testing.assert_allclose(grouped.values.sum(axis=1) + grouped.base_values, margin, atol=1e-4)
    for categorical in ("sex__category", "site__general"):  # the categorical splits carry part of the margin
        assert np.abs(explanation[:, categorical].values).mean() > 1e-3, categorical
    head = X.iloc[:200]  # patient context comes from the rows given, so both explain the same 200
    table, alone, values = model.transform_features(head), model.lone_lesions(head), model.explain(head).values
    assert alone.any() and not alone.all()
    reference, _ = shap_reference(model.booster_, table[~alone])
    np.testing.assert_allclose(values[~alone], reference, atol=1e-4)
    lone_reference, _ = shap_reference(lone.booster_, table.loc[alone, lone.feature_names_])
    np.testing.assert_allclose(values[np.ix_(alone, table.columns.get_indexer(lone.feature_names_))], lone_reference,
                               atol=1e-4)


@pytest.mark.parametrize("booster", ["lightgbm", "xgboost"])
def test_matches_shap_tree_explainer(fused_models, ham_sample, booster) -> None:
    X, _, _ = ham_sample
    model = fused_models[booster]
    rows = X.iloc[:60]
    features = model.transform_features(rows)
    assert len(model.booster_.members) == model.n_seeds == 5  # the default averages five boosters
    values, base_values = shap_reference(model.booster_, features)
    ours = model.explain(rows)
    np.testing.assert_allclose(ours.values, values, atol=1e-4)
    np.testing.assert_allclose(ours.base_values, base_values, atol=1e-4)


def test_grouped_data_keeps_one_column_families_and_blanks_summed_ones(fused_models, ham_sample) -> None:
    X, _, _ = ham_sample
    model = fused_models["lightgbm"]
    rows = X.iloc[:50]
    grouped = model.explain(rows, grouped=True)
    names = list(grouped.feature_names)
    np.testing.assert_allclose(grouped.data[:, names.index("age")], rows["age"].to_numpy(dtype=float))
    assert list(grouped.display_data[:, names.index("site")]) == list(model.transform_features(rows)["site__general"])
    assert np.isnan(grouped.data[:, names.index("lesion size")]).all()  # a sum of several measurements
    score = model.transform_features(rows)["image__score"].to_numpy()
    np.testing.assert_allclose(grouped.data[:, names.index("image")], score)  # one column: the probe's score
    per_feature = model.explain(rows)
    lesion_size = [n for n in model.feature_names_ if model.feature_families_[n] == "lesion size"]
    np.testing.assert_allclose(
        grouped.values[:, names.index("lesion size")], per_feature[:, lesion_size].values.sum(axis=1)
    )


def test_image_family_of_many_columns_has_no_data(ham_sample) -> None:
    X, y, groups = ham_sample
    model = FusionClassifier(
        backbone="tf_efficientnet_lite0", image_encoding="probe+pca", n_components=8, lesion_features=False,
        calibration=None, random_state=0, lesion_col=None,
    ).fit(X, y, groups=groups)
    grouped = model.explain(X.iloc[:30], grouped=True)
    assert list(grouped.feature_names)[0] == "image" and len(model.family_to_columns_["image"]) == 9
    assert np.isnan(grouped.data[:, 0]).all()
    margin = _margin(model.booster_, model.transform_features(X.iloc[:30]))
    np.testing.assert_allclose(grouped.values.sum(axis=1) + grouped.base_values, margin, atol=1e-4)


def test_multiclass_explanation_has_one_slice_per_class(isic_metadata) -> None:
    X, y, _ = isic_metadata
    age = X["age"].fillna(50).to_numpy()
    labels = np.where(y.to_numpy() == 1, "melanoma", np.select([age < 35, age < 55], ["young", "middle"], "old"))
    model = FusionClassifier(image_col=None, patient_col=None, random_state=0, n_iter_no_change=20).fit(
        X.drop(columns="patient_id"), labels
    )
    rows = X.drop(columns="patient_id").iloc[:100]
    explanation = model.explain(rows)
    assert explanation.values.shape == (100, 3, 4)  # rows, features (age, sex, site), classes
    margin = _margin(model.booster_, model.transform_features(rows))
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values, margin, atol=1e-4)
    grouped = model.explain(rows, grouped=True)
    assert grouped.values.shape == (100, 3, 4)
    age_effect = explanation.values[:, 0, :]  # age separates the age classes: its values differ by class
    assert np.abs(age_effect).mean() > 0 and not np.allclose(age_effect[:, 1], age_effect[:, 2])
    assert set(model.feature_importance(rows, n_bootstrap=50).index) == {"age", "sex", "site"}
    with pytest.raises(ValueError, match="several classes"):
        plot_beeswarm(grouped, show=False)
    plt.close("all")


def test_feature_importance_resamples_patients(isic_metadata) -> None:
    X, y, groups = isic_metadata
    model = FusionClassifier(image_col=None, random_state=0).fit(X, y)
    assert model.patient_col_ == "patient_id"
    importance = model.feature_importance(X, n_bootstrap=300)
    assert list(importance.columns) == ["mean_abs_shap", "ci_low", "ci_high", "share"]
    assert set(importance.index) == {"age", "sex", "site", "patient context"}
    assert importance["mean_abs_shap"].is_monotonic_decreasing
    assert importance["share"].sum() == pytest.approx(1.0)
    assert (importance["ci_low"] <= importance["mean_abs_shap"]).all()
    assert (importance["mean_abs_shap"] <= importance["ci_high"]).all()
    used = importance["mean_abs_shap"] > 0  # a family the trees never split on has a zero-width interval
    assert used.sum() >= 3 and (importance["ci_high"] - importance["ci_low"])[used].gt(0).all()
    grouped = model.explain(X, grouped=True)
    expected = np.abs(grouped.values).mean(axis=0)
    np.testing.assert_allclose(importance.loc[list(grouped.feature_names), "mean_abs_shap"], expected)
    # resampling whole patients, not rows: a patient's images move together, so intervals differ from rows'
    by_rows = family_importance(grouped, None, n_bootstrap=300)
    by_patients = family_importance(grouped, groups.to_numpy(), n_bootstrap=300)
    pd.testing.assert_frame_equal(importance, by_patients)
    assert not np.allclose(by_rows["ci_high"], by_patients.loc[by_rows.index, "ci_high"])
    with pytest.raises(ValueError, match="groups has 3 entries"):
        family_importance(grouped, ["a", "b", "c"])
    with pytest.raises(ValueError, match="missing values"):
        family_importance(grouped, np.where(np.arange(len(X)) == 5, None, groups.to_numpy()))


def test_unreadable_images_get_nan_values_and_are_left_out_of_importance(fused_models, ham_sample, tmp_path) -> None:
    X, _, _ = ham_sample
    model = fused_models["lightgbm"]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    rows = X.iloc[:20].copy()
    rows.iloc[3, rows.columns.get_loc("image")] = str(broken)
    model.set_params(on_bad_image="skip")
    try:
        with pytest.warns(UserWarning, match="could not be read|unreadable"):
            explanation = model.explain(rows)
        assert np.isnan(explanation.values[3]).all() and not np.isnan(np.delete(explanation.values, 3, 0)).any()
        with pytest.warns(UserWarning):
            importance = model.feature_importance(rows, n_bootstrap=0)
        assert importance["mean_abs_shap"].notna().all()
        with pytest.warns(UserWarning):
            report = write_explanation_report(model, rows, tmp_path / "report", n_bootstrap=50)
        assert "19 rows explained (1 left out: unreadable image)" in report.read_text()
        assert len(pd.read_csv(tmp_path / "report" / "shap_families.csv")) == 19
    finally:
        model.set_params(on_bad_image="raise")


def test_plots_draw_on_given_axes_and_return_them(fused_models, ham_sample) -> None:
    X, _, groups = ham_sample
    model = fused_models["lightgbm"]
    rows = X.iloc[:150]
    grouped = model.explain(rows, grouped=True)
    importance = model.feature_importance(rows, groups.iloc[:150], n_bootstrap=100)
    sizes = model.explain(rows)[:, "lesion_size__diameter_px"].data
    draws = [
        lambda ax: plot_importance(importance, ax=ax, show=False),
        lambda ax: plot_beeswarm(grouped, ax=ax, show=False),
        lambda ax: plot_dependence(grouped, "age", ax=ax, show=False),
        lambda ax: plot_dependence(grouped, "lesion size", values=sizes, label="diameter (px)", ax=ax, show=False),
        lambda ax: plot_site_cohorts(grouped, rows["site"], ax=ax, show=False),
    ]
    for draw in draws:
        figure, ax = plt.subplots()
        assert draw(ax) is ax
        assert ax.has_data() or ax.patches or ax.collections
        plt.close(figure)
    labels = [tick.get_text() for tick in plot_importance(importance, show=False).get_yticklabels()]
    assert labels == list(importance.index[::-1])
    plt.close("all")
    with pytest.raises(ValueError, match="not a column"):
        plot_dependence(grouped, "lesion diameter", show=False)


def test_cli_explain_writes_plots_and_report(fused_models, ham_sample, tmp_path) -> None:
    X, _, groups = ham_sample
    rows = X.iloc[:80]
    csv = rows.assign(image_name=[p.split("/")[-1] for p in rows["image"]], lesion_id=groups.iloc[:80].to_numpy())
    csv.drop(columns="image").to_csv(tmp_path / "meta.csv", index=False)
    images = str(pd.Series(rows["image"]).iloc[0]).rsplit("/", 1)[0]
    model_path = tmp_path / "model.melagbm"
    fused_models["lightgbm"].save(model_path)
    out = tmp_path / "explained"
    assert main(["explain", "--model", str(model_path), "--metadata", str(tmp_path / "meta.csv"), "--images", images,
                 "--out", str(out), "--group-col", "lesion_id", "--bootstrap", "100"]) == 0
    for name in ("importance.png", "beeswarm.png", "dependence_age.png", "dependence_lesion_size.png",
                 "site_cohorts.png", "importance.csv", "shap_families.csv", "report.md"):
        assert (out / name).stat().st_size > 100, name
    assert (out / "importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    importance = pd.read_csv(out / "importance.csv", index_col=0)
    assert set(importance.index) == {"image", "lesion size", "lesion shape", "lesion colour", "age", "sex", "site"}
    report = (out / "report.md").read_text()
    assert "Order of importance: " + ", ".join(importance.index) in report and "![beeswarm](beeswarm.png)" in report
    per_row = pd.read_csv(out / "shap_families.csv", index_col=0)
    assert len(per_row) == 80


def test_plots_say_what_they_show(fused_models, ham_sample) -> None:
    from melagbm.explain.plots import PUSH_LABEL, colour_by_value

    X, _, groups = ham_sample
    model = fused_models["lightgbm"]
    rows = X.iloc[:200]
    grouped = model.explain(rows, grouped=True)
    diameter = model.explain(rows)[:, "lesion_size__diameter_px"].data
    view = colour_by_value(grouped, ("lesion diameter (pixels)", diameter))
    labels = dict(zip(grouped.feature_names, view.feature_names))
    assert labels["age"] == "age (years)" and labels["sex"] == "sex (red male, blue female)"
    assert labels["site"] == "site (grey: categories)"
    assert labels["lesion shape"] == "lesion shape (grey: several columns)"  # each grey row says why
    assert labels["lesion size"] == "lesion size (colour: lesion diameter (pixels))"
    sex = list(grouped.feature_names).index("sex")
    shown = pd.Series(grouped.display_data[:, sex])
    np.testing.assert_array_equal(view.data[:, sex][shown == "male"], 1.0)  # red = male, whatever the codes
    np.testing.assert_array_equal(view.data[:, sex][shown == "female"], 0.0)
    np.testing.assert_array_equal(view.data[:, list(grouped.feature_names).index("lesion size")], diameter)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # grey rows are NaN by design: numpy's warning stays inside
        ax = plot_beeswarm(view, show=False)
    assert ax.get_title() and "push on the melanoma odds" in ax.get_xlabel()
    assert "sex (red male, blue female)" in [t.get_text() for t in ax.get_yticklabels()]
    assert any("Grey dots" in t.get_text() for t in ax.figure.texts)
    ax = plot_dependence(grouped, "age", show=False)
    assert ax.get_xlabel() == "age (years)" and "age" in ax.get_title()
    [counts] = [other for other in ax.figure.axes if other is not ax and other.get_ylabel() == "lesions (grey bars)"]
    ages = grouped.data[:, list(grouped.feature_names).index("age")]
    assert sum(bar.get_height() for bar in counts.patches) == np.isfinite(ages).sum()  # a count scale, every lesion
    assert counts.get_ylim()[1] >= 4 * max(bar.get_height() for bar in counts.patches)  # below the dots
    importance = model.feature_importance(rows, groups.iloc[:200], n_bootstrap=50)
    ax = plot_importance(importance, show=False)
    assert ax.get_xlabel().startswith(PUSH_LABEL) and any("mean |SHAP value|" in t.get_text() for t in ax.figure.texts)
    sites = rows["site"].fillna("unknown")
    counts = sites.value_counts().sort_values()
    min_rows = int(counts.iloc[1]) + 1  # the two smallest sites pooled: together at least min_rows
    ax = plot_site_cohorts(grouped, rows["site"], groups=groups.iloc[:200], min_rows=min_rows, show=False)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    pooled = sorted(counts[counts < min_rows].index)
    assert len(pooled) >= 2 and f"other: {', '.join(pooled)} (n={int(sites.isin(pooled).sum())})" in legend
    values = [t.get_text() for t in ax.texts]
    assert values and not any(v.startswith("+") for v in values)  # a mean magnitude has no sign
    assert ax.get_title() and ax.get_xlabel().startswith(PUSH_LABEL)
    bars = [container for container in ax.containers if hasattr(container, "errorbar")]
    assert bars and all(container.errorbar is not None for container in bars)  # every cohort's 95 % intervals
    assert any("95 % intervals from 200 resamples of patients or lesions" in t.get_text() for t in ax.figure.texts)
    smallest = int(counts.iloc[0])  # alone, the smallest site is too few even pooled: left out, and said
    ax = plot_site_cohorts(grouped, rows["site"], min_rows=smallest + 1, show=False)
    alone = sorted(counts[counts <= smallest].index)
    assert not any(t.get_text().startswith("other") for t in ax.get_legend().get_texts())
    assert any(f"Not shown: {', '.join(alone)} ({smallest} lesions" in t.get_text() for t in ax.figure.texts)
    plt.close("all")


def test_predict_proba_explained_is_both_answers_from_one_pass_over_the_images(fused_models, ham_sample,
                                                                              monkeypatch) -> None:
    X = ham_sample[0].iloc[:12]
    model = fused_models["lightgbm"]
    passes = []
    image_step = type(model.image_features_)
    original = image_step.embed
    monkeypatch.setattr(image_step, "embed", lambda self, *args, **kwargs: passes.append(1) or original(
        self, *args, **kwargs))
    proba, explanation = model.predict_proba_explained(X, grouped=True)
    assert len(passes) == 1  # the images went through the feature steps once (twice for the two calls below)
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-12)
    expected = model.explain(X, grouped=True)
    assert len(passes) == 3
    assert list(explanation.feature_names) == list(expected.feature_names)
    np.testing.assert_allclose(explanation.values, expected.values, atol=1e-12)
    np.testing.assert_allclose(explanation.base_values, expected.base_values, atol=1e-12)


def test_site_cohorts_draw_with_unreadable_rows_and_only_small_sites() -> None:
    import shap

    values = np.random.default_rng(0).normal(size=(12, 3))
    values[0] = np.nan  # an unreadable image: left out
    explanation = shap.Explanation(values=values, base_values=np.zeros(12), data=np.zeros((12, 3)),
                                   feature_names=["image", "age", "site"])
    sites = ["torso"] * 5 + ["head/neck"] * 4 + ["palms/soles"] * 3
    ax = plot_site_cohorts(explanation, sites, min_rows=20, show=False)  # every site small, 11 rows pooled
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["other: head/neck, palms/soles, torso (n=11)"]  # the only cohort is kept, not dropped
    plt.close("all")
