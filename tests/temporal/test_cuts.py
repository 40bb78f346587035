"""Tests for vidharm/temporal/_cuts.py: background signatures and scene-cut detection."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidharm.errors import InputError, MaskError, ShapeError, UsageError
from vidharm.temporal import (
    DEFAULT_CUT_THRESHOLD,
    SIGNATURE_SIZE,
    background_signature,
    detect_scene_cuts,
    signature_distance,
)

SEQUENCES = ("blackswan", "breakdance")


def _scene(seed: int, hue_shift: int, h: int = 90, w: int = 160) -> np.ndarray:
    """A textured RGB background: smooth noise around a base colour."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 4)
    base = np.array([[[180, 120, 60]]], np.float32) if hue_shift == 0 else np.array([[[40, 90, 200]]], np.float32)
    return np.clip(0.6 * base + 0.4 * noise, 0, 255).astype(np.uint8)


def _moving_square(t: int, h: int = 90, w: int = 160) -> np.ndarray:
    mask = np.zeros((h, w))
    x = 10 + 8 * t
    mask[30:60, x : x + 30] = 1.0
    return mask


@functools.cache
def _davis_signatures(root: str) -> dict[str, np.ndarray]:
    out = {}
    for seq in SEQUENCES:
        frames = sorted((Path(root) / "frames" / seq).glob("*.jpg"))
        sigs = []
        for f in frames:
            image = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
            mask = cv2.imread(str(Path(root) / "masks" / seq / (f.stem + ".png")), cv2.IMREAD_GRAYSCALE) / 255.0
            sigs.append(background_signature(image, mask))
        out[seq] = np.stack(sigs)
    return out


@pytest.fixture
def davis(shared: Callable[..., Path]) -> dict[str, np.ndarray]:
    return _davis_signatures(str(shared("data", "video")))


# ---- signatures


def test_signature_shape_range_and_sum() -> None:
    sig = background_signature(_scene(0, 0), _moving_square(0))
    assert sig.shape == (SIGNATURE_SIZE,) == (25,)
    assert sig.dtype == np.float64
    assert (sig >= 0).all() and (sig <= 0.5 + 1e-12).all()
    assert sig.sum() == pytest.approx(1.0, abs=1e-12)
    assert sig[:9].sum() == pytest.approx(0.5, abs=1e-12)


def test_signature_reference_values_for_flat_colours() -> None:
    grey = np.full((10, 10, 3), 128, np.uint8)
    sig = background_signature(grey, np.zeros((10, 10)))
    np.testing.assert_allclose(sig[:8], 0.0, atol=1e-12)  # no saturation: all colour mass in the grey bin
    assert sig[8] == pytest.approx(0.5)
    # value 128/255 = 0.502 sits at position 7.53 of 16 bins: split between bins 7 and 8.
    pos = 128 / 255 * 16 - 0.5
    assert sig[9 + 7] == pytest.approx(0.5 * (8 - pos), abs=1e-6)
    assert sig[9 + 8] == pytest.approx(0.5 * (pos - 7), abs=1e-6)


def test_signature_ignores_the_foreground() -> None:
    # At or below the 128-pixel working size nothing is resampled: the foreground has no influence at all.
    background = _scene(1, 0, h=64, w=96)
    mask = np.zeros((64, 96))
    mask[20:40, 30:60] = 1.0
    other = background.copy()
    other[mask > 0] = (0, 255, 0)  # the foreground changes completely
    np.testing.assert_allclose(background_signature(background, mask), background_signature(other, mask), atol=1e-12)
    # Larger frames are area-downsampled first, so edge pixels mix a little foreground in: far below a cut.
    background = _scene(1, 0)
    mask = _moving_square(2)
    other = background.copy()
    other[mask > 0] = (0, 255, 0)
    d = signature_distance(background_signature(background, mask), background_signature(other, mask))
    assert d < DEFAULT_CUT_THRESHOLD / 20


def test_signature_uint16_matches_uint8() -> None:
    image = _scene(2, 1)
    mask = _moving_square(1)
    np.testing.assert_allclose(
        background_signature(image.astype(np.uint16) * 257, mask), background_signature(image, mask), atol=1e-6
    )


def test_signature_full_mask_describes_whole_frame() -> None:
    image = _scene(3, 0)
    sig = background_signature(image, np.ones(image.shape[:2]))
    np.testing.assert_allclose(sig, background_signature(image, np.zeros(image.shape[:2])), atol=1e-12)


def test_signature_errors() -> None:
    image = _scene(4, 0)
    with pytest.raises(MaskError, match="divide 8-bit masks by 255"):
        background_signature(image, np.full(image.shape[:2], 255.0))
    with pytest.raises(ShapeError, match="mask"):
        background_signature(image, np.zeros((5, 5)))
    with pytest.raises(ShapeError, match="image"):
        background_signature(image[..., :2], np.zeros(image.shape[:2]))
    with pytest.raises(InputError, match="dtype"):
        background_signature(image.astype(np.float32), np.zeros(image.shape[:2]))


def test_signature_distance_reference_values() -> None:
    a = np.array([0.5, 0.5, 0.0, 0.0])
    assert signature_distance(a, a) == 0.0
    assert signature_distance(a, np.array([0.0, 0.0, 0.5, 0.5])) == 1.0
    b = np.array([0.25, 0.25, 0.25, 0.25])
    expected = 0.5 * (2 * 0.25**2 / 0.75 + 2 * 0.25**2 / 0.25)
    assert signature_distance(a, b) == pytest.approx(expected) == pytest.approx(signature_distance(b, a))
    with pytest.raises(ShapeError):
        signature_distance(a, a[:3])


# ---- detection on synthetic clips


def test_two_backgrounds_cut_found_at_the_right_index() -> None:
    frames = [(_scene(10, 0), _moving_square(t)) for t in range(6)] + [
        (_scene(11, 1), _moving_square(t)) for t in range(6, 11)
    ]
    sigs = np.stack([background_signature(img, m) for img, m in frames])
    assert detect_scene_cuts(sigs) == [6]
    assert detect_scene_cuts(sigs.round(4)) == [6]  # signatures as stored in a JSON sidecar


def test_same_scene_with_noise_and_moving_foreground_has_no_cut() -> None:
    rng = np.random.default_rng(12)
    background = _scene(12, 0)
    sigs = []
    for t in range(10):
        noisy = np.clip(background + rng.normal(0, 4, background.shape), 0, 255).astype(np.uint8)
        sigs.append(background_signature(noisy, _moving_square(t)))
    assert detect_scene_cuts(np.stack(sigs)) == []


def test_threshold_controls_sensitivity() -> None:
    sigs = np.stack([background_signature(_scene(13, k), np.zeros((90, 160))) for k in (0, 1)])
    d = signature_distance(sigs[0], sigs[1])
    assert detect_scene_cuts(sigs, threshold=d * 0.99) == [1]
    assert detect_scene_cuts(sigs, threshold=min(1.0, d * 1.01)) == []


def test_detect_errors_and_short_input() -> None:
    assert detect_scene_cuts(np.zeros((1, 25))) == []
    assert detect_scene_cuts(np.zeros((0, 25))) == []
    with pytest.raises(UsageError, match="threshold"):
        detect_scene_cuts(np.zeros((3, 25)), threshold=0.0)
    with pytest.raises(UsageError, match="threshold"):
        detect_scene_cuts(np.zeros((3, 25)), threshold=1.5)
    with pytest.raises(ShapeError, match=r"\(T, K\)"):
        detect_scene_cuts(np.zeros(25))
    with pytest.raises(InputError, match="finite non-negative"):
        detect_scene_cuts(np.full((3, 25), -0.1))


# ---- real DAVIS sequences (camera motion, fast foreground motion, blur)


@pytest.mark.parametrize("seq", SEQUENCES)
def test_davis_sequences_have_no_cuts(davis: dict[str, np.ndarray], seq: str) -> None:
    sigs = davis[seq]
    assert detect_scene_cuts(sigs) == []
    assert detect_scene_cuts(sigs[::5]) == []  # HYouTube-like 5-frame stride
    assert detect_scene_cuts(sigs.round(4)) == []
    # Margin: the largest within-shot step stays far below the threshold.
    steps = [signature_distance(a, b) for a, b in zip(sigs[:-1], sigs[1:], strict=True)]
    assert max(steps) < DEFAULT_CUT_THRESHOLD / 10


def test_davis_concatenation_has_exactly_one_cut_at_the_join(davis: dict[str, np.ndarray]) -> None:
    joined = np.concatenate([davis["blackswan"], davis["breakdance"]])
    assert detect_scene_cuts(joined) == [len(davis["blackswan"])]
    reverse = np.concatenate([davis["breakdance"], davis["blackswan"]])
    assert detect_scene_cuts(reverse) == [len(davis["breakdance"])]
