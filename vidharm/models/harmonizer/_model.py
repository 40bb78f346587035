"""The Harmonizer network (Ke et al., ECCV 2022): composite + mask -> six raw filter arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidharm.errors import InputError, ShapeError, check_shape
from vidharm.filters import NUM_ARGS, apply_filters, composite
from vidharm.models._registry import ModelConfig, register_model
from vidharm.models.harmonizer._efficientnet import B0_STAGES, EfficientBackbone, StageSpec
from vidharm.models.harmonizer._regressor import CascadeRegressor

__all__ = ["Harmonizer", "checkpoint_filter_fn", "harmonizer", "harmonizer_tiny"]

_TINY_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 8),
    StageSpec(2, 3, 2, 2, 16),
    StageSpec(2, 5, 2, 2, 24),
)


class Harmonizer(nn.Module):
    """EfficientNet backbone with fg/bg stems plus a cascade regressor, state_dict-compatible with the reference.

    The network sees the composite and its mask resized *separately* to ``input_size`` squared
    (bilinear, ``align_corners=False``, no antialias), with no mean/std normalisation; the foreground
    stem gets ``[RGB, mask]`` and the background stem ``[RGB, 1 - mask]``. Callers pass any resolution.

    Args:
        input_size: side of the square network input (256 for the reference weights).
        stem_channels: channels of each stem (16 for B0).
        stages: MBConv stages (EfficientNet-B0 by default).
        head_channels: backbone output channels (1280 for B0).
        hidden_channels: regressor width (160 in the reference).
        drop_connect_rate: stochastic depth in training mode (0.2 as in EfficientNet-B0).

    Example:
        >>> model = Harmonizer().eval()
        >>> image, mask = torch.rand(1, 3, 90, 160), torch.zeros(1, 1, 90, 160)
        >>> model(image, mask).shape
        torch.Size([1, 6])
    """

    unused_parameters: tuple[str, ...] = ()
    """Names of parameters that forward never uses (none here); registry tests skip their gradient check."""

    def __init__(
        self,
        input_size: int = 256,
        *,
        stem_channels: int = 16,
        stages: Sequence[StageSpec] = B0_STAGES,
        head_channels: int = 1280,
        hidden_channels: int = 160,
        drop_connect_rate: float = 0.2,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.backbone = EfficientBackbone(stages, stem_channels, head_channels, 4, drop_connect_rate)
        self.regressor = CascadeRegressor(head_channels, hidden_channels, NUM_ARGS)

    def _network_inputs(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if not isinstance(image, Tensor) or not isinstance(mask, Tensor):
            raise ShapeError("image and mask: expected tensors of shape (B, 3, H, W) and (B, 1, H, W)")
        check_shape("image", image.shape, (None, 3, None, None))
        batch, _, height, width = image.shape
        check_shape("mask", mask.shape, (batch, 1, height, width))
        if not image.is_floating_point():
            raise InputError(f"image: expected a floating tensor in [0, 1], got {image.dtype}; use image.float() / 255")
        param = self.backbone._conv_fg.weight
        image = image.to(device=param.device, dtype=param.dtype)
        mask = mask.to(device=param.device, dtype=param.dtype)
        size = (self.input_size, self.input_size)
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=False)
        mask = F.interpolate(mask, size=size, mode="bilinear", align_corners=False, antialias=False)
        return torch.cat([image, mask], dim=1), torch.cat([image, 1 - mask], dim=1)

    def encode(self, image: Tensor, mask: Tensor) -> Tensor:
        """Last backbone feature ``enc32x``.

        Args:
            image: (B, 3, H, W) RGB in [0, 1], any resolution.
            mask: (B, 1, H, W) foreground alpha in [0, 1].

        Returns:
            (B, 1280, 8, 8) for the reference configuration (``input_size / 32`` squared).

        Raises:
            ShapeError: shapes do not match.
            InputError: ``image`` is not floating point.
        """
        return self.backbone(*self._network_inputs(image, mask))

    def features(self, image: Tensor, mask: Tensor) -> Tensor:
        """Average-pooled ``enc32x``, the regressor input.

        Args:
            image: (B, 3, H, W) RGB in [0, 1], any resolution.
            mask: (B, 1, H, W) foreground alpha in [0, 1].

        Returns:
            (B, 1280) for the reference configuration.

        Raises:
            ShapeError: shapes do not match.
            InputError: ``image`` is not floating point.
        """
        return F.adaptive_avg_pool2d(self.encode(image, mask), 1).flatten(1)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        """Predict raw (unclamped) filter arguments.

        Args:
            image: (B, 3, H, W) RGB in [0, 1], any resolution.
            mask: (B, 1, H, W) foreground alpha in [0, 1].

        Returns:
            (B, 6) raw arguments in :data:`vidharm.filters.FILTER_NAMES` order (clamped only when applied).

        Raises:
            ShapeError: shapes do not match.
            InputError: ``image`` is not floating point.
        """
        return self.regressor(self.features(image, mask))

    def harmonize(self, image: Tensor, mask: Tensor) -> Tensor:
        """Predict arguments, filter the whole image at its own resolution, and composite over the mask.

        Args:
            image: (B, 3, H, W) RGB in [0, 1], any resolution.
            mask: (B, 1, H, W) foreground alpha in [0, 1].

        Returns:
            (B, 3, H, W) harmonized image in [0, 1]; equal to ``image`` where ``mask == 0``.

        Raises:
            ShapeError: shapes do not match.
            InputError: ``image`` is not floating point.
        """
        args = self(image, mask).to(image.dtype)
        return composite(apply_filters(image, args), image, mask.to(image.dtype))


def checkpoint_filter_fn(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Map an official Harmonizer checkpoint to :class:`Harmonizer` keys.

    Accepts the inference layout (``pretrained/harmonizer.pth``: a plain state_dict) and the training
    layout (``checkpoint_<epoch>.ckpt``: ``{"model": {...}, ...}`` with ``module.model.`` prefixes); a
    bare ``module.`` (DataParallel) prefix is stripped too. A prefix is stripped only if every key has it.

    Args:
        state_dict: the dict as loaded by :func:`vidharm.models.load_state_dict_file`.

    Returns:
        A state_dict with the reference key names (``backbone.*``, ``regressor.*``).

    Example:
        >>> checkpoint_filter_fn({"model": {"module.model.regressor.f.bias": torch.zeros(2)}, "epoch": 3})
        {'regressor.f.bias': tensor([0., 0.])}
    """
    inner = state_dict.get("model")
    state: Mapping[str, Any] = inner if isinstance(inner, Mapping) else state_dict
    for prefix in ("module.", "model."):
        if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return dict(state)


_LICENCE = (
    "bundled weights: MIT (trained by vidharm; training-data terms in vidharm/models/weights/MODEL_CARD.md); "
    "official weights passed with --weights: CC BY-NC-SA 4.0"
)

HARMONIZER_CONFIG = ModelConfig(
    name="harmonizer",
    num_outputs=NUM_ARGS,
    input_size=256,
    normalisation="rgb01",
    weight_source=(
        "bundled: vidharm/models/weights/harmonizer_vidharm_fp16.pt, trained from scratch by vidharm on "
        "shared/data/images (MODEL_CARD.md); official alternative: ZHKKKe/Harmonizer pretrained/harmonizer.pth "
        "(Google Drive link in the official README; git blob 3c0f23a510310913ccf3636b9a147719c02a5191)"
    ),
    sha256="de2e1c68008614ebb05a5f3fed90845e8d69baa752d83a058203f4aa1c29eefb",
    bundled_weights="harmonizer_vidharm_fp16.pt",
    licence=_LICENCE,
    description="Harmonizer (ECCV 2022): EfficientNet-B0 + cascade regressor -> 6 white-box filter arguments",
)

HARMONIZER_TINY_CONFIG = ModelConfig(
    name="harmonizer_tiny",
    num_outputs=NUM_ARGS,
    input_size=64,
    normalisation="rgb01",
    weight_source="none (test variant, random init)",
    sha256=None,
    licence="n/a",
    description="Harmonizer with a tiny backbone and regressor, same structure; for fast tests",
)


@register_model(HARMONIZER_CONFIG, filter_fn=checkpoint_filter_fn)
def harmonizer(**kwargs: Any) -> Harmonizer:
    """Full Harmonizer (EfficientNet-B0, 256x256 input, 392 state_dict keys)."""
    return Harmonizer(**kwargs)


@register_model(HARMONIZER_TINY_CONFIG, filter_fn=checkpoint_filter_fn)
def harmonizer_tiny(**kwargs: Any) -> Harmonizer:
    """Tiny Harmonizer with the same structure (for registry and training-loop tests)."""
    options: dict[str, Any] = dict(
        input_size=64, stem_channels=4, stages=_TINY_STAGES, head_channels=32, hidden_channels=8
    )
    options.update(kwargs)
    return Harmonizer(**options)
