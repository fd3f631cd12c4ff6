"""The torch module around an open_clip image tower (imported only when one is loaded: torch is heavy)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["OpenClipImageTower"]


class OpenClipImageTower(torch.nn.Module):
    """An open_clip model's image tower: images (N, 3, H, W) -> projected embeddings (N, ``num_features``).

    Parameters
    ----------
    visual : torch.nn.Module
        The open_clip model's ``visual`` tower.
    num_features : int
        Width of its output.
    pretrained_cfg : dict
        timm-style preprocessing (``input_size``, ``mean``, ``std``, ...) and the weights' ``license``.
    """

    def __init__(self, visual: torch.nn.Module, num_features: int, pretrained_cfg: dict[str, Any]) -> None:
        super().__init__()
        self.visual = visual
        self.num_features = num_features
        self.pretrained_cfg = pretrained_cfg

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The projected embedding of each image."""
        return self.visual(images)
