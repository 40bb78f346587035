"""Benchmark HDNet on CPU and check how well 256^2 -> full-resolution colour transfer reproduces a native run.

Prints, for ngf=32 (HDNet) and ngf=8 (HDNet-lite):

1. the parameter count and the per-frame forward time at 256x256 with 1 torch thread and the default, of the
   reference network and of its external-style-fusion variant (``hdnet_fusion`` / ``hdnet_lite_fusion``: a
   :class:`~vidharm.models.hdnet.StyleFusion` at decoder stages 11, 12 and 13);
2. on a few real frames of ../shared/data/video, the foreground PSNR against running the network natively
   at 512x512 of: the 256 output upsampled bilinearly, the global affine and quadratic transfers
   (``fit_color_transform``), and the local grid transfers (``fit_local_affine_grid``, plain and bilateral),
   each fitted on the 256 pair and applied at 512, plus the time of each fit + apply at the clip's 854x480.

No trained HDNet weights exist (the authors withheld them), so the networks use SEEDED RANDOM WEIGHTS:
the reference init, spread the way the parity fixture's recipe spreads it (RAIN and MGD parameters made
non-trivial) so the output depends on the input. A random network's output is far from a colour transform
of its input, so the PSNRs compare the transfers with one another; they say little about a trained model.

Usage: .venv/bin/python scripts/bench_hdnet.py [--frames 2] [--repeats 3] [--data ../shared/data/video]
           [--timing-only]
Runs in about two minutes on 2 idle CPU cores (``--timing-only``: the first table only).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidharm.filters.transfer import (
    apply_color_transform,
    apply_local_affine_grid,
    fit_color_transform,
    fit_local_affine_grid,
)
from vidharm.models.hdnet import DEFAULT_FUSION_STAGES, HDNet

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video"
SEQUENCES = ("blackswan", "breakdance")
NATIVE = 512
LOW = 256


def spread_weights(model: HDNet, seed: int) -> HDNet:
    """Seeded reference init, then the parity fixture's spreading recipe (shared/parity/README.md)."""
    torch.manual_seed(seed)
    model.reset_parameters()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_gamma"):
                p.uniform_(-0.3, 0.3)
            elif name.endswith("_beta"):
                p.normal_(0.0, 0.1)
            elif name.endswith("conv_kernel.1.weight"):
                p.mul_(10)
            elif name.endswith("conv_kernel.1.bias"):
                p.normal_(0.0, 0.5)
            elif name.endswith("conv_kernel.3.weight"):
                p.mul_(4)
            elif name.endswith("conv_kernel.3.bias"):
                channels = int(math.isqrt(p.numel() // 2))
                p.normal_(0.0, 0.5 / math.sqrt(channels))
            elif name.endswith("conv_guide.bias") or name == "LD.linear.bias":
                p.normal_(0.0, 0.02)
            elif name == "model_layer71.1.weight":
                p.mul_(0.25)
            elif name == "model_out.1.weight":
                p.mul_(5)
            elif name == "model_out.1.bias":
                p.normal_(0.0, 0.1)
            elif ".proj." in name:  # style fusion (zero at init): made non-trivial so it costs what it will
                p.normal_(0.0, 0.05)
    return model.eval()


def load_frame(data: Path, sequence: str, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A real frame with a recoloured foreground (a synthetic composite) and its mask, NCHW in [0, 1]."""
    bgr = cv2.imread(str(data / "frames" / sequence / f"{index:05d}.jpg"), cv2.IMREAD_COLOR)
    gray = cv2.imread(str(data / "masks" / sequence / f"{index:05d}.png"), cv2.IMREAD_GRAYSCALE)
    if bgr is None or gray is None:
        raise SystemExit(
            f"cannot read frame {index} of {sequence} under {data}; pass --data pointing at shared/data/video"
        )
    image = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)[None].float().div(255)
    mask = torch.from_numpy((gray >= 128).astype(np.float32))[None, None]
    gain = torch.tensor([1.15, 0.95, 0.8]).view(1, 3, 1, 1)
    shift = torch.tensor([0.03, 0.0, -0.02]).view(1, 3, 1, 1)
    composite = (image * gain + shift).clamp(0, 1) * mask + image * (1 - mask)
    return composite, mask


def resize(image: torch.Tensor, size: int | tuple[int, int], is_mask: bool = False) -> torch.Tensor:
    size = (size, size) if isinstance(size, int) else size
    out = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
    return (out >= 0.5).float() if is_mask else out


def fg_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    mse = float(((a - b) ** 2 * mask).sum() / (3 * mask.sum()).clamp(min=1))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def time_forward(model: HDNet, threads: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    image = torch.rand(1, 3, LOW, LOW, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, LOW, LOW)
    mask[..., 64:192, 80:176] = 1
    times = []
    with torch.no_grad():
        model(image, mask)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(image, mask)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def transfers(source, target, mask_low):  # type: ignore[no-untyped-def]
    """name -> (fit, apply(image, mask)) for each transfer method."""
    return {
        "global affine (12)": (
            lambda: fit_color_transform(source, target, mask_low, 1),
            lambda c, img, m: apply_color_transform(img, c, 1, mask=m),
        ),
        "global quadratic (30)": (
            lambda: fit_color_transform(source, target, mask_low, 2),
            lambda c, img, m: apply_color_transform(img, c, 2, mask=m),
        ),
        "local grid 8x8": (
            lambda: fit_local_affine_grid(source, target, mask_low, grid=(8, 8)),
            lambda c, img, m: apply_local_affine_grid(img, c, mask=m),
        ),
        "bilateral grid 8x8x4": (
            lambda: fit_local_affine_grid(source, target, mask_low, grid=(8, 8, 4)),
            lambda c, img, m: apply_local_affine_grid(img, c, mask=m),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2, help="frames per sequence for the transfer check")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per setting (median reported)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared/data/video folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing-only", action="store_true", help="parameter counts and forward times only")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()

    print("HDNet CPU benchmark -- SEEDED RANDOM WEIGHTS (no trained HDNet weights exist); numbers are not quality")
    print(f"torch {torch.__version__}, default threads {default_threads}\n")
    models = {ngf: spread_weights(HDNet(ngf=ngf), args.seed) for ngf in (32, 8)}
    variants = {
        "hdnet (ngf=32)": models[32],
        "hdnet_fusion (ngf=32)": spread_weights(HDNet(ngf=32, style_fusion=DEFAULT_FUSION_STAGES), args.seed),
        "hdnet_lite (ngf=8)": models[8],
        "hdnet_lite_fusion (ngf=8)": spread_weights(HDNet(ngf=8, style_fusion=DEFAULT_FUSION_STAGES), args.seed),
    }
    threads_head = f"256^2, {default_threads} threads"
    print(f"| model | params | of which fusion | 256^2, 1 thread | {threads_head} |\n|---|---:|---:|---:|---:|")
    for name, model in variants.items():
        params = sum(p.numel() for p in model.parameters())
        fusion = sum(p.numel() for n, p in model.named_parameters() if "fusion." in n)
        one = time_forward(model, 1, args.repeats)
        many = time_forward(model, default_threads, args.repeats)
        print(f"| {name} | {params:,} | {fusion:,} | {one * 1000:.0f} ms | {many * 1000:.0f} ms |")
    torch.set_num_threads(default_threads)
    if args.timing_only:
        return

    print(f"\nTransfer 256^2 -> {NATIVE}^2 vs the network run natively at {NATIVE}^2: foreground PSNR (dB)")
    frames = [(seq, i * 20) for seq in SEQUENCES for i in range(args.frames)]
    for ngf, model in models.items():
        rows: dict[str, list[float]] = {}
        cost: dict[str, list[float]] = {}
        for sequence, index in frames:
            composite, mask = load_frame(args.data, sequence, index)
            image_n, mask_n = resize(composite, NATIVE), resize(mask, NATIVE, is_mask=True)
            image_l, mask_l = resize(composite, LOW), resize(mask, LOW, is_mask=True)
            with torch.no_grad():
                native = model(image_n, mask_n)
                low = model(image_l, mask_l)
            rows.setdefault("no change (composite)", []).append(fg_psnr(image_n, native, mask_n))
            upsampled = resize(low, NATIVE) * mask_n + image_n * (1 - mask_n)
            rows.setdefault("256 output upsampled", []).append(fg_psnr(upsampled, native, mask_n))
            for name, (fit, apply) in transfers(image_l, low, mask_l).items():
                rows.setdefault(name, []).append(fg_psnr(apply(fit(), image_n, mask_n), native, mask_n))
                start = time.perf_counter()
                apply(fit(), composite, mask)  # at the clip's own 854x480
                cost.setdefault(name, []).append(time.perf_counter() - start)
        print(f"\nngf={ngf} ({len(frames)} frames: {', '.join(f'{s}/{i:05d}' for s, i in frames)})")
        for name, values in rows.items():
            timing = f"   fit+apply at 854x480: {statistics.median(cost[name]) * 1000:.0f} ms" if name in cost else ""
            print(f"  {name:<24}{statistics.mean(values):7.2f}{timing}")


if __name__ == "__main__":
    main()
