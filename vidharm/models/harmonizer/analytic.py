"""``stats``: the embedded default that needs no weights.

It chooses the six filter arguments so that the filtered foreground's *illumination* statistics move
part of the way towards the background's, searching with the real filter chain on a small copy of the
frame. A naive mean/std transfer makes a red car on green grass grey-green; this estimator instead

* measures the white balance on near-neutral pixels only (low saturation, not black or clipped), so the
  object's own colour does not count as a colour cast (temperature);
* moves luminance level, luminance spread, saturation and the 10th/90th luminance percentiles only part
  of the way (``strength``) in the log domain, because objects legitimately differ from their surroundings
  in albedo and colourfulness (brightness, contrast, saturation, highlight, shadow);
* penalises large arguments, so a foreground whose statistics already match keeps arguments near 0.

The search is coordinate descent over each argument in the filter order, on a grid within the
training ranges (``AUGMENT_RANGES``), refined once. Every candidate is scored by running the actual
filters, so the interactions of the chain (contrast pivots on the global mean, the clamps) are exact at
the search resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidharm.errors import check_shape
from vidharm.filters import AUGMENT_RANGES, FILTER_NAMES, apply_filters
from vidharm.models._registry import ModelConfig, register_model

__all__ = ["StatsHarmonizer", "DEFAULT_STRENGTH"]

#: How far each statistic moves towards the background's (0 = keep the foreground's, 1 = copy it).
DEFAULT_STRENGTH = {"white_balance": 0.6, "luma": 0.5, "spread": 0.5, "saturation": 0.3, "tails": 0.3}

_LUMA = (0.2126, 0.7152, 0.0722)
_EPS = 1e-4


def _weighted_mean(values: Tensor, weights: Tensor) -> Tensor:
    return (values * weights).sum(dim=-1) / weights.sum(dim=-1).clamp_min(_EPS)


def _weighted_quantiles(values: Tensor, weights: Tensor, qs: tuple[float, ...], bins: int = 256) -> list[Tensor]:
    """Quantiles of ``values`` in [0, 1] under ``weights``, from a weighted histogram (to 1/bins)."""
    idx = (values.clamp(0, 1) * (bins - 1)).round().long()
    hist = values.new_zeros(values.shape[0], bins).scatter_add_(1, idx, weights)
    cdf = hist.cumsum(dim=1)
    cdf = cdf / cdf[:, -1:].clamp_min(_EPS)
    return [torch.searchsorted(cdf, cdf.new_full((cdf.shape[0], 1), q)).squeeze(1).float() / (bins - 1) for q in qs]


def _region_stats(image: Tensor, weight: Tensor) -> Tensor:
    """Statistics of one region: (N, 7) = log luma mean, log luma std, log(R/G), log(B/G) of the
    illuminant, log mean saturation, 10th and 90th luma percentile."""
    rgb = image.flatten(2)  # (N, 3, P)
    w = weight.flatten(1)  # (N, P)
    luma = (rgb * rgb.new_tensor(_LUMA)[:, None]).sum(dim=1)
    mean = _weighted_mean(luma, w)
    std = _weighted_mean((luma - mean[:, None]) ** 2, w).sqrt()
    cmax, cmin = rgb.max(dim=1).values, rgb.min(dim=1).values
    sat = (cmax - cmin) / (cmax + _EPS)
    # Near-neutral, well-exposed pixels carry the illuminant's colour; a little of the whole region keeps
    # the estimate defined where there are none (a saturated object lit by the same light).
    neutral = w * torch.exp(-((sat / 0.25) ** 2)) * ((luma > 0.05) & (cmax < 0.97)).float() + 0.05 * w
    illum = torch.stack([_weighted_mean(rgb[:, c], neutral) for c in range(3)], dim=1).clamp_min(_EPS)
    return torch.stack(
        [
            mean.clamp_min(_EPS).log(),
            std.clamp_min(_EPS).log(),
            (illum[:, 0] / illum[:, 1]).log(),
            (illum[:, 2] / illum[:, 1]).log(),
            _weighted_mean(sat, w).clamp_min(_EPS).log(),
            *_weighted_quantiles(luma, w, (0.1, 0.9)),
        ],
        dim=1,
    )


class StatsHarmonizer(nn.Module):
    """Analytic argument estimator with the same interface as :class:`Harmonizer` (no weights).

    Args:
        size: side of the square copy the search runs on.
        grid: candidates per argument and sweep.
        strength: how far each statistic moves towards the background's; keys as :data:`DEFAULT_STRENGTH`.
        penalty: weight of the squared arguments in the objective.

    Example:
        >>> model = StatsHarmonizer()
        >>> image = torch.rand(2, 3, 40, 56); mask = torch.zeros(2, 1, 40, 56); mask[..., 10:30, 20:40] = 1
        >>> model(image, mask).shape
        torch.Size([2, 6])
    """

    unused_parameters: tuple[str, ...] = ()
    move: Tensor
    weight: Tensor
    ranges: Tensor

    def __init__(
        self, size: int = 48, grid: int = 13, strength: dict[str, float] | None = None, penalty: float = 0.05
    ) -> None:
        super().__init__()
        self.size, self.grid, self.penalty = size, grid, penalty
        s = {**DEFAULT_STRENGTH, **(strength or {})}
        # Per statistic of _region_stats: how far to move, and its weight in the objective.
        self.register_buffer(
            "move",
            torch.tensor(
                [
                    s["luma"],
                    s["spread"],
                    s["white_balance"],
                    s["white_balance"],
                    s["saturation"],
                    s["tails"],
                    s["tails"],
                ]
            ),
            persistent=False,
        )
        self.register_buffer("weight", torch.tensor([1.0, 0.5, 1.0, 1.0, 0.5, 4.0, 4.0]), persistent=False)
        self.register_buffer("ranges", torch.tensor([AUGMENT_RANGES[n] for n in FILTER_NAMES]), persistent=False)

    @torch.no_grad()
    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        """Estimate raw arguments.

        Args:
            image: (B, 3, H, W) RGB in [0, 1].
            mask: (B, 1, H, W) foreground alpha in [0, 1].

        Returns:
            (B, 6) arguments in filter order, within the training ranges; 0 where the frame has no
            foreground or no background.
        """
        check_shape("image", image.shape, (None, 3, None, None))
        check_shape("mask", mask.shape, (image.shape[0], 1, image.shape[2], image.shape[3]))
        small = F.interpolate(image.float(), size=(self.size, self.size), mode="area")
        m = F.interpolate(mask.float(), size=(self.size, self.size), mode="area").clamp(0, 1)
        n = small.shape[0]
        fg_area, bg_area = m.flatten(1).sum(1), (1 - m).flatten(1).sum(1)
        valid = (fg_area >= 4) & (bg_area >= 4)
        fg0 = _region_stats(small, m[:, 0])
        bg0 = _region_stats(small, 1 - m[:, 0])
        target = fg0 + self.move * (bg0 - fg0)
        args = small.new_zeros(n, 6)
        k = self.grid
        for sweep, scale in enumerate((1.0, 0.25)):
            for i in range(6):
                span = self.ranges[i] * scale
                offsets = torch.linspace(-1.0, 1.0, k, device=small.device) * span
                cand = args[:, None, :].repeat(1, k, 1)  # (N, K, 6)
                centre = args[:, i : i + 1] if sweep else torch.zeros_like(args[:, i : i + 1])
                cand[:, :, i] = (centre + offsets).clamp(-self.ranges[i], self.ranges[i])
                flat = cand.reshape(n * k, 6)
                out = apply_filters(small.repeat_interleave(k, 0), flat)
                stats = _region_stats(out, m[:, 0].repeat_interleave(k, 0)).reshape(n, k, 7)
                loss = (self.weight * (stats - target[:, None]) ** 2).sum(-1) + self.penalty * (cand**2).sum(-1)
                best = loss.argmin(dim=1)
                args = cand[torch.arange(n), best]
                if sweep:
                    args[:, i] = self._refine(args[:, i], loss, best, float(offsets[1] - offsets[0]), i)
        return torch.where(valid[:, None], args, torch.zeros_like(args))

    def _refine(self, value: Tensor, loss: Tensor, best: Tensor, step: float, i: int) -> Tensor:
        """Move to the vertex of the parabola through the best grid point and its neighbours.

        Without it the arguments snap to grid steps, and a value that hops between two steps from frame to
        frame is flicker that smoothing then has to remove.
        """
        inner = (best > 0) & (best < loss.shape[1] - 1)
        idx = best.clamp(1, loss.shape[1] - 2)
        rows = torch.arange(loss.shape[0])
        left, mid, right = loss[rows, idx - 1], loss[rows, idx], loss[rows, idx + 1]
        curvature = left - 2 * mid + right
        shift = torch.where(curvature > 0, 0.5 * (left - right) / curvature.clamp_min(1e-12), torch.zeros_like(mid))
        refined = (value + shift.clamp(-0.5, 0.5) * step).clamp(-self.ranges[i], self.ranges[i])
        return torch.where(inner, refined, value)


@register_model(
    ModelConfig(
        name="stats",
        input_size=256,
        normalisation="rgb01",
        weight_source="none: analytic, from the frame's foreground and background statistics",
        sha256=None,
        licence="MIT (vidharm)",
        num_outputs=6,
        description="Default. Partial transfer of illumination statistics; no network, no download.",
    )
)
def stats(**kwargs: object) -> StatsHarmonizer:
    """The analytic estimator (see module docstring)."""
    return StatsHarmonizer(**kwargs)  # type: ignore[arg-type]
