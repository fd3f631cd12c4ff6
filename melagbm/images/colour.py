"""Colour constancy before an encoder: Shades of Gray, as the ISIC 2018 and 2019 winners normalised dermoscopy.

Each clinic's camera and light tint its images; Shades of Gray (Finlayson and Trezzi, 2004) estimates the
light's colour as each channel's Minkowski p-mean and divides it out, so that a grey surface looks grey.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["COLOUR_CONSTANCY", "ShadesOfGray", "check_colour_constancy", "eval_transform"]

#: The ``colour_constancy`` values an embedder's ``preprocessing`` takes.
COLOUR_CONSTANCY = ("none", "shades_of_gray")


class ShadesOfGray:
    """Divide out the light's colour, estimated as each channel's Minkowski ``power``-mean.

    Parameters
    ----------
    power : float, default=6
        The Minkowski norm: 1 is Gray World, infinity is max-RGB; 6 is what the ISIC winners used.

    Examples
    --------
    >>> import torch
    >>> tinted = torch.stack([torch.full((4, 4), 0.8), torch.full((4, 4), 0.4), torch.full((4, 4), 0.4)])
    >>> ShadesOfGray()(tinted)[:, 0, 0]
    tensor([0.5657, 0.5657, 0.5657])
    """

    def __init__(self, power: float = 6.0) -> None:
        self.power = power

    def __call__(self, image: Any) -> Any:
        """``image``: a float tensor (channels, height, width) in [0, 1]; returns it corrected, in [0, 1]."""
        illuminant = image.clamp(min=0).pow(self.power).mean(dim=(-2, -1)).pow(1.0 / self.power)
        unit = illuminant / illuminant.norm().clamp(min=1e-12)
        return (image / (unit * math.sqrt(3)).clamp(min=1e-6)[:, None, None]).clamp(0.0, 1.0)

    def __repr__(self) -> str:
        return f"ShadesOfGray(power={self.power})"


def check_colour_constancy(value: Any) -> None:
    """Raise ValueError naming ``value`` unless it is one of :data:`COLOUR_CONSTANCY`."""
    if value not in COLOUR_CONSTANCY:
        raise ValueError(f"preprocessing colour_constancy must be one of {COLOUR_CONSTANCY}, got {value!r}")


def eval_transform(data_config: dict[str, Any]) -> Any:
    """timm's evaluation transform for ``data_config``, with its ``colour_constancy`` step (when one is asked)
    between the conversion to a [0, 1] tensor and the normalisation."""
    import timm
    from torchvision import transforms

    config = dict(data_config)
    colour = config.pop("colour_constancy", "none")
    check_colour_constancy(colour)
    transform = timm.data.create_transform(**config, is_training=False)
    if colour == "none":
        return transform
    steps = list(transform.transforms)
    normalise = next(i for i, step in enumerate(steps) if type(step).__name__ == "Normalize")
    return transforms.Compose([*steps[:normalise], ShadesOfGray(), *steps[normalise:]])
