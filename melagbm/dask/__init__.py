"""melagbm on a Dask cluster: embed into the shared store and train with the same API.

Needs ``dask[dataframe,distributed]`` (``pip install "melagbm[dask]"``) and a running
``dask.distributed`` Client.
"""

from .classifier import DaskFusionClassifier, load
from .embedding import embed

__all__ = ["DaskFusionClassifier", "embed", "load"]
