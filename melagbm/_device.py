"""Resolving ``device="auto"`` to the hardware that is actually there."""

from __future__ import annotations

__all__ = ["resolve_device"]


def resolve_device(device: str) -> str:
    """Return "cuda" or "cpu"; "auto" picks CUDA when torch sees a GPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device in ("cuda", "gpu") or str(device).startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r} was requested but torch sees no CUDA device")
        return "cuda" if device == "gpu" else str(device)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
