"""Flicker benchmark builder: a real clip with masks in, a HYouTube-style composite and its ground truth out.

HYouTube (research/hdnet_and_video.md, C.1) recolours each clip's foreground with one LUT for the whole clip
and keeps the untouched clip as ground truth. We do the same on any clip with per-frame masks, with a seeded
random colour transform of the kind a compositor meets: exposure and white balance (gains in linear light),
gamma, contrast and saturation (on the display values). Two kinds:

* ``constant``: one transform for the whole clip, as HYouTube;
* ``drift``: the transform moves slowly, from one random transform to the next every ``drift_period_s``
  seconds with a smooth (cosine) blend, as footage shot under slowly changing light would need.

Both clips are written losslessly (FFV1 RGB in Matroska by default), so metrics against the ground truth see
only the perturbation and the harmonizer, never the codec. Frame folders (numbered images, e.g. DAVIS JPEGs)
are read with :func:`open_frames`, which also serves the flicker evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

import numpy as np

from vidharm.errors import InputError, MaskError, OutputError, UsageError
from vidharm.io import (
    ColorTags,
    VideoFrame,
    VideoInfo,
    VideoWriter,
    atomic_path,
    count_frames,
    probe_video,
    read_frames,
    read_image,
    write_image,
)
from vidharm.masks import MaskFolder, MaskVideo, open_masks

__all__ = [
    "check_masks_cover",
    "iter_source_masks",
    "PERTURBATION_KINDS",
    "PERTURBATION_RANGES",
    "DEFAULT_FOLDER_FPS",
    "DEFAULT_DRIFT_PERIOD_S",
    "FRAME_IMAGE_SUFFIXES",
    "ColorPerturbation",
    "FrameSource",
    "BenchmarkClip",
    "open_frames",
    "sample_perturbation",
    "perturbation_track",
    "apply_perturbation",
    "make_benchmark",
]

log = logging.getLogger(__name__)

PERTURBATION_KINDS: tuple[str, ...] = ("constant", "drift")
"""Valid ``kind`` values of :func:`perturbation_track` and :func:`make_benchmark`."""

PERTURBATION_RANGES: Mapping[str, float] = MappingProxyType(
    {
        "exposure_ev": 0.5,
        "temperature": 0.15,
        "tint": 0.05,
        "gamma": 0.25,
        "contrast": 0.2,
        "saturation": 0.35,
    }
)
"""Largest magnitude of each :class:`ColorPerturbation` field at ``strength`` 1.

Why these values: they span what a compositor typically corrects on a plate: +-0.5 stop of exposure, a
white-balance shift of about +-1000 K around daylight (R/B gains of e^+-0.15), a small green-magenta tint,
gamma 0.78-1.28, contrast slopes 0.82-1.22 and saturation 0.70-1.42. HYouTube's 100 LUTs span stronger,
stylised looks; these stay within what a global white-box filter chain can undo.
"""

DEFAULT_FOLDER_FPS: Fraction = Fraction(24)
"""Frame rate given to frame folders, which carry no timing: DAVIS sequences are 24 fps."""

DEFAULT_DRIFT_PERIOD_S: float = 2.0
"""Seconds between the random transforms a ``drift`` perturbation blends through: slow enough to read as a
lighting change rather than flicker, fast enough that a 2-4 s DAVIS clip drifts through a whole transform."""

FRAME_IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""Image files a frame folder may hold."""

# sRGB-like display gamma: exposure and white balance act on linear light, as a camera or grade would.
_DISPLAY_GAMMA = 2.2
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
_DIGITS = re.compile(r"(\d+)(?!.*\d)")
# Frame folders (JPEGs, PNGs) are display-referred sRGB; tagging the lossless clips says so explicitly.
_FOLDER_COLOR = ColorTags("bt709", "iec61966-2-1", "gbr", "pc")
_LOSSLESS = {"ffv1": None, "libx264rgb": 0, "libx264": 0}
_MANIFEST_SCHEMA = "vidharm.flicker_benchmark"


@dataclass(frozen=True)
class ColorPerturbation:
    """A global colour transform of the foreground; every field 0 is the identity.

    The transform, on display values x in [0, 1]:

    1. ``lin = x ** 2.2``; ``lin *= 2 ** exposure_ev * (e^temperature, e^tint, e^-temperature)`` (R, G, B);
       ``x = clip(lin, 0, 1) ** (1 / 2.2)``;
    2. ``x = x ** e^gamma``;
    3. ``x = clip(0.5 + e^contrast * (x - 0.5), 0, 1)``;
    4. ``x = clip(Y + e^saturation * (x - Y), 0, 1)`` with ``Y`` the Rec.709 luma of x.

    The fields are logarithms (or stops), so a linear blend of two perturbations is a geometric blend of
    their gains and exponents, and a drift passes through no degenerate transform.

    Attributes:
        exposure_ev: exposure change in stops, about [-0.5, 0.5].
        temperature: log gain of red (and minus that of blue) in linear light; > 0 is warmer.
        tint: log gain of green in linear light; > 0 is greener.
        gamma: log of the exponent applied to display values; > 0 darkens mid-tones.
        contrast: log of the slope around mid-grey 0.5; > 0 is more contrast.
        saturation: log of the chroma gain about luma; > 0 is more saturated.

    Example:
        >>> ColorPerturbation().as_array().tolist()
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    exposure_ev: float = 0.0
    temperature: float = 0.0
    tint: float = 0.0
    gamma: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def as_array(self) -> np.ndarray:
        """The six fields in declaration order as float64."""
        return np.array([getattr(self, f.name) for f in dataclasses.fields(self)], dtype=np.float64)

    @classmethod
    def from_array(cls, values: Sequence[float] | np.ndarray) -> ColorPerturbation:
        """Inverse of :meth:`as_array`."""
        return cls(*(float(v) for v in values))

    def to_json(self) -> dict[str, float]:
        """Field name -> value, rounded to 6 decimals."""
        return {f.name: round(float(getattr(self, f.name)), 6) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class FrameSource:
    """A clip to read frame by frame: a video file or a folder of numbered images.

    Attributes:
        path: the video or the folder.
        num_frames: number of frames.
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frame rate (a video's own; a folder's is the one given to :func:`open_frames`).
        frame_numbers: the source's frame numbers in order: ``0..T-1`` for a video, the file numbers for a
            folder (``00012.jpg`` is 12).
        files: a folder's image files in order; empty for a video.
        info: a video's VideoInfo; for a folder, a description of the folder for encoders (sRGB, full range).
    """

    path: Path
    num_frames: int
    width: int
    height: int
    fps: Fraction
    frame_numbers: tuple[int, ...]
    files: tuple[Path, ...]
    info: VideoInfo

    @property
    def is_folder(self) -> bool:
        """Whether the frames come from a folder of images."""
        return bool(self.files)

    def iter_frames(self) -> Iterator[VideoFrame]:
        """Yield each frame as a VideoFrame, streaming: a video's own numbers and ``pts``; for a folder, the
        position in the folder as ``index`` and ``pts=None`` (an encoder then places frame i at i / fps).

        Raises:
            InputError: a frame cannot be read, is not RGB, or differs in size or depth from the first.
        """
        if not self.is_folder:
            count = 0
            for vf in read_frames(self.path):
                count += 1
                yield vf
            if count != self.num_frames:
                raise InputError(
                    f"{self.path}: decoded {count} frames but counted {self.num_frames}; the file is damaged"
                )
            return
        first_dtype = None
        for index, path in enumerate(self.files):
            image = read_image(path)
            if image.ndim == 2:
                image = np.repeat(image[..., None], 3, axis=2)
            if image.shape != (self.height, self.width, 3):
                raise InputError(
                    f"{path}: frame is {image.shape[1]}x{image.shape[0]} but the folder's first frame is "
                    f"{self.width}x{self.height}; every frame of a clip must have one size"
                )
            if image.dtype not in (np.uint8, np.uint16):
                raise InputError(f"{path}: expected an 8- or 16-bit image, got {image.dtype}; convert the frames")
            if first_dtype is None:
                first_dtype = image.dtype
            elif image.dtype != first_dtype:
                raise InputError(f"{path}: is {image.dtype} but earlier frames are {first_dtype}; use one bit depth")
            yield VideoFrame(index, None, self.info.time_base, image)

    def iter_images(self) -> Iterator[np.ndarray]:
        """Yield each frame's (H, W, 3) RGB array (uint8 or uint16), streaming; see :meth:`iter_frames`."""
        for frame in self.iter_frames():
            yield frame.image


@dataclass(frozen=True)
class BenchmarkClip:
    """What :func:`make_benchmark` wrote.

    Attributes:
        composite: the perturbed clip (the harmonizer's input).
        ground_truth: the untouched clip.
        masks: folder of per-frame masks numbered from 0, as the pipeline reads them.
        manifest: JSON with the source, settings and every frame's perturbation.
        kind: ``constant`` or ``drift``.
        seed: the random seed.
        num_frames: frames in each clip.
    """

    composite: Path
    ground_truth: Path
    masks: Path
    manifest: Path
    kind: str
    seed: int
    num_frames: int


def open_frames(path: str | Path, *, fps: Fraction | float | None = None) -> FrameSource:
    """Open a video file or a folder of numbered images as a :class:`FrameSource`.

    A folder's files are numbered by the last run of digits in the name (``00012.jpg`` and ``frame.0012.png``
    are frame 12) and read in that order; hidden files are skipped. The first frame gives the size.

    Args:
        path: a video (anything :func:`vidharm.io.probe_video` reads) or a folder of images.
        fps: frame rate of a folder (default :data:`DEFAULT_FOLDER_FPS`); must be None for a video, which
            has its own.

    Returns:
        The source, checked to have at least one frame.

    Raises:
        InputError: missing path, unreadable video, an empty folder, a file that is not an image, a file
            without a frame number, or two files for one frame.
        UsageError: ``fps`` given for a video, or not a positive number.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for i in (3, 1, 2):
        ...     write_image(folder / f"f{i:03d}.png", np.full((4, 6, 3), i, np.uint8))
        >>> source = open_frames(folder)
        >>> source.num_frames, source.width, source.height, source.frame_numbers, float(source.fps)
        (3, 6, 4, (1, 2, 3), 24.0)
        >>> [int(im[0, 0, 0]) for im in source.iter_images()]
        [1, 2, 3]
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; give a video or a folder of numbered frames")
    if not path.is_dir():
        if fps is not None:
            raise UsageError(f"fps: a video has its own frame rate; pass fps only for a frame folder, got {fps}")
        info = probe_video(path)
        total = count_frames(path)
        return FrameSource(path, total, info.width, info.height, info.fps, tuple(range(total)), (), info)
    rate = DEFAULT_FOLDER_FPS if fps is None else Fraction(fps).limit_denominator(1001000)
    if rate <= 0:
        raise UsageError(f"fps: expected a positive frame rate, got {fps}")
    numbered: dict[int, Path] = {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(".") or entry.is_dir():
            continue
        if entry.suffix.lower() not in FRAME_IMAGE_SUFFIXES:
            raise InputError(
                f"{entry}: not a frame image (expected {', '.join(FRAME_IMAGE_SUFFIXES)}); remove it from the folder"
            )
        match = _DIGITS.search(entry.stem)
        if match is None:
            raise InputError(f"{entry}: no frame number in the file name; name frames like 00012.png")
        number = int(match.group(1))
        if number in numbered:
            raise InputError(
                f"{entry}: frame {number} already has a file ({numbered[number].name}); keep one per frame"
            )
        numbered[number] = entry
    if not numbered:
        raise InputError(f"{path}: the folder holds no frame images; add numbered images such as 00000.jpg")
    numbers = tuple(sorted(numbered))
    files = tuple(numbered[n] for n in numbers)
    first = read_image(files[0])
    if first.ndim == 3 and first.shape[2] != 3:
        raise InputError(f"{files[0]}: expected an RGB or grey frame, got {first.shape[2]} channels; drop alpha")
    height, width = first.shape[:2]
    depth = 16 if first.dtype == np.uint16 else 8
    info = VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=rate,
        time_base=Fraction(1, 1000),
        num_frames=len(files),
        duration_s=float(len(files) / rate),
        codec="image",
        pix_fmt="rgb48le" if depth == 16 else "rgb24",
        bit_depth=depth,
        has_alpha=False,
        color=_FOLDER_COLOR,
        has_audio=False,
        rotation_deg=0,
    )
    return FrameSource(path, len(files), width, height, rate, numbers, files, info)


def sample_perturbation(rng: np.random.Generator, *, strength: float = 1.0) -> ColorPerturbation:
    """Draw a random perturbation: each field is ``sign * U(0.4, 1) * strength * PERTURBATION_RANGES[field]``.

    The magnitude is kept away from 0 so that every draw visibly changes every property (a near-identity draw
    would make a small benchmark easy by chance).

    Args:
        rng: the random generator (seeded by the caller).
        strength: scale of every range, >= 0 (1 is :data:`PERTURBATION_RANGES`).

    Returns:
        The perturbation.

    Raises:
        UsageError: ``strength`` is negative or not finite.

    Example:
        >>> p = sample_perturbation(np.random.default_rng(0))
        >>> all(0.4 * r <= abs(v) <= r for v, r in zip(p.as_array(), PERTURBATION_RANGES.values()))
        True
    """
    if not (isinstance(strength, (int, float)) and math.isfinite(strength) and strength >= 0):
        raise UsageError(f"strength: expected a finite number >= 0 (1 = the default ranges), got {strength!r}")
    names = [f.name for f in dataclasses.fields(ColorPerturbation)]
    magnitude = rng.uniform(0.4, 1.0, len(names))
    sign = rng.choice([-1.0, 1.0], len(names))
    ranges = np.array([PERTURBATION_RANGES[n] for n in names])
    return ColorPerturbation.from_array(sign * magnitude * ranges * strength)


def perturbation_track(
    times_s: Sequence[float] | np.ndarray,
    *,
    kind: str,
    seed: int,
    strength: float = 1.0,
    drift_period_s: float = DEFAULT_DRIFT_PERIOD_S,
) -> list[ColorPerturbation]:
    """One perturbation per frame: the same for ``constant``, a slow smooth blend for ``drift``.

    ``drift`` draws a perturbation for each of the times 0, P, 2P, ... (P = ``drift_period_s``) up to the
    clip's end and blends consecutive ones with the cosine weight ``(1 - cos(pi u)) / 2``, u in [0, 1] the
    position between them: the fields move smoothly, with zero rate of change at each drawn perturbation.
    Both kinds start from the same first draw for a given seed.

    Args:
        times_s: (T,) frame times in seconds from the clip's start (>= 0, non-decreasing).
        kind: ``constant`` or ``drift``.
        seed: seed of the random draws.
        strength: scale of :data:`PERTURBATION_RANGES`, >= 0.
        drift_period_s: seconds between drawn perturbations for ``drift``, > 0.

    Returns:
        T perturbations.

    Raises:
        UsageError: unknown ``kind``, or a bad ``strength`` or ``drift_period_s``.
        InputError: times negative, not finite or decreasing.

    Example:
        >>> track = perturbation_track([0.0, 1.0, 2.0], kind="drift", seed=1, drift_period_s=2.0)
        >>> first, middle, last = (p.exposure_ev for p in track)
        >>> bool(abs(middle - (first + last) / 2) < 1e-12)
        True
        >>> len({p for p in perturbation_track([0.0, 1.0, 2.0], kind="constant", seed=1)})
        1
    """
    if kind not in PERTURBATION_KINDS:
        raise UsageError(f"kind: expected one of {', '.join(PERTURBATION_KINDS)}, got {kind!r}")
    if not (isinstance(drift_period_s, (int, float)) and math.isfinite(drift_period_s) and drift_period_s > 0):
        raise UsageError(f"drift_period_s: expected seconds > 0, got {drift_period_s!r}; the default is 2")
    t = np.asarray(times_s, dtype=np.float64)
    if t.ndim != 1 or not np.isfinite(t).all() or (t < 0).any() or (np.diff(t) < 0).any():
        raise InputError("times_s: expected finite, non-negative, non-decreasing frame times in seconds")
    rng = np.random.default_rng(seed)
    first = sample_perturbation(rng, strength=strength)
    if kind == "constant" or t.size == 0:
        return [first] * t.size
    keys = [first.as_array()]
    while (len(keys) - 1) * drift_period_s < t[-1]:
        keys.append(sample_perturbation(rng, strength=strength).as_array())
    track = []
    for time in t:
        pos = time / drift_period_s
        k = min(int(pos), len(keys) - 2) if len(keys) > 1 else 0
        u = min(max(pos - k, 0.0), 1.0)
        w = 0.5 * (1.0 - math.cos(math.pi * u))
        values = keys[k] if len(keys) == 1 else (1.0 - w) * keys[k] + w * keys[k + 1]
        track.append(ColorPerturbation.from_array(values))
    return track


def apply_perturbation(image: np.ndarray, mask: np.ndarray, perturbation: ColorPerturbation) -> np.ndarray:
    """Apply a perturbation to the foreground: ``out = T(image) * mask + image * (1 - mask)``, rounded.

    Where the mask is 0 the output equals ``image`` exactly. See :class:`ColorPerturbation` for ``T``.

    Args:
        image: (H, W, 3) RGB frame, uint8 (0-255) or uint16 (0-65535).
        mask: (H, W) foreground alpha in [0, 1].
        perturbation: the transform.

    Returns:
        (H, W, 3) array of ``image``'s dtype.

    Raises:
        InputError: ``image`` is not uint8 or uint16 RGB.
        MaskError: ``mask`` does not match the image or has values outside [0, 1].

    Example:
        >>> image = np.full((2, 2, 3), 100, np.uint8)
        >>> mask = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
        >>> out = apply_perturbation(image, mask, ColorPerturbation(exposure_ev=1.0))
        >>> out[0, 0].tolist(), out[1, 1].tolist()  # 100 * 2 ** (1 / 2.2) = 137.0
        ([137, 137, 137], [100, 100, 100])
        >>> bool((apply_perturbation(image, mask, ColorPerturbation()) == image).all())
        True
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"image: expected (H, W, 3) RGB uint8 or uint16, got {image.shape} {image.dtype}")
    m = np.asarray(mask, dtype=np.float32)
    if m.shape != image.shape[:2]:
        raise MaskError(f"mask: expected shape {image.shape[:2]} like the frame, got {m.shape}; fit the mask first")
    if not np.isfinite(m).all() or m.min(initial=0.0) < 0.0 or m.max(initial=0.0) > 1.0:
        raise MaskError("mask: expected values in [0, 1]; divide 8-bit masks by 255")
    peak = float(np.iinfo(image.dtype).max)
    fg = m > 0
    if not fg.any():
        return image.copy()
    # Only foreground pixels are transformed: cheaper, and the background is untouched by construction.
    x = image[fg].astype(np.float32) / np.float32(peak)
    x = _transform(x, perturbation)
    orig = image[fg].astype(np.float32)
    alpha = m[fg][:, None]
    mixed = np.clip(np.rint(x * peak * alpha + orig * (1.0 - alpha)), 0.0, peak).astype(image.dtype)
    out = image.copy()
    out[fg] = mixed
    return out


def make_benchmark(
    source: str | Path,
    masks: str | Path,
    out_dir: str | Path,
    *,
    kind: str,
    seed: int,
    fps: Fraction | float | None = None,
    strength: float = 1.0,
    drift_period_s: float = DEFAULT_DRIFT_PERIOD_S,
    codec: str = "ffv1",
    overwrite: bool = False,
) -> BenchmarkClip:
    """Write a perturbed composite clip, the untouched ground-truth clip and the masks into ``out_dir``.

    Files written (each atomically): ``composite.mkv``, ``ground_truth.mkv``, ``masks/NNNNN.png`` (one per
    frame, numbered from 0 as the pipeline expects; 8-bit where the masks are exact multiples of 1/255, else
    16-bit) and ``benchmark.json`` (the source, settings and every frame's perturbation). The ground truth is
    the source's frames as read (a lossy source video's decoded frames), so the composite and the ground truth
    differ only inside the masks, by the perturbation.

    Args:
        source: a video, or a folder of numbered frames (``00000.jpg`` ...).
        masks: a folder of numbered mask images (numbered as the source's frames: a video's from 0, a
            folder's as its files) or a mask video with one frame per source frame; masks of another size
            but the same aspect are resized.
        out_dir: output folder; created if missing (its parent must exist).
        kind: ``constant`` (one transform for the clip) or ``drift`` (slowly changing).
        seed: random seed; the same seed gives the same perturbations.
        fps: frame rate of a frame folder (default 24, DAVIS's); None for a video.
        strength: scale of :data:`PERTURBATION_RANGES`.
        drift_period_s: seconds between the drawn transforms of a drift.
        codec: lossless encoder: ``ffv1`` (default, RGB), ``libx264rgb`` or ``libx264`` (both at crf 0;
            plain libx264 stores 4:2:0 YUV, so it is lossless only in its own YUV).
        overwrite: replace the files of an earlier run in ``out_dir``.

    Returns:
        The paths written and the settings.

    Raises:
        InputError: unreadable source, frames of different sizes.
        MaskError: a frame without a mask, masks beyond the clip, a mask video of another length, masks of
            another aspect.
        UsageError: bad ``kind``, ``codec``, ``fps``, ``strength``; outputs exist and ``overwrite`` is False.
        OutputError: ``out_dir`` cannot be created or written.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "f").mkdir(); (root / "m").mkdir()
        >>> for i in range(3):
        ...     write_image(root / "f" / f"{i:05d}.png", np.full((8, 8, 3), 90 + i, np.uint8))
        ...     write_image(root / "m" / f"{i:05d}.png", np.pad(np.full((4, 4), 255, np.uint8), 2))
        >>> clip = make_benchmark(root / "f", root / "m", root / "bench", kind="drift", seed=0)
        >>> clip.num_frames, clip.composite.name, sorted(p.name for p in clip.masks.iterdir())[0]
        (3, 'composite.mkv', '00000.png')
    """
    if kind not in PERTURBATION_KINDS:
        raise UsageError(f"kind: expected one of {', '.join(PERTURBATION_KINDS)}, got {kind!r}")
    if codec not in _LOSSLESS:
        raise UsageError(f"codec: expected a lossless choice, one of {', '.join(_LOSSLESS)}, got {codec!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UsageError(f"seed: expected an integer, got {seed!r}")
    frames = open_frames(source, fps=fps)
    mask_source = open_masks(masks)
    check_masks_cover(frames, mask_source)
    out = Path(out_dir)
    paths = _output_paths(out, overwrite)
    times = np.arange(frames.num_frames, dtype=np.float64) / float(frames.fps)
    track = perturbation_track(times, kind=kind, seed=int(seed), strength=strength, drift_period_s=drift_period_s)
    info = frames.info
    if not frames.is_folder and frames.info.bit_depth > 8 and codec != "ffv1":
        log.warning("%s is %d-bit; %s keeps 8 bits, use codec ffv1 to keep the depth", source, info.bit_depth, codec)
    crf = _LOSSLESS[codec]
    mask_iter = iter_source_masks(frames, mask_source)
    written = 0
    with (
        VideoWriter(paths["ground_truth"], info, codec=codec, crf=crf, preset="medium") as gt_writer,
        VideoWriter(paths["composite"], info, codec=codec, crf=crf, preset="medium") as comp_writer,
    ):
        for index, (frame, mask, perturbation) in enumerate(zip(frames.iter_frames(), mask_iter, track, strict=True)):
            composite = apply_perturbation(frame.image, mask, perturbation)
            gt_writer.write(frame)
            comp_writer.write(dataclasses.replace(frame, image=composite))
            _write_mask(paths["masks"] / f"{index:05d}.png", mask)
            written += 1
    manifest = {
        "schema": _MANIFEST_SCHEMA,
        "version": 1,
        "source": str(frames.path),
        "masks": str(Path(masks)),
        "kind": kind,
        "seed": int(seed),
        "strength": strength,
        "drift_period_s": drift_period_s,
        "fps": str(frames.fps),
        "num_frames": written,
        "width": frames.width,
        "height": frames.height,
        "codec": codec,
        "files": {k: str(v.relative_to(out)) for k, v in paths.items() if k != "manifest"},
        "perturbation_fields": [f.name for f in dataclasses.fields(ColorPerturbation)],
        "frames": [
            {"frame": i, "source_frame": n, "perturbation": p.to_json()}
            for i, (n, p) in enumerate(zip(frames.frame_numbers, track, strict=True))
        ],
    }
    with atomic_path(paths["manifest"]) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    return BenchmarkClip(
        composite=paths["composite"],
        ground_truth=paths["ground_truth"],
        masks=paths["masks"],
        manifest=paths["manifest"],
        kind=kind,
        seed=int(seed),
        num_frames=written,
    )


def _transform(x: np.ndarray, p: ColorPerturbation) -> np.ndarray:
    """The perturbation on (N, 3) float32 display values in [0, 1]."""
    gains = np.float32(2.0**p.exposure_ev) * np.exp(np.array([p.temperature, p.tint, -p.temperature], np.float32))
    lin = np.power(x, np.float32(_DISPLAY_GAMMA)) * gains
    x = np.power(np.clip(lin, 0.0, 1.0), np.float32(1.0 / _DISPLAY_GAMMA))
    x = np.power(x, np.float32(math.exp(p.gamma)))
    x = np.clip(0.5 + np.float32(math.exp(p.contrast)) * (x - 0.5), 0.0, 1.0)
    luma = (x @ _LUMA)[:, None]
    return np.clip(luma + np.float32(math.exp(p.saturation)) * (x - luma), 0.0, 1.0)


def check_masks_cover(clip: FrameSource, masks: MaskFolder | MaskVideo) -> None:
    """Refuse masks that do not give exactly one mask per frame of ``clip`` (a MaskError naming the first gap)."""
    if isinstance(masks, MaskVideo):
        total = count_frames(masks.path)
        if total != clip.num_frames:
            raise MaskError(
                f"{masks.path}: the mask video has {total} frames but {clip.path.name} has {clip.num_frames}; "
                f"give one mask frame per clip frame"
            )
        return
    wanted, have = set(clip.frame_numbers), set(masks.frame_numbers)
    missing, extra = sorted(wanted - have), sorted(have - wanted)
    span = f"{clip.frame_numbers[0]}-{clip.frame_numbers[-1]}"
    if missing:
        raise MaskError(
            f"{masks.path}: no masks for {len(missing)} of {clip.num_frames} frames (first: frame {missing[0]}); "
            f"give one mask per frame of {clip.path.name} (frames {span})"
        )
    if extra:
        raise MaskError(
            f"{masks.path}: {len(extra)} masks are for frames that {clip.path.name} lacks (first: frame {extra[0]}; "
            f"the clip has frames {span}); the masks belong to a longer clip or are numbered differently"
        )


def iter_source_masks(clip: FrameSource, masks: MaskFolder | MaskVideo) -> Iterator[np.ndarray]:
    """The masks of ``clip``'s frames in order, at its size."""
    if isinstance(masks, MaskVideo):
        yield from masks.iter_masks(range(clip.num_frames), clip.width, clip.height)
        return
    for number in clip.frame_numbers:
        yield masks.read(number, clip.width, clip.height)


def _output_paths(out: Path, overwrite: bool) -> dict[str, Path]:
    paths = {
        "composite": out / "composite.mkv",
        "ground_truth": out / "ground_truth.mkv",
        "masks": out / "masks",
        "manifest": out / "benchmark.json",
    }
    if not out.parent.exists():
        raise OutputError(f"{out}: its parent folder does not exist; create {out.parent} first")
    try:
        out.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc}); check permissions") from exc
    existing = [p for k, p in paths.items() if p.exists() and (k != "masks" or any(p.iterdir()))]
    if existing and not overwrite:
        raise UsageError(
            f"{out}: already holds a benchmark ({existing[0].name}); pass overwrite=True (--force) or another folder"
        )
    if paths["masks"].exists():
        for old in paths["masks"].iterdir():
            if old.is_file() and old.suffix.lower() == ".png":
                old.unlink()
    try:
        paths["masks"].mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{paths['masks']}: cannot create the mask folder ({exc}); check permissions") from exc
    return paths


def _write_mask(path: Path, mask: np.ndarray) -> None:
    levels8 = mask.astype(np.float64) * 255.0
    if np.abs(levels8 - np.rint(levels8)).max(initial=0.0) < 1e-4:
        write_image(path, np.rint(levels8).astype(np.uint8))
    else:
        write_image(path, np.rint(mask.astype(np.float64) * 65535.0).astype(np.uint16))
