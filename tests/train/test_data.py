"""Tests for vidharm/train/data.py: layouts, clear errors for bad folders, the grouped held-out split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import InputError, MaskError
from vidharm.io import write_image
from vidharm.train.data import ImageCache, load_sample, open_dataset


def test_photo_folder_split_is_disjoint_and_seeded(photos: Path) -> None:
    data = open_dataset(photos, val_fraction=0.34, split_seed=0)
    assert data.kind == "photos"
    train_ids, held_ids = {s.id for s in data.train}, {s.id for s in data.held_out}
    assert not train_ids & held_ids and len(train_ids | held_ids) == 6
    assert len(held_ids) == 3  # ceil(0.34 * 6)
    assert held_ids == {s.id for s in open_dataset(photos, 0.34, 0).held_out}


def test_video_frames_are_held_out_by_sequence(tmp_path: Path, make_photos) -> None:
    rows = ["id,dataset,label"]
    rows += [f"{i:05d},photos,thing" for i in range(4)]
    rows += [f"{i:05d},DAVIS 2016 val,{'cows' if i < 8 else 'dog'}" for i in range(4, 12)]
    root = make_photos(tmp_path / "mixed", count=12, size=16, manifest="\n".join(rows) + "\n")
    data = open_dataset(root, val_fraction=0.3, split_seed=0)
    held = {s.id: s for s in data.held_out}
    davis_held = {s.group for s in held.values() if "DAVIS" in s.dataset}
    assert len(davis_held) == 1  # ceil(0.3 * 2) = 1 of the 2 sequences, all its frames
    for s in data.train:
        assert s.group not in davis_held
    assert data.held_out_groups["DAVIS 2016 val"] == sorted(davis_held)


def test_empty_and_malformed_folders_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        open_dataset(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match="not a dataset folder"):
        open_dataset(tmp_path / "junk")
    (tmp_path / "noimg" / "images").mkdir(parents=True)
    (tmp_path / "noimg" / "masks").mkdir()
    with pytest.raises(InputError, match="no images found"):
        open_dataset(tmp_path / "noimg")
    (tmp_path / "only" / "images").mkdir(parents=True)
    with pytest.raises(MaskError, match="no masks/ folder"):
        open_dataset(tmp_path / "only")


def test_images_without_masks_are_refused(photos: Path) -> None:
    (photos / "masks" / "00002.png").unlink()
    with pytest.raises(MaskError, match=r"1 of 6 images have no mask.*00002"):
        open_dataset(photos)


def test_mask_size_mismatch_is_refused(photos: Path) -> None:
    write_image(photos / "masks" / "00001.png", np.zeros((8, 8), np.uint8))
    sample = next(s for s in (*open_dataset(photos).train, *open_dataset(photos).held_out) if s.id == "00001")
    with pytest.raises(MaskError, match="mask is 8x8"):
        load_sample(sample, 16)


def _iharmony(root: Path) -> Path:
    sub = root / "HFlickr"
    for d in ("composite_images", "masks", "real_images"):
        (sub / d).mkdir(parents=True)
    for name in ("f1", "f2"):
        write_image(sub / "real_images" / f"{name}.jpg", np.full((16, 16, 3), 100, np.uint8))
        write_image(sub / "masks" / f"{name}_1.png", np.full((16, 16), 255, np.uint8))
        write_image(sub / "composite_images" / f"{name}_1_2.jpg", np.full((16, 16, 3), 50, np.uint8))
    (sub / "HFlickr_train.txt").write_text("f1_1_2.jpg\n")
    (sub / "HFlickr_test.txt").write_text("f2_1_2.jpg\n")
    return root


def test_iharmony4_layout(tmp_path: Path) -> None:
    data = open_dataset(_iharmony(tmp_path / "ih"))
    assert data.kind == "iharmony4"
    assert [s.id for s in data.train] == ["f1_1_2"] and [s.id for s in data.held_out] == ["f2_1_2"]
    real, mask, comp = load_sample(data.train[0], 8)
    assert comp is not None and comp.shape == (3, 8, 8) and abs(comp.mean().item() - 50 / 255) < 0.02
    reals, masks, comps = ImageCache(data.train, 8).batch([0])
    assert comps is not None and comps.shape == (1, 3, 8, 8)


def test_iharmony4_missing_mask_is_refused(tmp_path: Path) -> None:
    root = _iharmony(tmp_path / "ih")
    (root / "HFlickr" / "masks" / "f1_1.png").unlink()
    with pytest.raises(MaskError, match="no mask f1_1"):
        open_dataset(root)
