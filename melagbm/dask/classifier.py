"""DaskFusionClassifier: FusionClassifier's distributed twin."""

from __future__ import annotations

import os
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._device import resolve_device
from .._splits import SEED_MAX
from ..boosting import BoostingStep, averaged
from ..card.assembly import dataset_names, encoder_leaks, model_card
from ..classifier import FITTED_ATTRIBUTES, ID_COLUMNS, FusionClassifier
from ..features.inputs import InputGate
from ..lone_lesions import LoneLesionModel
from ..pipeline import DecisionHead, Rows, StepOptions
from ..pipeline.making import decision_step, feature_steps_to_fit, keep_fitted_steps
from ._frames import GROUP, LABEL, ROW, as_dask_frame, attach, check_ids_whole, client, is_dask, number_rows
from .embedding import on_this_worker
from .executor import DaskExecutor
from .training import fit_distributed, margins

__all__ = ["DaskFusionClassifier", "load"]

_HELD_OUT, _FOLD, _WEIGHT = "__melagbm_validation__", "__melagbm_fold__", "__melagbm_weight__"


def _predicted(part: pd.DataFrame, model: FusionClassifier, method: str, meta: pd.DataFrame) -> pd.DataFrame:
    """``model.<method>`` on one partition, its embedders loaded once per worker on the worker's device."""
    if len(part) == 0:
        return meta
    if model.image_features_ is not None:
        model.image_features_.embedders_ = [on_this_worker(embedder) for embedder in model.embedders_]
    values = np.asarray(getattr(model, method)(part))
    return pd.DataFrame(values.reshape(len(part), -1), index=part.index, columns=meta.columns).astype(meta.dtypes)


#: The column of ``_first_pass`` holding each row's image path (None where the image is not a path).
_IMAGE_PATH = "__melagbm_image_path__"


def _paths_only(images: pd.Series) -> pd.Series:
    """Each image that is a path, as a string; None for bytes and arrays (they stay on the workers)."""
    return images.map(lambda item: os.fspath(item) if isinstance(item, (str, os.PathLike)) else None).astype(object)


class DaskFusionClassifier(FusionClassifier):
    """:class:`~melagbm.FusionClassifier` on a Dask cluster: the same parameters, the same fitted attributes.

    ``fit`` takes a Dask DataFrame (and labels from it, e.g. ``ddf["target"]``) and uses the
    current ``dask.distributed`` Client:

    1. each patient's rows are brought into one partition (the patient context compares a
       lesion with the same patient's others);
    2. the images are embedded, and their lesion features measured, one task per partition
       on the workers (GPU workers use their GPU), reading and writing the shared
       embedding store (``cache`` must be a path every worker can write);
    3. the small columns (labels, groups, metadata) come to the client once: the metadata
       vocabularies, the out-of-fold image probe and the internal splits are fixed there,
       exactly as FusionClassifier fixes them (the probe needs the embeddings:
       4 bytes x rows x embedding width of client memory);
    4. each partition builds its booster table on its worker, and the booster trains across
       the workers: ``xgboost.dask`` (GPU capable) or ``lightgbm.dask``, with early stopping
       and the out-of-fold calibration as in FusionClassifier: one booster per ``n_seeds``, each on
       its own out-of-fold image scores and stopped on its own validation split, averaged (each a
       training across the workers).

    The fitted booster is held as a local model, so ``to_local()`` gives an ordinary
    FusionClassifier and ``save``/``melagbm.dask.load`` work as for FusionClassifier.
    ``predict_proba``/``predict``/``decision_function`` take a pandas DataFrame (scored
    here) or a Dask DataFrame (scored on the workers, each patient's and lesion's rows in one partition;
    the result is a Dask array). Two classes only.
    """

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None) -> DaskFusionClassifier:
        """Embed, encode and train on the cluster: FusionClassifier's steps, run where their data is.

        Parameters
        ----------
        X : Dask or pandas DataFrame
            One row per image: ``image_col`` plus metadata columns.
        y : Dask Series partitioned like X (``ddf["target"]``), or array-like when X is pandas
        groups : like y, default=None
            Patient or lesion ids for the internal splits; overrides ``group_col``.

        Returns
        -------
        self : DaskFusionClassifier
            The fitted model.
        """
        started, seconds = perf_counter(), {}
        dask_client = client()
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        if self.cache is None:
            raise ValueError(
                "DaskFusionClassifier keeps the vectors and lesion measurements in the store between its passes: "
                "give cache a path every worker can write (cache=None keeps nothing)"
            )
        steps = self.make_steps()
        gate: InputGate = steps["inputs"]
        frame = _with_labels(X, y, groups, max(1, len(dask_client.nthreads())))
        user_columns = frame._meta.drop(columns=[c for c in (LABEL, GROUP) if c in frame.columns])
        validate_data(self, gate.model_inputs(user_columns), reset=True, skip_check_array=True)
        gate.check_columns(user_columns.columns)
        gate.fit(user_columns.columns)
        self.patient_col_, self.lesion_col_ = gate.patient_col_, gate.lesion_col_
        if self.patient_col_ is not None:
            frame = frame.shuffle(on=self.patient_col_)  # each patient's rows in one partition
        frame, lengths = number_rows(frame)
        frame = frame.persist()

        small = self._first_pass(frame, gate, user_columns)
        y_codes = self._two_classes(small[LABEL])
        seed = int(check_random_state(self.random_state).randint(SEED_MAX))
        self.device_ = _workers_device(dask_client, self.device)
        boosting: BoostingStep = steps["boosting"]
        options = StepOptions(cache=self.cache, on_bad_image=self.on_bad_image, device="cpu", seed=seed,
                              n_members=boosting.n_members, worker_device=self.device_)
        feature_steps = feature_steps_to_fit(steps)
        executor = DaskExecutor(dask_client, frame, lengths, options)
        seconds["inputs"] = perf_counter() - started
        rows = executor.fit(feature_steps, Rows(
            frame=small[list(user_columns.columns.intersection(small.columns))], y=y_codes,
            groups=small[GROUP].to_numpy() if GROUP in small.columns else None), seconds=seconds)
        keep_fitted_steps(self, steps, feature_steps, rows)
        good = executor.kept_
        y_good, rows_good, groups_good = rows.y, small[ROW].to_numpy()[good], rows.groups
        lesions_good = None if self.lesion_pooling_ is None else rows.roles.lesions(rows.frame)
        started = perf_counter()

        weights = boosting.sample_weight(self.classes_[y_good])
        validations = boosting.validation_splits(y_good, groups_good, seed)
        self.operating_point_ = steps["decision"].start(y_good, weights)
        splits = self.operating_point_.splits(y_good, groups_good, seed)
        lone_columns = None
        if self.lone_lesion_model and self.patient_context_ is not None:  # (DaskFusionClassifier fits two classes)
            lone_columns = LoneLesionModel.columns_without_context(self.feature_families_)
        members, member_margins, lone_members, lone_margins = [], [], [], []
        for index in range(boosting.n_members):  # as FusionClassifier: a booster per version of the image columns
            roles = pd.DataFrame({LABEL: y_good, _HELD_OUT: False, _FOLD: -1,
                                  _WEIGHT: 1.0 if weights is None else weights}, index=rows_good)
            if validations is not None:
                roles.iloc[validations[index][1], roles.columns.get_loc(_HELD_OUT)] = True
            for fold, (_, test) in enumerate(splits or []):
                roles.iloc[test, roles.columns.get_loc(_FOLD)] = fold
            table = executor.tables(rows, index, roles)
            for columns, fitted, fitted_margins in ((self.feature_names_, members, member_margins),
                                                    (lone_columns, lone_members, lone_margins)):
                if columns is not None:
                    member, member_margin = self._member_on_workers(
                        dask_client, boosting, table, weights is not None, validations is not None, seed + index,
                        len(splits or []), pd.Series(0.0, index=rows_good), columns)
                    fitted.append(member)
                    fitted_margins.append(member_margin)
        self.booster_ = averaged(members)
        seconds["boosting and out-of-fold boosters (workers)"] = perf_counter() - started
        started = perf_counter()
        head = DecisionHead(boosting, steps["decision"], self.lesion_pooling_)

        def decide(point: Any, member_margins: list[np.ndarray]) -> np.ndarray | None:
            """The decision head's out-of-fold fit of ``point``, as FusionClassifier's (None without folds)."""
            if not splits:
                return None
            return head.decide(point, member_margins, y_good, groups_good, splits, lesions_good, seed)

        margin = decide(self.operating_point_, member_margins)
        self.lone_lesion_model_, lone_margin = None, None
        if lone_columns is not None:
            lone = LoneLesionModel()
            lone.feature_names_, lone.booster_ = lone_columns, averaged(lone_members)
            lone.operating_point_ = decision_step(self).start(y_good, weights)
            lone_margin = decide(lone.operating_point_, lone_margins)
            self.lone_lesion_model_ = lone
        for embedder in self.embedders_:  # the client embeds too (predicting pandas frames, to_local)
            embedder.device_ = _device_here(embedder.device)
        self.n_groups_ = None if groups_good is None else int(len(np.unique(groups_good)))
        trained = small[good]
        if _IMAGE_PATH in trained.columns and trained[_IMAGE_PATH].notna().all():  # paths: hashed and sized here
            trained = trained.assign(**{self.image_col: trained[_IMAGE_PATH]})
        datasets = dataset_names(X) or dataset_names(getattr(X, "_meta", None))  # a Dask frame's meta keeps attrs
        checked = trained if self.image_col in trained.columns else pd.DataFrame({self.image_col: []})
        leaks = encoder_leaks(self, checked, datasets)  # without paths, by the data's name only
        self.model_card_ = model_card(self, trained, rows.columns["metadata"], y_good, groups_good, margin,
                                      len(splits or []), seed, datasets=datasets, warnings=leaks,
                                      lone_margin=lone_margin)
        self.fit_seconds_ = {**seconds, "decision, model card": perf_counter() - started}
        self.report_fit(len(y_good), int((y_good == 1).sum()))
        return self

    def _two_classes(self, labels: pd.Series) -> np.ndarray:
        """The labels' codes (0, 1); sets ``classes_``. Raises ValueError for missing labels or other than two."""
        if labels.isna().any():
            raise ValueError(f"y is missing at rows {list(labels.index[labels.isna()][:10])}")
        check_classification_targets(labels)
        self.classes_, y_codes = np.unique(labels.to_numpy(), return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(f"DaskFusionClassifier fits two classes (melanoma vs rest); y holds {len(self.classes_)}")
        return y_codes

    def _member_on_workers(
        self, dask_client: Any, boosting: BoostingStep, table: Any, weighted: bool, stops_early: bool, seed: int,
        n_folds: int, margin: pd.Series, columns: list[str],
    ) -> tuple[Any, np.ndarray | None]:
        """(one booster trained across the workers on ``table``'s ``columns``, its out-of-fold margins in row
        order; None without folds)."""
        features, labels = table[columns], table[LABEL]
        weight = table[_WEIGHT] if weighted else None
        threads = min(dask_client.nthreads().values(), default=1)
        estimator = boosting.estimator(device=self.device_, seed=seed,
                                       n_jobs=self.n_jobs if self.n_jobs is not None else threads)
        booster, _ = fit_distributed(
            estimator, dask_client, features, labels, weight,
            validation=table[_HELD_OUT] if stops_early else None, n_iter_no_change=int(self.n_iter_no_change),
        )
        if not n_folds:
            return booster, None
        fixed = BoostingStep.with_rounds(estimator, booster)
        for fold in range(n_folds):
            held = table[_FOLD] == fold
            fold_model, _ = fit_distributed(fixed, dask_client, features[~held], labels[~held],
                                            None if weight is None else weight[~held])
            fold_margin = margins(fold_model, features[held], table[ROW][held])
            margin.loc[fold_margin.index] = fold_margin.to_numpy()
        return booster, margin.to_numpy()

    def _first_pass(self, frame: Any, gate: InputGate, user_columns: pd.DataFrame) -> pd.DataFrame:
        """The small columns (row numbers, labels, groups, patient ids, metadata) in row order, on the client."""
        wanted = [ROW, LABEL, GROUP, self.group_col, self.patient_col_, self.lesion_col_, self.diagnosis_col,
                  *ID_COLUMNS,
                  *gate.metadata(user_columns).columns]
        columns = [c for c in dict.fromkeys(wanted) if c is not None and c in frame.columns]
        if self.image_col is not None and self.image_col in frame.columns:  # paths are small: the card reads them
            frame = frame.assign(**{_IMAGE_PATH: frame[self.image_col].map_partitions(_paths_only,
                                                                                      meta=(_IMAGE_PATH, object))})
            columns.append(_IMAGE_PATH)
        small = frame[columns].compute()
        if len(small) == 0:
            raise ValueError("X has no rows")
        return small.sort_values(ROW, kind="stable")

    # -- the local twin --------------------------------------------------------------
    def to_local(self) -> FusionClassifier:
        """An ordinary FusionClassifier holding this fitted model (for single-machine prediction)."""
        return _with_fitted_state(FusionClassifier, self)

    @classmethod
    def from_local(cls, model: FusionClassifier) -> DaskFusionClassifier:
        """The Dask twin of a fitted FusionClassifier (to score Dask DataFrames with it).

        Parameters
        ----------
        model : FusionClassifier
            A fitted model.

        Returns
        -------
        twin : DaskFusionClassifier
            The same parameters and fitted state.
        """
        return _with_fitted_state(cls, model)

    def save(self, path: str | os.PathLike) -> Any:
        """Write the model file FusionClassifier writes (:func:`melagbm.load` or :func:`melagbm.dask.load` reads it).

        Parameters
        ----------
        path : str or path-like
            Where to write (atomically).

        Returns
        -------
        path : Path
            The file written.
        """
        return self.to_local().save(path)

    # -- predicting ------------------------------------------------------------------
    def _on_workers(self, X: Any, method: str, width: int, dtype: Any = float) -> Any:
        check_is_fitted(self, "booster_")
        if self.patient_col_ is not None:
            check_ids_whole(X, self.patient_col_, "patient")
        if getattr(self, "lesion_pooling_", None) is not None:
            check_ids_whole(X, self.lesion_col_, "lesion")
        meta = pd.DataFrame({i: pd.Series([], dtype=dtype) for i in range(width)})
        [model] = client().scatter([self.to_local()], broadcast=True)
        array = X.map_partitions(_predicted, model, method, meta, meta=meta).to_dask_array()
        return array if width > 1 else array[:, 0]

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities: a NumPy array for a pandas X, a Dask array for a Dask X.

        Parameters
        ----------
        X : pandas or Dask DataFrame
            Rows to score; a Dask X needs each patient's rows in one partition.

        Returns
        -------
        proba : ndarray or dask.array.Array of shape (n_samples, 2)
            Column 1 is the melanoma probability.
        """
        return self._on_workers(X, "predict_proba", len(self.classes_)) if is_dask(X) else super().predict_proba(X)

    def decision_function(self, X: Any) -> Any:
        """As FusionClassifier's; a Dask array for a Dask X.

        Parameters
        ----------
        X : pandas or Dask DataFrame
            Rows to score; a Dask X needs each patient's rows in one partition.

        Returns
        -------
        score : ndarray or dask.array.Array of shape (n_samples,)
            Calibrated log-odds measured from the threshold's.
        """
        return self._on_workers(X, "decision_function", 1) if is_dask(X) else super().decision_function(X)

    def predict(self, X: Any) -> Any:
        """As FusionClassifier's (an unreadable image raises ImageReadError); a Dask array for a Dask X.

        Parameters
        ----------
        X : pandas or Dask DataFrame
            Rows to score; a Dask X needs each patient's rows in one partition.

        Returns
        -------
        labels : ndarray or dask.array.Array of shape (n_samples,)
            Predicted classes.
        """
        return self._on_workers(X, "predict", 1, self.classes_.dtype) if is_dask(X) else super().predict(X)


def column_of(values: Any, n: int, what: str) -> np.ndarray:
    """``values`` as a 1-d array of ``n`` entries (labels or groups given next to a pandas X)."""
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f"{what} has shape {array.shape} but X has {n} rows")
    return array


def _with_fitted_state(cls: type, model: FusionClassifier) -> Any:
    """A ``cls`` with ``model``'s parameters and fitted state (``FITTED_ATTRIBUTES``)."""
    check_is_fitted(model, "booster_")
    twin = cls(**model.get_params())
    state = vars(model)
    for name in FITTED_ATTRIBUTES:
        if name in state:  # feature_names_in_ only exists for string column names
            setattr(twin, name, state[name])
    if "_metadata_request" in state:  # scikit-learn's routing requests (set_fit_request) travel too
        twin._metadata_request = state["_metadata_request"]
    return twin


def _with_labels(X: Any, y: Any, groups: Any, n_workers: int) -> Any:
    """X as a Dask DataFrame with the labels (and groups) as columns."""
    if isinstance(X, pd.DataFrame):
        extra = {LABEL: column_of(y, len(X), "y")}
        if groups is not None:
            extra[GROUP] = column_of(groups, len(X), "groups")
        return as_dask_frame(X.assign(**extra), 2 * n_workers)
    frame = attach(as_dask_frame(X, n_workers), y, LABEL, "y")
    return frame if groups is None else attach(frame, groups, GROUP, "groups")


def _workers_device(dask_client: Any, device: str) -> str:
    """The booster's device: ``device`` resolved on every worker; "cuda" when all of them resolve to a GPU."""
    answers = dask_client.run(resolve_device, device)
    return "cuda" if answers and all(answer.startswith("cuda") for answer in answers.values()) else "cpu"


def _device_here(device: str) -> str:
    """``device`` resolved on this machine, the CPU where it names a GPU this machine lacks."""
    try:
        return resolve_device(device)
    except (ValueError, RuntimeError):
        return "cpu"


def load(path: str | os.PathLike) -> DaskFusionClassifier:
    """Read a model file (written by either classifier's ``save``) as a DaskFusionClassifier.

    Parameters
    ----------
    path : str or path-like
        A model file.

    Returns
    -------
    model : DaskFusionClassifier
        The fitted model.
    """
    from ..persistence import load as load_model

    model = load_model(path)
    if not isinstance(model, FusionClassifier):
        raise TypeError(f"{path} holds a {type(model).__name__}, not a FusionClassifier")
    return DaskFusionClassifier.from_local(model)


def _with_parameters_of(cls: type, parent: type) -> None:
    """Give ``cls``'s docstring ``parent``'s Parameters section: the twin takes the same parameters."""
    doc = parent.__doc__ or ""
    start = doc.index("    Parameters\n    ----------\n")
    section = doc[start:doc.index("    Attributes\n", start)]
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n" + section


_with_parameters_of(DaskFusionClassifier, FusionClassifier)
