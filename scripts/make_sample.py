#!/usr/bin/env python3
"""Make samples/dusk.mp4 and samples/dusk_masks/: a short composite clip that needs harmonizing.

Everything is procedural (numpy + OpenCV drawing, PyAV encoding), so the sample is ours to
redistribute (see samples/LICENSES.md). A cool, daylight-lit grey sphere is composited onto a warm dusk
landscape with a slow camera pan; the masks are its soft-edged alpha. The clip is 640x360, 24 fps, 3 s,
H.264 tagged BT.709 / limited range, with a stereo AAC tone so that audio passthrough can be seen.

Usage: python scripts/make_sample.py [--out samples]
"""

from __future__ import annotations

import argparse
import shutil
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

W, H, FPS, SECONDS = 640, 360, 24, 3
SAMPLE_RATE = 48000


def _noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    small = rng.random((h // scale + 2, w // scale + 2)).astype(np.float32)
    return cv2.resize(small, (w + 2 * scale, h + 2 * scale), interpolation=cv2.INTER_CUBIC)


def make_background(rng: np.random.Generator) -> np.ndarray:
    """A wide dusk landscape (float32 RGB in [0, 1]) that the camera pans across."""
    wide = W + 160
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    top, horizon = np.array([0.25, 0.18, 0.38]), np.array([0.98, 0.55, 0.25])
    sky = top + (horizon - top) * (y[..., None] ** 1.6)
    sky = np.repeat(sky, wide, axis=1)
    sun = np.exp(
        -(((np.arange(wide)[None] - 0.62 * wide) / 60.0) ** 2 + ((np.arange(H)[:, None] - 0.62 * H) / 40.0) ** 2)
    )
    sky += sun[..., None] * np.array([0.4, 0.3, 0.1])
    tex = _noise(rng, H, wide, 24)[:H, :wide]
    ridge = 0.62 * H + 40 * np.sin(np.arange(wide) / 70.0) + 25 * _noise(rng, 8, wide, 4)[0, :wide]
    hills = np.arange(H)[:, None] > ridge[None]
    ground = np.array([0.22, 0.12, 0.08]) * (0.7 + 0.6 * tex[..., None])
    image = np.where(hills[..., None], ground, sky)
    image *= 0.9 + 0.2 * _noise(rng, H, wide, 6)[:H, :wide, None]
    return np.clip(image, 0, 1).astype(np.float32)


def make_foreground(rng: np.random.Generator, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """A shaded, textured sphere lit by cool daylight, and its soft alpha (both float32)."""
    size = 2 * radius + 8
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) - size / 2
    r = np.sqrt(xx**2 + yy**2) / radius
    alpha = np.clip((1.0 - r) * radius / 2.0 + 0.5, 0, 1)  # about 2 px of soft edge
    z = np.sqrt(np.clip(1 - r**2, 0, 1))
    light = np.array([-0.5, -0.6, 0.62])
    shade = np.clip((xx / radius) * light[0] + (yy / radius) * light[1] + z * light[2], 0, 1)
    albedo = 0.55 + 0.25 * _noise(rng, size, size, 5)[:size, :size]
    daylight = np.array([0.85, 0.92, 1.0])
    fg = (0.12 + 0.88 * shade)[..., None] * albedo[..., None] * daylight
    return np.clip(fg, 0, 1).astype(np.float32), alpha.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "samples")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    background = make_background(rng)
    fg, fg_alpha = make_foreground(rng, radius=48)
    mask_dir = args.out / "dusk_masks"
    shutil.rmtree(mask_dir, ignore_errors=True)
    mask_dir.mkdir(parents=True)
    clip = args.out / "dusk.mp4"
    n = FPS * SECONDS
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"crf": "20", "preset": "slow"})
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        video.time_base = video.codec_context.time_base = Fraction(1, FPS * 512)
        for attr, value in (("color_primaries", 1), ("color_trc", 1), ("colorspace", 1), ("color_range", 1)):
            setattr(video.codec_context, attr, value)  # BT.709, limited range
        audio = out.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        t_audio = np.arange(SECONDS * SAMPLE_RATE) / SAMPLE_RATE
        tone = (0.2 * np.sin(2 * np.pi * 220 * t_audio) * np.minimum(1, 4 * (SECONDS - t_audio))).astype(np.float32)
        samples = np.stack([tone, tone])
        for i in range(n):
            t = i / (n - 1)
            pan = int(160 * t)
            frame = background[:, pan : pan + W].copy()
            cx, cy = int(120 + 380 * t), int(200 - 50 * np.sin(np.pi * t))
            h, w = fg_alpha.shape
            y0, x0 = cy - h // 2, cx - w // 2
            a = np.zeros((H, W), np.float32)
            a[y0 : y0 + h, x0 : x0 + w] = fg_alpha
            layer = np.zeros_like(frame)
            layer[y0 : y0 + h, x0 : x0 + w] = fg
            comp = layer * a[..., None] + frame * (1 - a[..., None])
            rgb = np.round(comp * 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf = vf.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            vf.pts, vf.time_base = i * 512, video.time_base
            for packet in video.encode(vf):
                out.mux(packet)
            cv2.imwrite(str(mask_dir / f"{i:05d}.png"), np.round(a * 255).astype(np.uint8))
        for packet in video.encode():
            out.mux(packet)
        step = 1024
        for start in range(0, samples.shape[1], step):
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + step]), format="fltp", layout="stereo"
            )
            af.sample_rate, af.pts = SAMPLE_RATE, start
            for packet in audio.encode(af):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    print(f"wrote {clip} ({clip.stat().st_size / 1e6:.2f} MB, {n} frames) and {n} masks in {mask_dir}")


if __name__ == "__main__":
    main()
