from __future__ import annotations

import numpy as np
import pytest
import torch

from vidharm.filters import measure_filter_stats
from vidharm.pipeline import frame_histogram, stats_from_histograms


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_histogram_stats_equal_full_frame_stats(dtype: type) -> None:
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    image = rng.integers(0, top + 1, size=(37, 53, 3), dtype=dtype)
    image[:5] = top  # some saturated pixels so the clamps matter
    args = torch.tensor([[0.4, 0.6, 0.3, 0.1, 0.0, 0.0], [-0.7, -0.2, 0.0, 0.0, 0.5, 0.5], [1.5, 2.0, 0, 0, 0, 0]])
    x = torch.from_numpy(image.astype(np.float64) / top).permute(2, 0, 1)[None].expand(3, -1, -1, -1)
    expected = measure_filter_stats(x, args.double())
    hist = torch.from_numpy(np.stack([frame_histogram(image)] * 3))
    got = stats_from_histograms(hist, args)
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)
