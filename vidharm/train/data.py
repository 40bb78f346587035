"""Training data: a folder of real photos with masks, or the iHarmony4 layout; the held-out split; batches.

Two layouts are recognised by :func:`open_dataset`:

* **photos**: ``DIR/images/<id>.<ext>`` and ``DIR/masks/<id>.<ext>`` (same stem; 255 = foreground), with an
  optional ``DIR/manifest.csv`` (columns ``id``, ``dataset``, ``label``, as in ``shared/data/images``).
  Composites are made on the fly from the real photos (:mod:`vidharm.train.perturb`).
* **iharmony4**: ``DIR/composite_images/<name>_<k>_<n>.jpg``, ``DIR/masks/<name>_<k>.png``,
  ``DIR/real_images/<name>.jpg`` and ``DIR/<Subset>_train.txt`` / ``DIR/<Subset>_test.txt`` listing composite
  file names; ``DIR`` may also hold several such subset folders (HCOCO, HAdobe5k, ...).

The held-out split of a photo folder is by *group*: a photo is its own group, but frames of one video
sequence share a group (manifest rows whose ``dataset`` mentions DAVIS, or a ``sequence`` column), so no
held-out frame has a near-duplicate in training. Within each ``dataset`` the groups are ordered by a seeded
hash and the first ``ceil(val_fraction * n_groups)`` are held out: the split is fixed by ``split_seed`` and
does not depend on the machine or the file order.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from vidharm.errors import InputError, MaskError
from vidharm.io import read_image
from vidharm.masks import to_alpha

__all__ = ["Sample", "Dataset", "open_dataset", "load_sample", "ImageCache", "IMAGE_SUFFIXES"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
"""File name endings read as images."""


@dataclass(frozen=True)
class Sample:
    """One training or evaluation item.

    Attributes:
        id: file stem (photos) or composite name (iHarmony4).
        real: the real (harmonious) image.
        mask: the foreground mask.
        composite: a real composite (iHarmony4 only); None for photos (composites are synthesised).
        group: items of one group are always on the same side of the split.
        dataset: source dataset name (from the manifest, or the iHarmony4 subset).
    """

    id: str
    real: Path
    mask: Path
    composite: Path | None = None
    group: str = ""
    dataset: str = ""


@dataclass(frozen=True)
class Dataset:
    """A training set and its held-out set.

    Attributes:
        root: the folder given.
        kind: ``"photos"`` or ``"iharmony4"``.
        train: items training may use.
        held_out: items training never sees (the photo folder's held-out groups, or iHarmony4's test lists).
        held_out_groups: the held-out group names per dataset (for the model card).
    """

    root: Path
    kind: str
    train: tuple[Sample, ...]
    held_out: tuple[Sample, ...]
    held_out_groups: dict[str, list[str]] = field(default_factory=dict)


def _images_in(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def _read_manifest(path: Path) -> dict[str, dict[str, str]]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc}); fix it or remove it") from None
    if rows and "id" not in rows[0]:
        raise InputError(f"{path}: expected an 'id' column, got columns {list(rows[0])}; add it or remove the file")
    return {row["id"]: row for row in rows}


def _group_of(stem: str, row: dict[str, str] | None) -> tuple[str, str]:
    """(dataset, group) of a photo: video frames are grouped by sequence, photos stand alone."""
    if row is None:
        return "", stem
    dataset = row.get("dataset", "") or ""
    if row.get("sequence"):
        return dataset, f"seq:{row['sequence']}"
    if "davis" in dataset.lower() and row.get("label"):
        return dataset, f"seq:{row['label']}"
    return dataset, stem


def _hash(text: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{text}".encode()).hexdigest()


def _split(samples: list[Sample], val_fraction: float, split_seed: int) -> tuple[list[Sample], list[Sample], dict]:
    by_dataset: dict[str, set[str]] = {}
    for s in samples:
        by_dataset.setdefault(s.dataset, set()).add(s.group)
    held: set[tuple[str, str]] = set()
    names: dict[str, list[str]] = {}
    for dataset, groups in by_dataset.items():
        if len(groups) < 2:
            continue
        ordered = sorted(groups, key=lambda g: _hash(g, split_seed))
        count = min(len(groups) - 1, math.ceil(val_fraction * len(groups)))
        chosen = sorted(ordered[:count])
        held.update((dataset, g) for g in chosen)
        names[dataset] = chosen
    train = [s for s in samples if (s.dataset, s.group) not in held]
    test = [s for s in samples if (s.dataset, s.group) in held]
    return train, test, names


def _open_photos(root: Path, val_fraction: float, split_seed: int) -> Dataset:
    images = _images_in(root / "images")
    masks = _images_in(root / "masks")
    if not images:
        raise InputError(f"{root / 'images'}: no images found (expected .jpg/.png files); put the real photos there")
    missing = [stem for stem in images if stem not in masks]
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise MaskError(
            f"{root}: {len(missing)} of {len(images)} images have no mask in {root / 'masks'} (e.g. {shown}); "
            "add a mask with the same file stem for each image, or remove the image"
        )
    manifest_path = root / "manifest.csv"
    manifest = _read_manifest(manifest_path) if manifest_path.exists() else {}
    samples = []
    for stem, path in images.items():
        dataset, group = _group_of(stem, manifest.get(stem))
        samples.append(Sample(id=stem, real=path, mask=masks[stem], group=group, dataset=dataset))
    train, held_out, names = _split(samples, val_fraction, split_seed)
    if not held_out:
        raise InputError(
            f"{root}: {len(samples)} image(s) are too few to hold any out for validation; give at least 2 photos"
        )
    return Dataset(root, "photos", tuple(train), tuple(held_out), names)


def _subset_dirs(root: Path) -> list[Path]:
    if (root / "composite_images").is_dir():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "composite_images").is_dir())


def _read_list(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the list ({exc}); expected one composite file name per line") from None
    return [line.strip() for line in lines if line.strip()]


def _iharmony_samples(subset: Path, names: list[str], list_path: Path) -> list[Sample]:
    out = []
    for line in names:
        comp_name = Path(line).name
        stem = Path(comp_name).stem
        parts = stem.split("_")
        if len(parts) < 3:
            raise InputError(
                f"{list_path}: entry {line!r} is not an iHarmony4 composite name <image>_<mask>_<n>.jpg; fix the list"
            )
        real_stem, mask_stem = "_".join(parts[:-2]), "_".join(parts[:-1])
        comp = subset / "composite_images" / comp_name
        real = _find(subset / "real_images", real_stem)
        mask = _find(subset / "masks", mask_stem)
        if not comp.exists():
            raise InputError(f"{comp}: listed in {list_path.name} but missing; restore the file or fix the list")
        if real is None:
            raise InputError(f"{subset / 'real_images'}: no real image {real_stem}.* for composite {comp_name}")
        if mask is None:
            raise MaskError(f"{subset / 'masks'}: no mask {mask_stem}.* for composite {comp_name}; add it")
        out.append(Sample(id=stem, real=real, mask=mask, composite=comp, group=real_stem, dataset=subset.name))
    return out


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        path = folder / f"{stem}{suffix}"
        if path.exists():
            return path
    return None


def _open_iharmony4(root: Path, subsets: list[Path]) -> Dataset:
    train: list[Sample] = []
    test: list[Sample] = []
    for subset in subsets:
        for kind, bucket in (("train", train), ("test", test)):
            lists = sorted(subset.glob(f"*_{kind}.txt"))
            for list_path in lists:
                bucket.extend(_iharmony_samples(subset, _read_list(list_path), list_path))
    if not train:
        raise InputError(
            f"{root}: iHarmony4 layout without training items (expected <Subset>_train.txt listing composites "
            "in composite_images/); add the train list"
        )
    return Dataset(root, "iharmony4", tuple(train), tuple(test), {})


def open_dataset(root: str | Path, val_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """Find the training items under ``root`` and split off the held-out ones; checks every file exists.

    Args:
        root: a photo folder (``images/`` + ``masks/``) or an iHarmony4 folder (see the module docstring).
        val_fraction: fraction of groups held out per dataset (photo folders; iHarmony4 uses its test lists).
        split_seed: seed of the split.

    Returns:
        The :class:`Dataset`.

    Raises:
        InputError: ``root`` is missing, empty or neither layout; a list names a missing file; too few photos.
        MaskError: an image has no mask.

    Example:
        >>> import tempfile
        >>> from vidharm.io import write_image
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "images").mkdir(); (root / "masks").mkdir()
        >>> for i in range(5):
        ...     write_image(root / "images" / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
        ...     write_image(root / "masks" / f"{i}.png", np.full((8, 8), 255, np.uint8))
        >>> data = open_dataset(root)
        >>> data.kind, len(data.train), len(data.held_out)
        ('photos', 4, 1)
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: no such folder; pass --data DIR with images/ and masks/ (or the iHarmony4 layout)")
    if not root.is_dir():
        raise InputError(f"{root}: is a file, expected a dataset folder with images/ and masks/")
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return _open_photos(root, val_fraction, split_seed)
    subsets = _subset_dirs(root)
    if subsets:
        return _open_iharmony4(root, subsets)
    if not any(root.iterdir()):
        raise InputError(f"{root}: the folder is empty; expected images/ and masks/ (or the iHarmony4 layout)")
    if (root / "images").is_dir():
        raise MaskError(f"{root}: has images/ but no masks/ folder; add one mask per image (same file stem)")
    raise InputError(
        f"{root}: not a dataset folder: expected images/ + masks/ (real photos with masks) or iHarmony4's "
        "composite_images/, masks/, real_images/ and *_train.txt"
    )


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    h, w = array.shape[:2]
    if (h, w) == (size, size):
        return array
    interp = cv2.INTER_AREA if min(h, w) >= size else cv2.INTER_LINEAR
    return cv2.resize(array, (size, size), interpolation=interp)


def _to_float(image: np.ndarray, path: Path) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        return np.clip(image.astype(np.float32), 0.0, 1.0)
    raise InputError(f"{path}: unsupported pixel type {image.dtype}; use 8- or 16-bit images")


def load_sample(sample: Sample, size: int | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Read one item as tensors, resized (aspect not kept) to ``size`` squared, or at native size for None.

    Args:
        sample: the item.
        size: side of the square output, or None for the native resolution.

    Returns:
        ``(real, mask, composite)``: (3, S, S) float RGB in [0, 1], (1, S, S) float in [0, 1], and the real
        composite (3, S, S) or None for photo folders.

    Raises:
        InputError: a file cannot be decoded.
        MaskError: the mask's size differs from the image's.

    Example:
        >>> import tempfile
        >>> from vidharm.io import write_image
        >>> d = Path(tempfile.mkdtemp())
        >>> write_image(d / "a.png", np.zeros((4, 6, 3), np.uint8))
        >>> write_image(d / "m.png", np.zeros((4, 6), np.uint8))
        >>> real, mask, comp = load_sample(Sample("a", d / "a.png", d / "m.png"), 8)
        >>> tuple(real.shape), tuple(mask.shape), comp
        ((3, 8, 8), (1, 8, 8), None)
    """
    real = _to_float(read_image(sample.real), sample.real)
    mask = to_alpha(read_image(sample.mask), str(sample.mask))
    if mask.shape != real.shape[:2]:
        raise MaskError(
            f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but image {sample.real.name} is "
            f"{real.shape[1]}x{real.shape[0]}; give masks of the image size"
        )
    comp = None
    if sample.composite is not None:
        comp = _to_float(read_image(sample.composite), sample.composite)
        if comp.shape != real.shape:
            raise InputError(
                f"{sample.composite}: composite is {comp.shape[1]}x{comp.shape[0]} but real image is "
                f"{real.shape[1]}x{real.shape[0]}; give pairs of the same size"
            )
    if size is not None:
        real, mask = _resize(real, size), np.clip(_resize(mask, size), 0.0, 1.0)
        comp = _resize(comp, size) if comp is not None else None
    real_t = torch.from_numpy(np.ascontiguousarray(real.transpose(2, 0, 1)))
    mask_t = torch.from_numpy(np.ascontiguousarray(mask))[None]
    comp_t = torch.from_numpy(np.ascontiguousarray(comp.transpose(2, 0, 1))) if comp is not None else None
    return real_t, mask_t, comp_t


class ImageCache:
    """Loads items at one size and keeps them in memory as uint8 (small sets are read once).

    Args:
        samples: the items.
        size: side of the square tensors.
        max_items: cache at most this many items (others are re-read each time).

    Example:
        >>> cache = ImageCache([], 32)
        >>> len(cache)
        0
    """

    def __init__(self, samples: Sequence[Sample], size: int, max_items: int = 20000) -> None:
        self.samples = list(samples)
        self.size = size
        self.max_items = max_items
        self._store: dict[int, tuple[Tensor, Tensor, Tensor | None]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def get(self, index: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """Item ``index`` as float tensors ``(real, mask, composite_or_None)`` at ``size``."""
        hit = self._store.get(index)
        if hit is None:
            real, mask, comp = load_sample(self.samples[index], self.size)
            hit = (_q(real), _q(mask), _q(comp) if comp is not None else None)
            if len(self._store) < self.max_items:
                self._store[index] = hit
        real8, mask8, comp8 = hit
        return real8.float() / 255, mask8.float() / 255, comp8.float() / 255 if comp8 is not None else None

    def batch(self, indices: Sequence[int]) -> tuple[Tensor, Tensor, Tensor | None]:
        """Stack items: (B, 3, S, S), (B, 1, S, S), and (B, 3, S, S) composites where every item has one."""
        items = [self.get(i) for i in indices]
        reals = torch.stack([r for r, _, _ in items])
        masks = torch.stack([m for _, m, _ in items])
        comps = [c for _, _, c in items if c is not None]
        comp = torch.stack(comps) if comps and len(comps) == len(items) else None
        return reals, masks, comp


def _q(x: Tensor) -> Tensor:
    return (x * 255).round().clamp(0, 255).to(torch.uint8)
