"""Where an embedder's forward pass runs: PyTorch, or OpenVINO on the CPU.

OpenVINO runs the same network 2.7x faster than PyTorch eager on these CPUs with vectors equal to
six decimals (``benchmarks/cpu_runtimes.py``). Equal to six decimals is not equal, so the runtime is
part of the encoder's identity (and of the store key): vectors computed by one runtime are never
served as another's. The network is exported to OpenVINO's format once per encoder and machine, and
kept in melagbm's cache directory beside the default store (``$MELAGBM_CACHE/runtimes/<encoder id>/``,
whatever store the vectors go to), written atomically, so a second process or a later fit compiles it
without exporting again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._warnings import warn
from ..store.embedding_store import default_store_path

__all__ = ["RUNTIMES", "OpenVINOForward", "exported_model_folder", "network", "openvino_version", "resolve_runtime",
           "runtime_identity"]

#: The values of ``ImageEmbedder(runtime=...)``.
RUNTIMES = ("auto", "torch", "openvino")
_MODEL_FILE = "model.xml"  # OpenVINO's IR: the graph (.xml) beside its weights (.bin)


def exported_model_folder(encoder_id: str) -> Path:
    """Where the network of encoder ``encoder_id`` is kept exported: ``<melagbm cache>/runtimes/<encoder id>``."""
    return default_store_path().parent / "runtimes" / encoder_id


def openvino_version() -> str | None:
    """The installed OpenVINO release ("2026.4.1"), or None where it does not import."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__.split("-")[0]


def resolve_runtime(runtime: str, device: str) -> str:
    """"torch" or "openvino" for ``runtime`` on ``device`` ("auto": OpenVINO on the CPU where it is installed).

    Parameters
    ----------
    runtime : {"auto", "torch", "openvino"}
    device : str
        The resolved device ("cpu", "cuda", "cuda:1", ...).

    Returns
    -------
    runtime : {"torch", "openvino"}
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    on_cpu = device == "cpu"
    if runtime == "auto":
        return "openvino" if on_cpu and openvino_version() is not None else "torch"
    if runtime == "openvino":
        if not on_cpu:
            raise ValueError(f"runtime='openvino' runs on the CPU, but device is {device!r}: "
                             "use device='cpu', or runtime='torch' on the GPU")
        if openvino_version() is None:
            raise ImportError("runtime='openvino' needs OpenVINO: pip install openvino")
    return runtime


def runtime_identity(runtime: str) -> dict[str, str] | None:
    """What the encoder identity records about the runtime: None for PyTorch (whose vectors it always held)."""
    if runtime == "torch":
        return None
    return {"name": runtime, "version": str(openvino_version())}


class OpenVINOForward:
    """A forward function compiled by OpenVINO for the CPU, from a torch module exported once per machine.

    Parameters
    ----------
    module : torch.nn.Module
        The network, batch (n, 3, h, w) -> features (n, d), in eval mode.
    input_size : tuple of int
        (3, h, w).
    folder : path
        Where the exported model is kept (read from there when it is already).
    threads : int
        CPU threads for inference.
    """

    def __init__(self, module: Any, input_size: tuple[int, int, int], folder: Path, threads: int) -> None:
        key = (str(folder), int(threads))
        if key not in _COMPILED:
            import openvino

            model = _read(folder)
            if model is None:
                model = _export(module, input_size)
                _save_atomically(model, folder)
            _COMPILED[key] = openvino.Core().compile_model(
                model, "CPU", {"INFERENCE_NUM_THREADS": int(threads), "INFERENCE_PRECISION_HINT": "f32"})
        self._request = _COMPILED[key].create_infer_request()  # one per embedder: callers may run side by side

    def __call__(self, batch: Any) -> Any:
        """Features of a float32 torch batch, as a torch tensor."""
        import torch

        outputs = self._request.infer([batch.contiguous().numpy()])
        return torch.from_numpy(np.array(next(iter(outputs.values()))))


#: (export folder, threads) -> the compiled model, so that later fits in this process skip compiling.
_COMPILED: dict[tuple[str, int], Any] = {}


def _read(folder: Path) -> Any:
    """The model exported into ``folder``, or None when there is none (or it is damaged: then it is removed)."""
    import openvino

    path = folder / _MODEL_FILE
    if not path.is_file():
        return None
    try:
        return openvino.Core().read_model(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged export is made again, and said so
        reason = " ".join(str(exc).split())[-300:]  # OpenVINO's messages span lines; the end says what failed
        warn(f"the exported OpenVINO model {path} cannot be read ({type(exc).__name__}: {reason}); exporting again")
        shutil.rmtree(folder, ignore_errors=True)
        return None


def network(forward: Callable[[Any, Any], Any], model: Any) -> Any:
    """``forward(model, batch)`` as one torch module (what OpenVINO exports)."""
    import torch

    class Network(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, batch: Any) -> Any:
            return forward(self.model, batch)

    return Network().eval()


def _export(module: Any, input_size: tuple[int, int, int]) -> Any:
    """``module`` as an OpenVINO model, any batch size, float32."""
    import openvino
    import torch

    example = torch.zeros(2, *input_size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")  # OpenVINO traces the module
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        return openvino.convert_model(module, example_input=example,
                                      input=[openvino.PartialShape([-1, *input_size])])


def _save_atomically(model: Any, folder: Path) -> None:
    """Write the model into a new folder beside ``folder`` and rename it into place (a racing writer's copy wins)."""
    import openvino

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        openvino.save_model(model, str(staging / _MODEL_FILE), compress_to_fp16=False)
        os.rename(staging, folder)
    except OSError:
        if not (folder / _MODEL_FILE).is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)

