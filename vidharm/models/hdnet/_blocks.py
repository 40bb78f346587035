"""HDNet building blocks: RAIN normalisation, the LD (local dynamics) module and the MGD dynamic conv.

Our own implementation of the published v3 design (chenhaoxing/HDNet, ACM MM 2023). Parameter names and
shapes follow the reference state dict; the numerical quirks of the reference are kept on purpose and
are noted where they happen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RegionAwareNorm", "LocalDynamics", "MaskGuidedDynamicConv", "StyleFusion", "resize_mask_nearest"]

# RAIN's epsilon, used both in the pixel-count denominators and under the square root (RainNet's value).
RAIN_EPS = 1e-5


def resize_mask_nearest(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of a (B, 1, H, W) mask to a feature map's size, as every HDNet block does.

    Args:
        mask: (B, 1, H, W) in [0, 1].
        size: (h, w) of the feature map.

    Returns:
        (B, 1, h, w) mask, detached (the reference never back-propagates into the mask).

    Example:
        >>> resize_mask_nearest(torch.ones(1, 1, 8, 8), (4, 4)).shape
        torch.Size([1, 1, 4, 4])
    """
    mask = mask.detach()
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask, size=size, mode="nearest")


def _region_mean_std(x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    # RainNet's statistics: mean = sum(x*w) / (sum(w) + eps); var = sum((w*(x - mean))^2) / (sum(w) + eps).
    # For a binary w this is the plain masked variance; for a soft w the weight enters squared.
    count = weight.sum(dim=(2, 3), keepdim=True) + RAIN_EPS
    mean = (x * weight).sum(dim=(2, 3), keepdim=True) / count
    var = ((weight * (x - mean)) ** 2).sum(dim=(2, 3), keepdim=True) / count
    return mean, torch.sqrt(var + RAIN_EPS)


class RegionAwareNorm(nn.Module):
    """RAIN: instance norm with separate foreground/background statistics, foreground moved onto background's.

    Background pixels: ``((x - mu_bg) / s_bg) * (1 + gamma_bg) + beta_bg``. Foreground pixels:
    ``(((x - mu_fg) / s_fg) * s_bg + mu_bg) * (1 + gamma_fg) + beta_fg``. The two are blended with the
    mask (nearest-resized to the feature size). Note the asymmetry kept from the reference: with zero
    parameters the background comes out standardised while the foreground takes the background's *raw*
    mean and std. Parameters start at zero.

    Args:
        channels: number of feature channels C.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.foreground_gamma = nn.Parameter(torch.zeros(channels))
        self.foreground_beta = nn.Parameter(torch.zeros(channels))
        self.background_gamma = nn.Parameter(torch.zeros(channels))
        self.background_beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Normalise ``x`` (B, C, h, w) with the region statistics given by ``mask`` (B, 1, H, W) in [0, 1]."""
        m = resize_mask_nearest(mask, (x.shape[-2], x.shape[-1]))
        bg = 1.0 - m
        mean_bg, std_bg = _region_mean_std(x, bg)
        mean_fg, std_fg = _region_mean_std(x, m)

        def per_channel(p: Tensor) -> Tensor:
            return p.view(1, -1, 1, 1)

        out_bg = (
            (x - mean_bg) / std_bg * (1 + per_channel(self.background_gamma)) + per_channel(self.background_beta)
        ) * bg
        moved = (x - mean_fg) / std_fg * std_bg + mean_bg
        out_fg = (moved * (1 + per_channel(self.foreground_gamma)) + per_channel(self.foreground_beta)) * m
        return out_fg + out_bg


class LocalDynamics(nn.Module):
    """LD: each foreground position borrows its most similar background feature (top-1 dot product).

    Queries are ``x * m`` and supports ``x * (1 - m)`` over all N = h*w positions. For query i the best
    support j*(i) = argmax_j <q_i, s_j> is taken with score v_i. The reference then normalises the scores
    with a softmax over *all N query positions* (not over the K = 1 neighbours), background positions
    included with score 0, and fuses ``softmax(v)_i * s_j*(i)``. ``linear`` (Conv1d 2C -> C) mixes
    [fused; q], and the result replaces x at foreground positions only. Both quirks are reproduced because
    trained weights depend on them. Memory is O(N^2): 4 MB per image at 256^2, 1 GB at 1024^2.

    Args:
        channels: number of feature channels C.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(2 * channels, channels, kernel_size=1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Apply LD to ``x`` (B, C, h, w) with ``mask`` (B, 1, H, W) in [0, 1]; returns (B, C, h, w)."""
        b, c, h, w = x.shape
        m = resize_mask_nearest(mask, (h, w))
        query = (x * m).reshape(b, c, h * w)
        support = (x * (1.0 - m)).reshape(b, c, h * w)
        similarity = torch.bmm(query.transpose(1, 2), support)  # (B, N_query, N_support)
        score, index = similarity.max(dim=2)  # K = 1 (hard-coded in the reference)
        # Softmax over query positions: the reference reshapes (C, K, N) and normalises the last axis.
        weight = torch.softmax(score, dim=1)
        best = torch.gather(support, 2, index.unsqueeze(1).expand(b, c, h * w))
        fused = best * weight.unsqueeze(1)
        refined = self.linear(torch.cat([fused, query], dim=1)).view(b, c, h, w)
        return refined * m + x * (1.0 - m)


class MaskGuidedDynamicConv(nn.Module):
    """MGD: two sample-adaptive 1x1 channel mixers, one for the foreground and one for the background.

    ``conv_kernel`` turns the globally average-pooled feature (the whole map, not masked) into two
    C x C kernels (region 0 = foreground, region 1 = background); each pixel takes the foreground result
    weighted by the mask and the background result weighted by 1 - mask. ``conv_guide`` mirrors the
    reference state dict (DRConv's learned guide) and is never used: the mask replaces it.

    Args:
        channels: number of feature channels C (in = out).
    """

    regions = 2

    def __init__(self, channels: int) -> None:
        super().__init__()
        r = self.regions
        self.channels = channels
        self.conv_kernel = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(channels, r * r, kernel_size=1),
            nn.Sigmoid(),
            nn.Conv2d(r * r, r * channels * channels, kernel_size=1, groups=r),
        )
        self.conv_guide = nn.Conv2d(channels, r, kernel_size=1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Apply MGD to ``x`` (B, C, h, w) with ``mask`` (B, 1, H, W) in [0, 1]; returns (B, C, h, w)."""
        b, c, h, w = x.shape
        kernels = self.conv_kernel(x).view(b, self.regions * c, c)  # rows: region-major, then output channel
        mixed = torch.bmm(kernels, x.reshape(b, c, h * w)).view(b, self.regions, c, h, w)
        m = resize_mask_nearest(mask, (h, w))
        return mixed[:, 0] * m + mixed[:, 1] * (1.0 - m)


class StyleFusion(nn.Module):
    """External style fusion: the encoder's region statistics re-normalise the decoder's foreground features.

    Not part of the reference HDNet: an optional decoder addition after "Image Harmonization with Region-wise
    Contrastive Learning" (Liang & Pun 2022), whose abstract describes injecting the background's appearance
    statistics from the encoder into the decoder as the style reference of the foreground (no code was
    published; this is our design). At one decoder stage, with ``d`` the stage's RAIN output (B, C_d, h, w)
    and ``e`` the encoder skip it is concatenated with (B, C_e, h, w), and ``m`` the mask at (h, w):

    * style vector ``z = [mu_bg(e), sd_bg(e), mu_fg(e), sd_fg(e)]`` (B, 4 C_e): the background's encoder
      statistics, plus the foreground's own so the layer can express the *mismatch* between the two;
    * ``(gamma, beta) = proj(z)``, a 1x1 linear map to 2 C_d values;
    * AdaIN-like re-normalisation of the foreground, inside the mask only:
      ``d' = d + m * (gamma * (d - mu_fg(d)) / sd_fg(d) + beta)``: the foreground's feature mean moves by
      ``beta`` and its standard deviation by ``gamma``; background positions (m = 0) are left exactly as
      they were.

    Region statistics are RAIN's (masked mean and std, epsilon 1e-5). ``proj`` starts at zero, so a fused
    network computes exactly what the network without fusion computes until training moves it (a model
    trained without fusion can be fine-tuned with it), while its gradient is non-zero from the first step.

    Args:
        encoder_channels: C_e, channels of the encoder skip the statistics are taken from.
        decoder_channels: C_d, channels of the decoder feature that is re-normalised.

    Example:
        >>> fusion = StyleFusion(4, 6)
        >>> d, e, m = torch.rand(1, 6, 8, 8), torch.rand(1, 4, 8, 8), torch.ones(1, 1, 8, 8)
        >>> bool(torch.equal(fusion(d, e, m), d))  # zero-initialised: the identity until trained
        True
    """

    def __init__(self, encoder_channels: int, decoder_channels: int) -> None:
        super().__init__()
        self.encoder_channels = encoder_channels
        self.decoder_channels = decoder_channels
        # skip_init: no draw from the global random stream, so adding fusion leaves a seeded HDNet's init alone.
        self.proj = torch.nn.utils.skip_init(nn.Conv2d, 4 * encoder_channels, 2 * decoder_channels, kernel_size=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero ``proj``: the fusion starts as the identity."""
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def style(self, encoder: Tensor, mask: Tensor) -> Tensor:
        """The style vector (B, 4 C_e, 1, 1) of ``encoder`` (B, C_e, h, w) under ``mask`` (B, 1, H, W) in [0, 1]."""
        m = resize_mask_nearest(mask, (encoder.shape[-2], encoder.shape[-1]))
        mean_bg, std_bg = _region_mean_std(encoder, 1.0 - m)
        mean_fg, std_fg = _region_mean_std(encoder, m)
        return torch.cat([mean_bg, std_bg, mean_fg, std_fg], dim=1)

    def forward(self, decoder: Tensor, encoder: Tensor, mask: Tensor) -> Tensor:
        """Re-normalise the foreground of ``decoder`` (B, C_d, h, w) with the statistics of ``encoder``
        (B, C_e, h, w) under ``mask`` (B, 1, H, W) in [0, 1]; returns (B, C_d, h, w)."""
        gamma, beta = self.proj(self.style(encoder, mask)).chunk(2, dim=1)
        m = resize_mask_nearest(mask, (decoder.shape[-2], decoder.shape[-1]))
        mean_fg, std_fg = _region_mean_std(decoder, m)
        return decoder + m * (gamma * (decoder - mean_fg) / std_fg + beta)
