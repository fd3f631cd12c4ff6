"""How image embeddings enter the booster: a probe score, PCA components, or raw."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from .._progress import progress
from .._splits import stratified_group_splits
from ..embedding.embedder import embedding_feature_names

__all__ = ["IMAGE_FEATURE_MODES", "MAX_REPEATS", "MIN_DIAGNOSIS_ROWS", "ImageSignal", "diagnosis_targets",
           "is_score_column"]

#: "probe": an out-of-fold logistic-regression score; "pca": principal components;
#: "embedding": every embedding dimension; "probe+pca": the score and the components.
IMAGE_FEATURE_MODES = ("probe", "pca", "embedding", "probe+pca")

#: probe_C="cv" tries these multiples of the "auto" rule's C.
CV_C_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)

#: The most fold partitions ``n_repeats="auto"`` averages (for the smallest data).
MAX_REPEATS = 20

#: Diagnoses with fewer training rows are pooled, per label, before the probe learns the diagnoses.
MIN_DIAGNOSIS_ROWS = 20


class ImageSignal(BaseEstimator):
    """Turn embeddings into booster features, without leaking labels into them.

    In "probe" mode the training rows get out-of-fold scores (each row scored by a
    probe that never saw its group), so the booster learns how much to trust a
    score it will really see at predict time; new rows are scored by a probe fitted
    on all training rows.

    Parameters
    ----------
    mode : one of :data:`IMAGE_FEATURE_MODES`, default="probe"
    n_components : int, default=32
        Components kept in "pca" modes.
    probe_C : float, "auto" or "cv", default="auto"
        Inverse regularisation of the probe (on standardised embeddings). "auto" is
        2 / embedding width: the optimum on HAM10000 for 1,752 (Lite0) and 3,552
        (Lite0 + Lite2) dimensions; wider embeddings need stronger regularisation.
        "cv": the one of :data:`CV_C_FACTORS` x 2 / width whose out-of-fold scores (grouped,
        on the first fold partition) have the lowest log-loss, for encoders the rule was not
        measured on (``C_`` records it); two-class ``y`` only (with more classes, "auto").
    n_folds : int, default=5
        Folds for the out-of-fold probe scores.
    n_repeats : int or "auto", default=1
        Fold partitions the out-of-fold scores are averaged over (each with its own seed): steadier
        training scores on small data, at ``n_repeats`` times the probe fits. "auto": 10,000 // rows,
        between 1 and :data:`MAX_REPEATS` (20 up to 500 rows, 1 above 5,000).
    random_state : int, default=0
    prefix : str, default="image"
        Start of the output column names (``<prefix>__score``, ``<prefix>__pc00``, ...).
    verbose : int, default=0
        1: a progress line for the out-of-fold probe fits once they last a few seconds.
    """

    def __init__(
        self,
        *,
        mode: str = "probe",
        n_components: int = 32,
        probe_C: float | str = "auto",
        n_folds: int = 5,
        n_repeats: int | str = 1,
        random_state: int = 0,
        prefix: str = "image",
        verbose: int = 0,
    ) -> None:
        self.mode = mode
        self.n_components = n_components
        self.probe_C = probe_C
        self.n_folds = n_folds
        self.n_repeats = n_repeats
        self.random_state = random_state
        self.prefix = prefix
        self.verbose = verbose

    @staticmethod
    def _logistic(C: float) -> LogisticRegression:
        """The probe's logistic regression, for the final probe and each fold's."""
        return LogisticRegression(C=C, max_iter=3000)

    @classmethod
    def _probe(cls, C: float) -> Pipeline:
        return make_pipeline(StandardScaler(), cls._logistic(C))

    def _out_of_fold(self, C: float, basis: np.ndarray, probe_y: np.ndarray, y: np.ndarray,
                     groups: np.ndarray | None, seed: int) -> np.ndarray:
        """The probe's columns for each row, from a fold probe that never saw the row's group (fitted on
        ``basis``, the standardised embeddings in :func:`fold_basis`'s coordinates)."""
        oof = np.zeros((len(y), len(self._score_names())))
        for train, test in stratified_group_splits(y, groups, self.n_folds, seed):
            fold_probe = self._logistic(C).fit(basis[train], probe_y[train])
            oof[test] = self._scores(fold_probe, basis[test])
        return oof

    def _chosen_C(self, basis: np.ndarray, probe_y: np.ndarray, y: np.ndarray,
                  groups: np.ndarray | None, rule: float) -> tuple[float, np.ndarray]:
        """probe_C="cv": (the C whose out-of-fold melanoma scores have the lowest log-loss, those scores)."""
        from scipy.special import expit
        from sklearn.metrics import log_loss

        best = None
        for factor in CV_C_FACTORS:
            C = factor * rule
            oof = self._out_of_fold(C, basis, probe_y, y, groups, self.random_state)
            loss = log_loss(y == np.unique(y)[1], expit(oof[:, 0]), labels=[False, True])  # column 0: log-odds
            if best is None or loss < best[0]:
                best = (loss, C, oof)
        return best[1], best[2]

    def _score_names(self) -> list[str]:
        if getattr(self, "positive_classes_", None) is not None:  # the probe learnt the diagnoses
            others = [label for label in self.classes_ if label not in self.positive_classes_]
            return [f"{self.prefix}__score"] + [f"{self.prefix}__diagnosis_{_name_part(label)}" for label in others]
        if len(self.classes_) == 2:
            return [f"{self.prefix}__score"]
        return [f"{self.prefix}__score_{label}" for label in self.classes_]

    def _scores(self, probe: Pipeline | LogisticRegression, embeddings: np.ndarray) -> np.ndarray:
        """The probe's columns: its margin(s); with diagnoses, the log-odds of the positive ones and the
        log-probability of each other diagnosis (a fold's probe may have seen fewer diagnoses)."""
        if getattr(self, "positive_classes_", None) is None:
            return probe.decision_function(embeddings).reshape(len(embeddings), -1)
        proba = np.zeros((len(embeddings), len(self.classes_)))
        proba[:, np.searchsorted(self.classes_, probe.classes_)] = probe.predict_proba(embeddings)
        positive = np.isin(self.classes_, self.positive_classes_)
        clipped = np.clip(proba, 1e-12, 1.0)
        score = np.log(np.clip(proba[:, positive].sum(axis=1), 1e-12, 1 - 1e-12))
        score -= np.log(np.clip(proba[:, ~positive].sum(axis=1), 1e-12, 1.0))
        return np.column_stack([score, np.log(clipped[:, ~positive])])

    def fit_transform(
        self, embeddings: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, targets: np.ndarray | None = None
    ) -> pd.DataFrame:
        """Fit on training embeddings and return their (out-of-fold) features.

        Parameters
        ----------
        embeddings : ndarray of shape (n_samples, n_dims)
            The training rows' embeddings.
        y : ndarray of shape (n_samples,)
            Their labels.
        groups : ndarray of shape (n_samples,), default=None
            Patient or lesion ids: the out-of-fold folds never split a group. None: rows are independent.
        targets : ndarray of shape (n_samples,), default=None
            Each row's diagnosis, for two-class ``y``: the probe learns the diagnoses (those with fewer than
            :data:`MIN_DIAGNOSIS_ROWS` rows pooled per label) and gives ``<prefix>__score``, the log-odds of the
            diagnoses of label 1, and ``<prefix>__diagnosis_<name>``, the log-probability of each other one.

        Returns
        -------
        features : DataFrame
            One row per embedding: the out-of-fold probe score(s) and/or the PCA or embedding columns.
        """
        return self.fit_transform_tables(embeddings, y, groups, targets, n_tables=1)[0]

    def fit_transform_tables(
        self, embeddings: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
        targets: np.ndarray | None = None, *, n_tables: int,
    ) -> list[pd.DataFrame]:
        """:meth:`fit_transform` for ``n_tables`` boosters: each table's out-of-fold scores from its own fold
        partitions (table t averages the partitions seeded ``random_state + t * repeats`` onwards).

        Parameters
        ----------
        embeddings : ndarray of shape (n_samples, n_dims)
            The training rows' embeddings.
        y : ndarray of shape (n_samples,)
            Their labels.
        groups : ndarray of shape (n_samples,), default=None
            Patient or lesion ids (see :meth:`fit_transform`).
        targets : ndarray of shape (n_samples,), default=None
            Each row's diagnosis (see :meth:`fit_transform`).
        n_tables : int
            Versions of the training features; the first is :meth:`fit_transform`'s. Columns made
            without folds (PCA, embedding) are the same in each.

        Returns
        -------
        tables : list of DataFrame
            ``n_tables`` frames, one row per embedding, the columns of :meth:`transform`.
        """
        if self.mode not in IMAGE_FEATURE_MODES:
            raise ValueError(f"image_encoding must be one of {IMAGE_FEATURE_MODES}, got {self.mode!r}")
        self.classes_, self.positive_classes_ = np.unique(y), None
        probe_y = y
        if targets is not None:
            probe_y, positive = diagnosis_targets(targets, y)
            self.classes_, self.positive_classes_ = np.unique(probe_y), positive
            names = self._score_names()
            if len(set(names)) < len(names):
                raise ValueError(f"diagnosis_col: diagnoses {list(self.classes_)} give clashing column names {names}; "
                                 "spell each diagnosis one way")
        scores: list[pd.DataFrame] = [pd.DataFrame(index=range(len(y)))] * n_tables
        if "probe" in self.mode:
            repeats, first = self.repeats(len(y)), None
            rule = 2.0 / embeddings.shape[1]  # "auto"
            self.C_ = rule if self.probe_C in ("auto", "cv") else float(self.probe_C)
            basis = fold_basis(embeddings)
            if self.probe_C == "cv" and len(np.unique(y)) == 2:
                self.C_, first = self._chosen_C(basis, probe_y, y, groups, rule)
            oofs = [np.zeros((len(y), len(self._score_names()))) for _ in range(n_tables)]
            partitions = [(table, repeat) for table in range(n_tables) for repeat in range(repeats)]
            for table, repeat in progress(partitions, desc="image probe (out of fold)", unit="partition",
                                          verbose=self.verbose):
                seed = self.random_state + table * repeats + repeat
                part = first if seed == self.random_state and first is not None else self._out_of_fold(
                    self.C_, basis, probe_y, y, groups, seed)
                oofs[table] += part / repeats
            scores = [pd.DataFrame(oof, columns=self._score_names()) for oof in oofs]
            self.probe_ = self._probe(self.C_).fit(embeddings, probe_y)
        fixed = []
        if "pca" in self.mode:
            n = int(min(self.n_components, *embeddings.shape))
            self.pca_ = make_pipeline(StandardScaler(), PCA(n_components=n, random_state=self.random_state))
            fixed.append(self._pca_frame(self.pca_.fit_transform(embeddings)))
        if self.mode == "embedding":
            fixed.append(self._embedding_frame(embeddings))
        self.n_features_in_ = embeddings.shape[1]
        return [pd.concat([score, *fixed], axis=1) for score in scores]

    def repeats(self, n_rows: int) -> int:
        """The fold partitions averaged for ``n_rows`` training rows (``n_repeats`` with "auto" resolved).

        Parameters
        ----------
        n_rows : int
            Training rows.

        Returns
        -------
        int
            ``n_repeats``, or for "auto" 10,000 // ``n_rows`` clipped to 1 ... :data:`MAX_REPEATS`.
        """
        if self.n_repeats == "auto":
            return int(np.clip(10_000 // max(n_rows, 1), 1, MAX_REPEATS))
        if isinstance(self.n_repeats, bool) or not isinstance(self.n_repeats, (int, np.integer)) or self.n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer or 'auto', got {self.n_repeats!r}")
        return int(self.n_repeats)

    def transform(self, embeddings: np.ndarray) -> pd.DataFrame:
        """Features for new embeddings.

        Parameters
        ----------
        embeddings : ndarray of shape (n_samples, n_dims)
            Embeddings as wide as those given to :meth:`fit_transform`.

        Returns
        -------
        features : DataFrame
            One row per embedding, the columns of :meth:`fit_transform`.
        """
        parts = []
        if "probe" in self.mode:
            parts.append(pd.DataFrame(self._scores(self.probe_, embeddings), columns=self._score_names()))
        if "pca" in self.mode:
            parts.append(self._pca_frame(self.pca_.transform(embeddings)))
        if self.mode == "embedding":
            parts.append(self._embedding_frame(embeddings))
        return pd.concat(parts, axis=1)

    def _pca_frame(self, components: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(components, columns=[f"{self.prefix}__pc{i:02d}" for i in range(components.shape[1])])

    def _embedding_frame(self, embeddings: np.ndarray) -> pd.DataFrame:
        names = [f"{self.prefix}__{name.split('__', 1)[1]}" for name in embedding_feature_names(embeddings.shape[1])]
        return pd.DataFrame(embeddings, columns=names)


def fold_basis(embeddings: np.ndarray) -> np.ndarray:
    """The embeddings standardised (over all training rows) and, when there are fewer rows than dimensions,
    rotated into the span of the rows: ``U S`` of their SVD, one column per row.

    An L2-penalised logistic regression on any subset of the rows gives the same scores in either
    coordinates (its weights lie in the span of the rows, and the rotation keeps their norm), so the
    fold probes fit in n instead of d dimensions: on 650 rows of 3,552-wide embeddings, 5 times fewer
    operations per iteration.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_dims)
        The training rows' embeddings.

    Returns
    -------
    ndarray of shape (n_samples, min(n_samples, n_dims))
    """
    standardised = StandardScaler().fit_transform(embeddings)
    if len(standardised) >= standardised.shape[1]:
        return standardised
    left, singular, _ = np.linalg.svd(standardised, full_matrices=False)
    return left * singular


def diagnosis_targets(targets: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(the probe's target per row, the diagnoses of label 1) from each row's diagnosis and two-class label.

    Parameters
    ----------
    targets : ndarray of shape (n_samples,)
        Each row's diagnosis (text).
    y : ndarray of shape (n_samples,)
        Label codes 0/1.

    Returns
    -------
    probe_y : ndarray of shape (n_samples,)
        The diagnosis, or ``"other (label 0)"`` / ``"other (label 1)"`` for one with fewer than
        :data:`MIN_DIAGNOSIS_ROWS` rows.
    positive : list of str
        The probe's classes that mean label 1.

    Raises
    ------
    ValueError
        When ``y`` has other than two classes, or a diagnosis occurs with both labels.
    """
    diagnoses = pd.Series(np.asarray(targets, dtype=object)).astype(str).str.strip()
    labels = pd.Series(np.asarray(y))
    if labels.nunique() != 2:
        raise ValueError("diagnosis_col needs two classes (melanoma vs rest)")
    mixed = labels.groupby(diagnoses).nunique()
    if (mixed > 1).any():
        counts = pd.crosstab(diagnoses, labels).loc[mixed[mixed > 1].index]
        raise ValueError(
            f"diagnosis_col: diagnoses {list(counts.index)[:5]} occur with both labels ({counts.to_dict('index')}); "
            "a diagnosis must decide the label (e.g. 'mel' always 1)"
        )
    counts = diagnoses.value_counts()
    rare = diagnoses.map(counts) < MIN_DIAGNOSIS_ROWS
    probe_y = diagnoses.where(~rare, "other (label " + labels.astype(str) + ")").to_numpy(dtype=object)
    positive = sorted(set(probe_y[labels.to_numpy() == labels.max()]))
    return probe_y, positive


def is_score_column(column: str) -> bool:
    """Whether a feature-table column is an image signal's melanoma score (``image...__score``)."""
    return column.startswith("image") and column.endswith("__score")


def _name_part(label: str) -> str:
    """A diagnosis as part of a column name: lower case, runs of other characters as one "_"."""
    return re.sub(r"[^0-9a-z]+", "_", str(label).lower()).strip("_")
