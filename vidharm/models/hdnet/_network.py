"""The HDNet generator (v3 / ACM MM 2023 design), state-dict compatible with the reference's 65 keys."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidharm.errors import CheckpointError, ShapeError, UsageError
from vidharm.models.hdnet._blocks import LocalDynamics, MaskGuidedDynamicConv, RegionAwareNorm, StyleFusion

__all__ = ["HDNet", "checkpoint_filter_fn", "MASK_THRESHOLD", "HDNET_SIZE", "FUSION_STAGES", "DEFAULT_FUSION_STAGES"]

# The size the reference was trained and evaluated at (its loader forces 256x256).
HDNET_SIZE = 256
# The reference trains on binary masks; a soft matte is cut here before it reaches the network.
MASK_THRESHOLD = 0.5
# Three stride-2 convolutions: H and W must divide by 2**3.
_STRIDE = 8
_IN_EPS = 1e-5  # torch InstanceNorm2d default, as the reference uses (affine=False, no running stats)

FUSION_STAGES: tuple[int, ...] = (72, 8, 9, 10, 11, 12, 13)
"""Decoder stages (``model_layerN``) that can take external style fusion, coarse to fine."""
DEFAULT_FUSION_STAGES: tuple[int, ...] = (11, 12, 13)
"""The stages the registered ``*_fusion`` models fuse at: 1/2, 1/2 and full size, where the encoder skips
(``s2``, ``s1``, ``s0``) still carry the image's colour statistics (``s0`` is not instance-normalised)."""


class _ActConv(nn.Sequential):
    """(activation, conv) pair; the index-1 conv gives the reference names ``model_layerN.1.weight``."""

    def __init__(self, act: nn.Module, conv: nn.Module) -> None:
        super().__init__(act, conv)


def _down(c_in: int, c_out: int, kernel: int) -> _ActConv:
    stride = 2 if kernel == 4 else 1
    return _ActConv(nn.LeakyReLU(0.2), nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1, bias=False))


def _up(c_in: int, c_out: int, kernel: int, bias: bool = False) -> _ActConv:
    stride = 2 if kernel == 4 else 1
    return _ActConv(nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride, padding=1, bias=bias))


class HDNet(nn.Module):
    """HDNet generator: U-Net with LD at the 1/8 bottleneck, RAIN in the decoder and MGD at three stages.

    ``forward`` is the pipeline's door: it takes ``image`` RGB in [0, 1] and ``mask`` in [0, 1] at a size
    divisible by 8 and >= 16 (the pipeline resizes to 256x256, the only size the reference was trained at), does
    the [-1, 1] normalisation, runs the network on the mask cut at 0.5 (the reference only ever saw binary
    masks) and returns the harmonized image in [0, 1]: network output inside the mask, the input outside,
    blended with the *soft* mask so matte edges stay soft. ``net_output`` is the bare network.

    The reference's in-place activations mean every encoder skip is the *activated* feature
    (LeakyReLU(0.2) applied to x0..x6); that is reproduced here without in-place ops.

    Args:
        ngf: base width (32 for HDNet, 8 for HDNet-lite).
        input_nc: 3 (the reference default: the encoder never sees the mask) or 4 (mask as 4th channel).
        mask_threshold: cut applied to the mask before the network in ``forward``; ``None`` passes a soft
            mask through unchanged (RAIN, LD and MGD then weight by it; never trained that way).
        style_fusion: decoder stages (from :data:`FUSION_STAGES`) that get a :class:`StyleFusion` after their
            RAIN, fed by the encoder skip the stage is concatenated with; ``()`` (the default) is the reference
            network, key for key and output for output. Fusion adds the keys ``model_layerNfusion.proj.*``
            after the reference's 65 and starts as the identity.

    Raises:
        UsageError: ngf < 1, input_nc not 3 or 4, or an unknown fusion stage.

    Example:
        >>> net = HDNet(ngf=2).eval()
        >>> image, mask = torch.rand(1, 3, 16, 24), (torch.rand(1, 1, 16, 24) > 0.5).float()
        >>> out = net(image, mask)
        >>> out.shape, bool(((out - image) * (1 - mask)).abs().max() == 0)
        (torch.Size([1, 3, 16, 24]), True)
    """

    def __init__(
        self,
        ngf: int = 32,
        input_nc: int = 3,
        mask_threshold: float | None = MASK_THRESHOLD,
        style_fusion: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if ngf < 1:
            raise UsageError(f"HDNet: ngf must be a positive integer, got {ngf}; use 32 (HDNet) or 8 (lite)")
        if input_nc not in (3, 4):
            raise UsageError(f"HDNet: input_nc must be 3 or 4, got {input_nc}; use 3 (the reference default)")
        bad = [s for s in style_fusion if s not in FUSION_STAGES]
        if bad:
            raise UsageError(
                f"HDNet: style_fusion stages must be among {FUSION_STAGES}, got {tuple(style_fusion)}; "
                f"use {DEFAULT_FUSION_STAGES} (or () for the reference network)"
            )
        self.ngf = ngf
        self.input_nc = input_nc
        self.mask_threshold = mask_threshold
        self.style_fusion = tuple(s for s in FUSION_STAGES if s in style_fusion)
        c1, c2, c4, c8 = ngf, 2 * ngf, 4 * ngf, 8 * ngf

        self.model_layer0 = nn.Conv2d(input_nc, c1, 3, stride=1, padding=1, bias=False)
        self.model_layer1 = _down(c1, c2, 4)
        self.model_layer2 = _down(c2, c4, 3)
        self.model_layer3 = _down(c4, c8, 4)
        self.model_layer4 = _down(c8, c8, 3)
        self.model_layer5 = _down(c8, c8, 4)
        self.model_layer6 = _down(c8, c8, 3)
        self.model_layer71 = _down(c8, c8, 3)

        self.model_layer72 = _up(c8, c8, 3)
        self.model_layer72norm = RegionAwareNorm(c8)
        self.model_layer8 = _up(2 * c8, c8, 3)
        self.model_layer8norm = RegionAwareNorm(c8)
        self.model_layer9 = _up(2 * c8, c8, 4)
        self.model_layer9norm = RegionAwareNorm(c8)
        self.model_layer10 = _up(2 * c8, c8, 3)
        self.model_layer10norm = RegionAwareNorm(c8)
        self.model_layer11 = _up(2 * c8, c4, 4)
        self.model_layer11norm = RegionAwareNorm(c4)
        self.model_layer11att = MaskGuidedDynamicConv(2 * c4)
        self.model_layer12 = _up(2 * c4, c2, 3)
        self.model_layer12norm = RegionAwareNorm(c2)
        self.model_layer12att = MaskGuidedDynamicConv(2 * c2)
        self.model_layer13 = _up(2 * c2, c1, 4)
        self.model_layer13norm = RegionAwareNorm(c1)
        self.model_layer13att = MaskGuidedDynamicConv(2 * c1)
        self.model_out = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * c1, 3, 3, stride=1, padding=1), nn.Tanh())
        self.LD = LocalDynamics(c8)  # defined last, as in the reference, so state_dict order matches
        # Optional, after the reference keys. Decoder stage n's output and its skip have the same width.
        width = {72: c8, 8: c8, 9: c8, 10: c8, 11: c4, 12: c2, 13: c1}
        for stage in self.style_fusion:
            setattr(self, f"model_layer{stage}fusion", StyleFusion(width[stage], width[stage]))
        self.reset_parameters()

    @property
    def unused_parameters(self) -> list[str]:
        """Names of parameters ``forward`` never uses (the MGD ``conv_guide`` kept for state-dict parity)."""
        return [name for name, _ in self.named_parameters() if ".conv_guide." in name]

    def reset_parameters(self) -> None:
        """Reference initialisation: conv weights ~ N(0, 0.02), biases 0, RAIN parameters 0; fusion zero.

        The fusion layers draw nothing from the random stream, so for one seed the reference parameters of a
        fused network equal those of the plain one.
        """
        fusions = [m for m in self.modules() if isinstance(m, StyleFusion)]
        skip = {id(m.proj) for m in fusions}
        for fusion in fusions:
            fusion.reset_parameters()
        for module in self.modules():
            if id(module) in skip:
                continue
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, RegionAwareNorm):
                for p in module.parameters():
                    nn.init.zeros_(p)

    def _check(self, name: str, x: Tensor, mask: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ShapeError(f"HDNet: {name} must be (B, 3, H, W), got {tuple(x.shape)}; pass RGB as NCHW")
        b, _, h, w = x.shape
        if mask.dim() != 4 or tuple(mask.shape) != (b, 1, h, w):
            raise ShapeError(
                f"HDNet: mask must be (B, 1, H, W) = {(b, 1, h, w)} to match {name}, got {tuple(mask.shape)}"
            )
        if h % _STRIDE or w % _STRIDE or min(h, w) < 2 * _STRIDE:
            raise ShapeError(
                f"HDNet: H and W must be multiples of {_STRIDE} (three stride-2 convs) and at least {2 * _STRIDE} "
                f"(instance norm at 1/8 size), got {h}x{w}; resize to {HDNET_SIZE}x{HDNET_SIZE} (the training size) "
                "before calling the model"
            )

    def net_output(self, x: Tensor, mask: Tensor) -> Tensor:
        """Run the bare network, as the reference's ``netG(x, mask)``.

        Args:
            x: (B, 3, H, W) composite in [-1, 1] (``(image - 0.5) / 0.5``); H, W multiples of 8, >= 16.
            mask: (B, 1, H, W) in [0, 1], binary in the reference; used as given (no threshold here).

        Returns:
            (B, 3, H, W) tanh output in [-1, 1], before any blending.

        Raises:
            ShapeError: wrong ranks, mismatched sizes, or H/W not multiples of 8 or below 16.

        Example:
            >>> net = HDNet(ngf=2)
            >>> net.net_output(torch.zeros(1, 3, 16, 16), torch.ones(1, 1, 16, 16)).shape
            torch.Size([1, 3, 16, 16])
        """
        self._check("x", x, mask)
        mask = mask.to(x.dtype)
        inp = torch.cat([x, mask], dim=1) if self.input_nc == 4 else x

        def inorm(t: Tensor) -> Tensor:
            return F.instance_norm(t, eps=_IN_EPS)

        act = F.leaky_relu
        # Encoder. skip_k is the *activated* feature: the reference's in-place LeakyReLU inside the next
        # layer overwrites the tensor it later concatenates.
        s0 = act(self.model_layer0(inp), 0.2)
        s1 = act(inorm(self.model_layer1[1](s0)), 0.2)
        s2 = act(inorm(self.model_layer2[1](s1)), 0.2)
        s3 = act(inorm(self.model_layer3[1](s2)), 0.2)
        s4 = act(inorm(self.model_layer4[1](s3)), 0.2)
        s5 = act(inorm(self.model_layer5[1](s4)), 0.2)
        s6 = act(inorm(self.model_layer6[1](s5)), 0.2)
        x71 = self.model_layer71[1](s6)
        x71 = self.LD(x71, mask)

        fuse = self._fuse
        # Decoder: (ReLU, ConvT), RAIN, [style fusion], concat the skip in front, then MGD on the three finest.
        d = torch.cat([s6, fuse(72, self.model_layer72norm(self.model_layer72(x71), mask), s6, mask)], dim=1)
        d = torch.cat([s5, fuse(8, self.model_layer8norm(self.model_layer8(d), mask), s5, mask)], dim=1)
        d = torch.cat([s4, fuse(9, self.model_layer9norm(self.model_layer9(d), mask), s4, mask)], dim=1)
        d = torch.cat([s3, fuse(10, self.model_layer10norm(self.model_layer10(d), mask), s3, mask)], dim=1)
        d = torch.cat([s2, fuse(11, self.model_layer11norm(self.model_layer11(d), mask), s2, mask)], dim=1)
        d = self.model_layer11att(d, mask)
        d = torch.cat([s1, fuse(12, self.model_layer12norm(self.model_layer12(d), mask), s1, mask)], dim=1)
        d = self.model_layer12att(d, mask)
        d = torch.cat([s0, fuse(13, self.model_layer13norm(self.model_layer13(d), mask), s0, mask)], dim=1)
        d = self.model_layer13att(d, mask)
        return self.model_out(d)

    def _fuse(self, stage: int, decoder: Tensor, skip: Tensor, mask: Tensor) -> Tensor:
        if stage not in self.style_fusion:
            return decoder
        fusion: StyleFusion = getattr(self, f"model_layer{stage}fusion")
        return fusion(decoder, skip, mask)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        """Harmonize ``image`` inside ``mask`` and return it in [0, 1].

        Args:
            image: (B, 3, H, W) RGB composite in [0, 1]; H, W multiples of 8, >= 16 (256x256 is the trained size).
            mask: (B, 1, H, W) foreground in [0, 1]; cut at ``mask_threshold`` for the network, used soft
                for the final blend.

        Returns:
            (B, 3, H, W) in [0, 1]: ``(out + 1) / 2 * mask + image * (1 - mask)``.

        Raises:
            ShapeError: wrong ranks, mismatched sizes, or H/W not multiples of 8 or below 16 (resize to 256x256).

        Example:
            >>> HDNet(ngf=2)(torch.rand(2, 3, 16, 24), torch.ones(2, 1, 16, 24)).shape
            torch.Size([2, 3, 16, 24])
        """
        self._check("image", image, mask)
        mask = mask.to(image.dtype)
        net_mask = mask if self.mask_threshold is None else (mask >= self.mask_threshold).to(image.dtype)
        out = self.net_output((image - 0.5) / 0.5, net_mask)
        return (out + 1.0) / 2.0 * mask + image * (1.0 - mask)


_PREFIXES = ("module.", "netG.", "model.")
_WRAPPERS = ("state_dict", "model", "netG", "G")


def checkpoint_filter_fn(state_dict: Mapping[str, object], model: nn.Module | None = None) -> dict[str, Tensor]:
    """Bring an HDNet checkpoint into this module's key layout.

    Accepts the official inference layout (``latest_net_G.pth``: the 65 bare keys, saved from
    ``net.module``), a training layout wrapped in a ``state_dict``/``model``/``netG`` entry, and
    ``module.`` (DataParallel) or ``netG.`` prefixes. InstanceNorm running-stat keys, which the
    reference strips when loading, are dropped. Values are returned as float32.

    Args:
        state_dict: the loaded checkpoint object.
        model: unused; accepted for the registry's filter-function signature.

    Returns:
        A flat ``{name: tensor}`` dict ready for strict loading.

    Raises:
        CheckpointError: the object holds no tensors.

    Example:
        >>> sd = checkpoint_filter_fn({"model": {"module.model_out.1.bias": torch.zeros(3)}})
        >>> list(sd)
        ['model_out.1.bias']
    """
    obj: object = state_dict
    while isinstance(obj, Mapping) and not any(isinstance(v, Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _WRAPPERS if k in obj and isinstance(obj[k], Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not any(isinstance(v, Tensor) for v in obj.values()):
        keys = list(obj)[:5] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"HDNet checkpoint: expected a state dict of tensors (or one under 'state_dict'/'model'), got {keys}; "
            "pass a latest_net_G.pth-style file"
        )
    out: dict[str, Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, Tensor):
            continue
        name = str(key)
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if name.startswith(prefix) and not name.startswith("model_"):
                    name = name[len(prefix) :]
                    changed = True
        if re.search(r"norm\.(running_mean|running_var|num_batches_tracked)$", name):
            continue
        out[name] = value.float() if value.is_floating_point() else value
    return out
