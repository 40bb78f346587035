"""Exports for other tools: a frame's harmonization as a .cube 3D LUT, a Nuke script, the network as ONNX.

**.cube.** Given the global statistics stored in a sidecar row, the six filters are a fixed per-pixel
function of RGB, so one frame's harmonization is exactly a 3D LUT: :func:`lut_lattice` evaluates
:func:`vidharm.filters.apply_filters` with the row's applied arguments and statistics on an identity lattice
(in float64). The file is the Adobe/Resolve ``.cube`` text format (``LUT_3D_SIZE N``, domain [0, 1], red
index changing fastest) that Nuke, DaVinci Resolve and ffmpeg's ``lut3d`` filter read. The LUT acts on the
frame's code values (gamma-encoded, as vidharm's filters do), so tools must apply it without a colour
conversion, and it grades the whole frame: the foreground matte is applied by a keyer or merge after it.

*Colour-managed tracks* (analysed with ``--colorspace``; ``header.color`` records the colour space, the analysis
space and the OCIO config) get a LUT **defined in the analysis space** (the config's sRGB texture space), the
space the filters act in: apply it between an OCIO conversion from the plate's colour space to the analysis
space and the conversion back, i.e. the OCIO chain ``ColorSpaceTransform(src=<colorspace>,
dst=<analysis space>)``, ``FileTransform(<lut>.cube, interpolation=tetrahedral)``, ``ColorSpaceTransform(src=<analysis
space>, dst=<colorspace>)`` (in Nuke: OCIOColorSpace, OCIOFileTransform, OCIOColorSpace; the .cube's comments
name both spaces). That chain equals vidharm's render where the analysis-space values lie in [0, 1]: a
scene-linear plate's values are encoded there by the sRGB curve, so a lattice on [0, 1] is well spaced for
them, where a lattice on linear values would waste most points on highlights. A .cube's domain is [0, 1],
so analysis-space values above 1 (scene-linear above 1.0 for ACEScg) are clamped by any LUT tool, where
vidharm's render carries them through (:func:`~vidharm.filters.apply_filters_unbounded`). With ``mix`` < 1 the
entries are chosen so that the chain gives vidharm's blend, which is made in the plate's space.
Sidecars of image models rendered through a global colour transform (``affine``, ``poly2``) export that
transform the same way; a ``local`` grid varies across the frame and has no LUT.

Accuracy: a LUT interpolates between lattice points, and the filters bend sharply in a few places (the
power curves of shadow/highlight near black and white, the clamps). With 33 points and ffmpeg's default
tetrahedral interpolation on 8-bit frames the foreground matches vidharm's own render to a mean of under
one level and a maximum of a few levels (tests/pipeline/test_export.py measures it); 65 points roughly
halve the largest errors.

**Nuke.** The six filters with their global statistics are no standard node chain (the temperature gains
are built from the frame's channel means, saturation is Photoshop-style HSL), so the script does not
approximate them with Grade/Saturation nodes. It reads a numbered ``.cube`` per frame through an
``OCIOFileTransform`` whose file name is a TCL expression of the frame, applies it to the plate, and keys the
result over the plate with the matte in a ``Keymix`` (its ``mix`` is the harmonization strength), which is
exactly vidharm's ``filtered * mask + image * (1 - mask)``. A ``NoOp`` carries the row's values (the six
arguments) as animated knobs, one key per frame, for reference. Both reads are ``raw`` (no input colour
transform); write the result raw as well. Script frames are source frame numbers throughout (the Root range,
the per-frame ``.cube`` names and the ``OCIOFileTransform`` expression, the knob keys): an image-sequence plate
numbered from 1001 is read at its file numbers and graded by ``<stem>.1001.cube`` ..; a video counts from 0.
Nuke numbers a movie's frames from 1, so a movie (the plate or a matte video) gets a ``TimeOffset`` of
``first_frame - 1`` (-1 for a video plate) that puts source frame ``f`` at script frame ``f``. The script
follows the ``.nk`` syntax (nodes take their inputs from a stack, input 0 from the top) but has not been loaded
into Nuke by the test-suite (no Nuke there): check the Keymix inputs (B = plate, A = graded, mask = matte) on
first use.

**ONNX.** :func:`export_onnx` exports an argument-predicting model (``harmonizer``) as a graph taking
``image`` (B, 3, S, S) and ``mask`` (B, 1, S, S) float32 in [0, 1] at the model's input size S and returning
``args`` (B, 6), with a dynamic batch axis; it then runs the file with ONNX Runtime on fresh inputs and
compares with PyTorch. Needs ``pip install onnx onnxruntime`` (imported only here).
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vidharm
from vidharm.errors import InputError, OutputError, UsageError
from vidharm.filters import NUM_ARGS
from vidharm.io import ColorManagement, atomic_path, read_image
from vidharm.masks import MaskFolder, open_masks
from vidharm.models import get_model_config
from vidharm.pipeline.analyze import load_model
from vidharm.pipeline.inputs import first_frame_of, is_sequence_source
from vidharm.pipeline.methods import Method
from vidharm.pipeline.params import ParamsTrack
from vidharm.pipeline.render import check_mix, track_color_management
from vidharm.pipeline.runtime import export_graph
from vidharm.pipeline.settings import ProcessConfig

__all__ = [
    "CUBE_SIZE",
    "lut_lattice",
    "track_lut",
    "write_cube",
    "read_cube",
    "export_lut",
    "export_nuke",
    "export_onnx",
]

log = logging.getLogger(__name__)

CUBE_SIZE = 33
"""Default lattice points per axis of exported 3D LUTs (the common size for grading tools)."""

_FILTERS = Method("filters")
_MAX_CUBE_SIZE = 129  # larger lattices are rarely accepted by grading tools and take long to write


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= _MAX_CUBE_SIZE:
        raise UsageError(f"LUT size: expected an integer from 2 to {_MAX_CUBE_SIZE} (33 is usual), got {size!r}")


def _check_lut_method(method: Method) -> None:
    if method.kind == "local":
        raise UsageError(
            "a local colour-transfer grid changes across the frame, which no 3D LUT can hold; "
            "analyze with --transfer affine or poly2 (or a filter model) to export LUTs"
        )


def lut_lattice(
    args: Sequence[float],
    stats: Sequence[float],
    *,
    size: int = CUBE_SIZE,
    mix: float = 1.0,
    method: Method = _FILTERS,
    color: ColorManagement | None = None,
) -> np.ndarray:
    """The harmonization of one frame as a 3D lattice: the filters applied to every lattice colour.

    With ``color`` the lattice is in the analysis space and its entries in the analysis space too: wrapped in
    the OCIO conversions to and from the plate's space (see the module docstring), it gives vidharm's render
    ``x + mix * (from(f(a)) - from(a))``; that is, entry ``a`` holds ``to(from(a) + mix * (from(f(a)) -
    from(a)))`` (``f(a)`` itself for ``mix`` 1).

    Args:
        args: 6 raw arguments in filter order (clamped to [-1, 1] by the filters), or the coefficients of a
            global colour transform (``method`` affine or poly2).
        stats: 4 statistics ``(mean_r, mean_g, mean_b, contrast_pivot)`` in [0, 1], those the frame's row
            applies (the lattice is not a picture, so they cannot be measured on it); empty for transforms.
        size: points per axis, 2 to 129.
        mix: strength in [0, 1]: ``x + mix * (filtered(x) - x)``.
        method: how the row is applied; a ``local`` grid varies across the frame and has no LUT.
        color: the track's colour management (:func:`~vidharm.pipeline.render.track_color_management`), or None
            for a LUT on code values.

    Returns:
        (size, size, size, 3) float64 in [0, 1], indexed ``[r, g, b]``; entry ``[i, j, k]`` is the output for
        input ``(i, j, k) / (size - 1)``.

    Raises:
        UsageError: a bad ``size`` or ``mix``, or a ``local`` method.
        ShapeError: not 6 arguments or 4 statistics (filters), or the wrong coefficient count.
        InputError: NaN or inf in ``args`` or ``stats``.

    Example:
        >>> lut = lut_lattice([0.0, 0.5, 0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5], size=3)
        >>> lut.shape, lut[1, 1, 1].round(4).tolist()
        ((3, 3, 3, 3), [1.0, 1.0, 1.0])
    """
    _check_size(size)
    check_mix(mix)
    _check_lut_method(method)
    if method.kind == "filters" and len(stats) != 4:
        raise UsageError(f"stats: the filters need the row's 4 statistics to bake into a LUT, got {len(stats)}")
    grid = torch.linspace(0.0, 1.0, size, dtype=torch.float64)
    r, g, b = torch.meshgrid(grid, grid, grid, indexing="ij")
    image = torch.stack([r, g, b]).reshape(1, 3, -1, 1)
    a = torch.tensor([list(args)], dtype=torch.float64)
    s = torch.tensor([list(stats)], dtype=torch.float64) if len(stats) else None
    with torch.inference_mode():
        out = method.apply(image, a, s)
        if mix != 1.0 and (color is None or color.is_identity):
            out = image + mix * (out - image)
    lattice = out.reshape(3, size, size, size).permute(1, 2, 3, 0).numpy().copy()
    if mix != 1.0 and color is not None and not color.is_identity:
        # The render blends in the plate's space: pick the analysis-space entry whose conversion back is that blend.
        points = image.reshape(3, size, size, size).permute(1, 2, 3, 0).numpy().astype(np.float32)
        base = color.from_analysis(points)
        graded = color.from_analysis(lattice.astype(np.float32))
        blend = base + np.float32(mix) * (graded - base)
        lattice = color.to_analysis(blend).astype(np.float64)
    return lattice


def _frames(track: ParamsTrack, frames: int | Sequence[int] | range) -> list[int]:
    chosen = [frames] if isinstance(frames, int) else list(frames)
    if not chosen:
        raise UsageError("frames: expected a frame number or a non-empty frame range")
    for f in chosen:
        track.row(f - track.first_frame)  # raises InputError naming the track's coverage
    return chosen


def track_lut(
    track: ParamsTrack,
    frames: int | Sequence[int] | range,
    *,
    size: int = CUBE_SIZE,
    mix: float = 1.0,
    ocio: str | None = None,
) -> np.ndarray:
    """The LUT of one frame of a track, or the average of the frames' LUTs over a range.

    Averaging the LUTs (not the arguments) gives the mean look of the range, whatever the filters' curvature.
    A colour-managed track gives a LUT in its analysis space (see the module docstring).

    Args:
        track: a sidecar; each row's applied (smoothed) arguments and statistics are used.
        frames: a source frame number, or several (e.g. ``range(100, 150)``; ``range(1001, 1011)`` for an image
            sequence numbered from 1001: row ``i`` is source frame ``track.first_frame + i``).
        size: points per axis.
        mix: strength in [0, 1].
        ocio: the OCIO config of a colour-managed track, instead of the one its header records.

    Returns:
        (size, size, size, 3) float64 in [0, 1], indexed ``[r, g, b]``.

    Raises:
        InputError: the track has no row for a frame, or its recorded OCIO config is gone.
        UsageError: no frames, a bad ``size`` or ``mix``.

    Example:
        >>> from vidharm.pipeline.params import FrameParams
        >>> rows = [FrameParams(i, None, [0.0] * 6, [0.5] * 4, smoothed=[0, 0.2 * i, 0, 0, 0, 0]) for i in range(3)]
        >>> track = ParamsTrack({"fps": "25/1"}, rows)
        >>> round(float(track_lut(track, range(3), size=2)[1, 1, 1, 0]), 4)
        1.0
    """
    chosen = _frames(track, frames)
    color = _track_color(track, ocio)
    total = np.zeros((size, size, size, 3), dtype=np.float64)
    for f in chosen:
        args, stats = track.row(f - track.first_frame).applied()
        total += lut_lattice(args, stats, size=size, mix=mix, method=track.method, color=color)
    return total / len(chosen)


def _track_color(track: ParamsTrack, ocio: str | None) -> ColorManagement | None:
    recorded = track.header.get("color") or None
    if recorded is None:
        return None
    if not isinstance(recorded, dict):
        raise InputError(f"the parameter file's header.color {recorded!r} is not a colour record vidharm wrote")
    config = ProcessConfig(colorspace=recorded.get("colorspace"), ocio=ocio or recorded.get("config"))
    return track_color_management(track, config)


def write_cube(lut: np.ndarray, path: str | Path, *, title: str = "vidharm", comments: Sequence[str] = ()) -> Path:
    """Write a 3D LUT in the .cube text format, atomically.

    Args:
        lut: (N, N, N, 3) values in [0, 1] indexed ``[r, g, b]`` (as :func:`lut_lattice` returns).
        path: the file to write; its folder must exist.
        title: the ``TITLE`` line (double quotes are replaced).
        comments: lines written as ``#`` comments at the top.

    Returns:
        ``path`` as a Path.

    Raises:
        UsageError: ``lut`` is not (N, N, N, 3) or holds NaN/inf.
        OutputError: the file cannot be written.

    Example:
        >>> import tempfile
        >>> path = write_cube(lut_lattice([0] * 6, [0.5] * 4, size=2), Path(tempfile.mkdtemp()) / "id.cube")
        >>> path.read_text().splitlines()[1:4]
        ['LUT_3D_SIZE 2', 'DOMAIN_MIN 0.0 0.0 0.0', 'DOMAIN_MAX 1.0 1.0 1.0']
    """
    lut = np.asarray(lut, dtype=np.float64)
    if lut.ndim != 4 or lut.shape[3] != 3 or not lut.shape[0] == lut.shape[1] == lut.shape[2] or lut.shape[0] < 2:
        raise UsageError(f"lut: expected an (N, N, N, 3) array with N >= 2, got shape {lut.shape}")
    if not np.isfinite(lut).all():
        raise UsageError("lut: holds NaN or infinite values; every entry must be a finite number")
    size = lut.shape[0]
    head = [f"# {c}" for c in comments]
    head += [
        f'TITLE "{title.replace(chr(34), chr(39))}"',
        f"LUT_3D_SIZE {size}",
        "DOMAIN_MIN 0.0 0.0 0.0",
        "DOMAIN_MAX 1.0 1.0 1.0",
    ]
    # .cube order: red changes fastest, then green, then blue.
    rows = np.clip(lut, 0.0, 1.0).transpose(2, 1, 0, 3).reshape(-1, 3)
    body = "\n".join(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in rows.tolist())
    out = Path(path)
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(head) + "\n" + body + "\n")
    return out


def read_cube(path: str | Path) -> np.ndarray:
    """Read a 3D .cube LUT with domain [0, 1].

    Args:
        path: the file.

    Returns:
        (N, N, N, 3) float64 indexed ``[r, g, b]``.

    Raises:
        InputError: missing file, no ``LUT_3D_SIZE``, a 1D LUT, a domain other than [0, 1], a bad line or
            the wrong number of entries.

    Example:
        >>> import tempfile
        >>> lut = lut_lattice([0.1, 0, 0.2, 0, 0, 0], [0.4, 0.5, 0.6, 0.5], size=3)
        >>> back = read_cube(write_cube(lut, Path(tempfile.mkdtemp()) / "a.cube"))
        >>> bool(np.abs(back - lut).max() < 1e-6)
        True
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: LUT file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the LUT ({exc})") from None
    size = None
    values: list[list[float]] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, _, rest = text.partition(" ")
        if key == "LUT_3D_SIZE":
            size = int(rest)
        elif key == "LUT_1D_SIZE":
            raise InputError(f"{path} line {number}: a 1D LUT; expected a 3D .cube (LUT_3D_SIZE)")
        elif key in ("DOMAIN_MIN", "DOMAIN_MAX"):
            want = 0.0 if key == "DOMAIN_MIN" else 1.0
            if [float(v) for v in rest.split()] != [want] * 3:
                raise InputError(f"{path} line {number}: {key} {rest}; only the domain [0, 1] is supported")
        elif key in ("TITLE", "LUT_3D_INPUT_RANGE"):
            continue
        else:
            try:
                entry = [float(v) for v in text.split()]
            except ValueError:
                raise InputError(f"{path} line {number}: {text!r} is not three numbers") from None
            if len(entry) != 3:
                raise InputError(f"{path} line {number}: {text!r} is not three numbers")
            values.append(entry)
    if size is None:
        raise InputError(f"{path}: no LUT_3D_SIZE line; not a 3D .cube file")
    if len(values) != size**3:
        raise InputError(f"{path}: {len(values)} entries but LUT_3D_SIZE {size} needs {size**3}")
    return np.array(values, dtype=np.float64).reshape(size, size, size, 3).transpose(2, 1, 0, 3).copy()


def _describe(track: ParamsTrack, frames: list[int]) -> list[str]:
    """The .cube comments for source ``frames``."""
    clip = track.header.get("clip", "?")
    span = str(frames[0]) if len(frames) == 1 else f"{frames[0]}-{frames[-1]} (mean of {len(frames)} LUTs)"
    lines = [f"vidharm {vidharm.__version__}: harmonization of {clip}, frame {span}"]
    method = track.method
    if len(frames) == 1:
        args, stats = track.row(frames[0] - track.first_frame).applied()
        names = method.arg_names
        lines.append(f"{method.kind} " + " ".join(f"{n}={v:+.4f}" for n, v in zip(names, args, strict=True)))
        if len(stats) == 4:
            lines.append("stats mean_rgb={:.6f},{:.6f},{:.6f} contrast_pivot={:.6f}".format(*stats))
    color = track.header.get("color") or None
    if isinstance(color, dict):
        space, analysis = color.get("colorspace"), color.get("analysis_space")
        lines.append(
            f"colour-managed: this LUT acts in the analysis space {analysis!r} of OCIO config {color.get('config')}"
        )
        lines.append(
            f"apply as ColorSpaceTransform {space!r} -> {analysis!r}, this LUT (tetrahedral), "
            f"ColorSpaceTransform {analysis!r} -> {space!r}; key it with the matte"
        )
    else:
        lines.append("applies to code values (no colour conversion) of the whole frame; key it with the matte")
    return lines


def export_lut(
    track: ParamsTrack,
    path: str | Path,
    frames: int | Sequence[int] | range,
    *,
    size: int = CUBE_SIZE,
    mix: float = 1.0,
    ocio: str | None = None,
) -> Path:
    """Write one frame's harmonization (or the mean over a range) as a .cube file (``vidharm export lut``).

    A colour-managed track gives a LUT in its analysis space, to be wrapped in the OCIO conversions the file's
    comments name (see the module docstring).

    Args:
        track: the sidecar (its rows' applied arguments and statistics are baked in).
        path: the .cube to write; its folder must exist.
        frames: a source frame number or a range of them (row ``i`` is source frame ``track.first_frame + i``);
            the ``TITLE`` names them.
        size: points per axis (33 default; 65 for finer curves).
        mix: strength in [0, 1].
        ocio: the OCIO config of a colour-managed track, instead of the one its header records.

    Returns:
        ``path`` as a Path.

    Raises:
        InputError: the track has no row for a frame, or its recorded OCIO config is gone.
        UsageError: a bad ``size``, ``mix`` or empty range.
        OutputError: the file cannot be written.
    """
    chosen = _frames(track, frames)
    lut = track_lut(track, chosen, size=size, mix=mix, ocio=ocio)
    title = f"vidharm frame {chosen[0]}" + (f"-{chosen[-1]}" if len(chosen) > 1 else "")
    return write_cube(lut, path, title=title, comments=_describe(track, chosen))


def _nk_string(text: str) -> str:
    """A double-quoted .nk string; brackets are escaped so TCL does not evaluate them."""
    escaped = text.replace("\\", "/").replace('"', '\\"').replace("[", "\\[").replace("]", "\\]").replace("$", "\\$")
    return f'"{escaped}"'


def _mask_pattern(folder: MaskFolder) -> tuple[str, int, int]:
    """A printf pattern naming every file of a mask folder, with its first and last frame."""
    frames = list(folder.files)
    first = folder.files[frames[0]]
    match = re.search(r"(\d+)(?!.*\d)", first.name)
    if match is None:  # MaskFolder guarantees digits in the stem
        raise InputError(f"{first}: no frame number in the mask file name")
    prefix, digits, suffix = first.name[: match.start()], match.group(1), first.name[match.end() :]
    width = len(digits) if digits.startswith("0") or all(len(f"{f}") == len(digits) for f in frames) else 0
    pattern = f"{prefix}%0{width}d{suffix}" if width > 1 else f"{prefix}%d{suffix}"
    names = {pattern % f for f in frames}
    if names != {p.name for p in folder.files.values()}:
        log.warning("%s: mask files are not named by one pattern; the Nuke Read uses %s", folder.path, pattern)
    return str((folder.path / pattern).resolve()), frames[0], frames[-1]


def _matte_channel(folder: MaskFolder | None) -> str:
    if folder is None:
        return "rgba.red"
    image = read_image(next(iter(folder.files.values())), keep_alpha=True)
    return "rgba.alpha" if image.ndim == 3 and image.shape[2] == 4 else "rgba.red"


def _plain(value: float) -> str:
    """A number without exponent notation (Nuke's curve parser is only documented for plain decimals)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _curve(frames: list[int], values: list[float]) -> str:
    keys = " ".join(f"x{f} {_plain(v)}" for f, v in zip(frames, values, strict=True))
    return f"{{{{curve {keys}}}}}"


def export_nuke(
    track: ParamsTrack,
    path: str | Path,
    *,
    clip: str | Path,
    masks: str | Path,
    cube_dir: str | Path | None = None,
    size: int = CUBE_SIZE,
    mix: float = 1.0,
    on_frame: Callable[[int], None] | None = None,
    ocio: str | None = None,
) -> Path:
    """Write a Nuke script reproducing the harmonization, with a numbered .cube per frame (``export nuke``).

    See the module docstring for the node graph and why it uses per-frame LUTs. For a colour-managed track
    the LUTs are in its analysis space and sit between two ``OCIOColorSpace`` nodes (plate space to analysis
    space and back); the Nuke project must use the same OCIO config (the script's comments name it).

    Script frames are source frame numbers: row ``i`` is frame ``first_frame + i``, where ``first_frame`` is the
    track's ``header.first_frame``, or for sidecars written before it was recorded the clip's own (its first
    file number for an image sequence, 0 for a video).

    Args:
        track: the sidecar to reproduce (each row's applied values).
        path: the ``.nk`` to write; its folder must exist.
        clip: the plate the script reads (written as an absolute path): a video, or an image-sequence pattern
            (``plate.%04d.exr``, read at its file numbers).
        masks: the mask folder (read as a numbered sequence, its files numbered as the plate's source frames) or
            mask video.
        cube_dir: folder for the per-frame LUTs ``<stem>.<source frame:04d>.cube``; default ``<stem>_cubes``
            beside ``path`` (created if missing).
        size: lattice points per axis of each LUT.
        mix: strength in [0, 1], set on the Keymix.
        on_frame: called with 1 after each LUT, for progress bars.
        ocio: the OCIO config of a colour-managed track, instead of the one its header records.

    Returns:
        ``path`` as a Path.

    Raises:
        InputError: an empty track, unreadable masks, or (for a sidecar without ``first_frame``) an image
            sequence whose files cannot be listed.
        UsageError: a bad ``size`` or ``mix``, or a track made with a local colour-transfer grid.
        OutputError: a file cannot be written.

    Example:
        >>> import tempfile
        >>> from vidharm.pipeline.params import FrameParams
        >>> d = Path(tempfile.mkdtemp()); (d / "m").mkdir()
        >>> from vidharm.io import write_image
        >>> write_image(d / "m" / "00000.png", np.zeros((4, 4), np.uint8))
        >>> track = ParamsTrack({"fps": "25/1", "width": 4, "height": 4}, [FrameParams(0, 0, [0.0] * 6, [0.5] * 4)])
        >>> nk = export_nuke(track, d / "shot.nk", clip=d / "c.mp4", masks=d / "m", size=2)
        >>> sorted(p.name for p in (d / "shot_cubes").iterdir()), "OCIOFileTransform {" in nk.read_text()
        (['shot.0000.cube'], True)
    """
    _check_size(size)
    check_mix(mix)
    _check_lut_method(track.method)
    if not track.frames:
        raise InputError("the parameter track has no rows; nothing to export")
    out = Path(path)
    cubes = Path(cube_dir) if cube_dir is not None else out.with_name(out.stem + "_cubes")
    try:
        cubes.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{cubes}: cannot create the LUT folder ({exc}); check the path and permissions") from exc
    if track.header.get("first_frame") is None:  # written before first_frame was recorded: the clip says
        track = ParamsTrack({**track.header, "first_frame": first_frame_of(clip)}, track.frames)
    offset = track.first_frame
    stem = out.stem
    method = track.method
    color = _track_color(track, ocio)
    for row in track.frames:
        args, stats = row.applied()
        frame = track.source_frame(row.frame)
        write_cube(
            lut_lattice(args, stats, size=size, method=method, color=color),
            cubes / f"{stem}.{frame:04d}.cube",
            title=f"vidharm frame {frame}",
            comments=_describe(track, [frame]),
        )
        if on_frame is not None:
            on_frame(1)
    source = open_masks(masks, offset)
    folder = source if isinstance(source, MaskFolder) else None
    frames = [track.source_frame(r.frame) for r in track.frames]
    first, last = frames[0], frames[-1]
    total = track.header.get("num_frames")
    clip_last = offset + total - 1 if isinstance(total, int) and total > 0 else last
    # A movie's frame 1 is source frame `offset`: shift it onto the script's (source) frame numbers.
    movie_offset = f" time_offset {offset - 1}"
    width, height = track.header.get("width"), track.header.get("height")
    fps = float(track.fps)
    lines = [
        "#! nuke -nx",
        f"# written by vidharm {vidharm.__version__} (vidharm export nuke) from {track.header.get('clip', '?')}",
        "# Plate and matte are read raw; each frame's harmonization is the 3D LUT <stem>.<frame>.cube,",
        "# keyed over the plate with the matte (Keymix: B = plate, A = graded, mask = matte).",
        "version 13.0 v1",
        "Root {",
        " inputs 0",
        f" first_frame {first}",
        f" last_frame {last}",
        f" fps {_plain(fps)}",
    ]
    if isinstance(width, int) and isinstance(height, int):
        lines.append(f' format "{width} {height} 0 0 {width} {height} 1 vidharm_plate"')
    lines.append("}")
    if folder is not None:
        pattern, mfirst, mlast = _mask_pattern(folder)
        lines += ["Read {", " inputs 0", f" file {_nk_string(pattern)}", f" first {mfirst}", f" last {mlast}"]
        lines += [
            f" origfirst {mfirst}",
            f" origlast {mlast}",
            " origset true",
            " raw true",
            " name vidharm_Matte",
            "}",
        ]
    else:
        lines += ["Read {", " inputs 0", f" file {_nk_string(str(Path(masks).resolve()))}", " raw true"]
        lines += [" name vidharm_MatteMovie", "}", "TimeOffset {", movie_offset, " name vidharm_Matte", "}"]
    lines += ["set N_vidharm_matte [stack 0]"]
    lines += ["Read {", " inputs 0", f" file {_nk_string(str(Path(clip).resolve()))}"]
    if is_sequence_source(clip):  # read at its file numbers, which are the script's frames
        lines += [f" first {offset}", f" last {clip_last}", f" origfirst {offset}", f" origlast {clip_last}"]
        lines += [" origset true", " raw true", " name vidharm_Plate", "}"]
    else:
        lines += [" raw true", " name vidharm_PlateMovie", "}"]
        lines += ["TimeOffset {", movie_offset, " name vidharm_Plate", "}"]
    lines += ["set N_vidharm_plate [stack 0]"]
    cube_file = _nk_string(str((cubes / f"{stem}.").resolve()))[:-1] + '[format %04d [frame]].cube"'
    if color is not None:
        spaces = (_nk_string(color.colorspace), _nk_string(color.analysis_space))
        lines.insert(4, f"# colour-managed (OCIO config {color.config_name}): the LUTs act in {color.analysis_space!r}")
        lines += ["OCIOColorSpace {", f" in_colorspace {spaces[0]}", f" out_colorspace {spaces[1]}"]
        lines += [" name vidharm_ToAnalysis", "}"]
    lines += ["OCIOFileTransform {", f" file {cube_file}", " name vidharm_Harmonize", "}"]
    if color is not None:
        lines += ["OCIOColorSpace {", f" in_colorspace {spaces[1]}", f" out_colorspace {spaces[0]}"]
        lines += [" name vidharm_FromAnalysis", "}"]
    lines += ["set N_vidharm_graded [stack 0]"]
    # Multi-input nodes take their inputs from the stack, input 0 from the top: push mask, A, then B.
    lines += ["push $N_vidharm_matte", "push $N_vidharm_graded", "push $N_vidharm_plate"]
    lines += ["Keymix {", " inputs 3", f" maskChannel {_matte_channel(folder)}", f" mix {_plain(mix)}"]
    lines += [" name vidharm_Keymix", "}"]
    lines += ["NoOp {", " name vidharm_Arguments", ' label "vidharm arguments (applied, per frame)"']
    lines += [" addUserKnob {20 vidharm}"]
    applied = [r.applied()[0] for r in track.frames]
    for i, name in enumerate(method.arg_names):
        lines.append(f" addUserKnob {{7 {name}}}")
        lines.append(f" {name} {_curve(frames, [a[i] for a in applied])}")
    lines.append("}")
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return out


def export_onnx(
    config: ProcessConfig,
    path: str | Path,
    *,
    opset: int = 17,
    check: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-4,
) -> float | None:
    """Export the configured model's argument prediction as ONNX and check it with ONNX Runtime.

    The graph takes ``image`` (B, 3, S, S) and ``mask`` (B, 1, S, S), float32 in [0, 1], at the model's input
    size S (256 for ``harmonizer``; resize frames bilinearly first, as analyze does), and returns ``args``
    (B, 6) raw arguments in :data:`vidharm.filters.FILTER_NAMES` order. The batch axis is dynamic. The model
    runs on the CPU for the export.

    Args:
        config: model name and weights (``harmonizer`` with ``weights``; ``harmonizer_tiny`` for tests).
        path: the ``.onnx`` to write (atomically; not left behind when the check fails).
        opset: ONNX opset version.
        check: run the file with ONNX Runtime on fresh random inputs (batch 2) and compare with PyTorch.
        atol, rtol: an argument passes where ``|onnx - torch| <= atol + rtol * |torch|`` (as ``numpy.allclose``):
            float32 summation order moves a raw argument of ~100 (clamped to 1 by the filters) by ~5e-4.

    Returns:
        The largest absolute difference found by the check, or None without it.

    Raises:
        UsageError: onnx/onnxruntime missing, or a model that does not predict (B, 6) arguments.
        CheckpointError: the weights cannot be loaded.
        OutputError: the export fails, the file cannot be written, or ONNX Runtime disagrees by more than
            ``atol`` and ``rtol`` allow.
    """
    ort: Any = None
    if check:
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError as exc:
            raise UsageError("export onnx: expected onnxruntime to check the export; pip install onnxruntime") from exc
    size = get_model_config(config.model).input_size
    model = load_model(config, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        probe = model(torch.rand(1, 3, size, size, generator=gen), torch.rand(1, 1, size, size, generator=gen))
    if tuple(probe.shape) != (1, NUM_ARGS):
        raise UsageError(
            f"export onnx: model {config.model!r} returns shape {tuple(probe.shape)}, not (B, {NUM_ARGS}) "
            "arguments; export an argument-predicting model such as harmonizer"
        )
    out = Path(path)
    worst: float | None = None
    with atomic_path(out) as tmp:
        export_graph(model, size, tmp, opset=opset)
        if ort is not None:
            image = torch.rand(2, 3, size, size, generator=gen)
            mask = torch.rand(2, 1, size, size, generator=gen)
            session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            got = session.run(["args"], {"image": image.numpy(), "mask": mask.numpy()})[0]
            with torch.inference_mode():
                want = model(image, mask).numpy()
            diff = np.abs(got - want)
            worst = float(diff.max())
            if not np.isfinite(got).all() or (diff > atol + rtol * np.abs(want)).any():
                raise OutputError(
                    f"export onnx: ONNX Runtime and PyTorch differ by {worst:.3g} (more than {atol:g} + {rtol:g} x "
                    "the argument) on the arguments; the export is not faithful, try another --opset"
                )
            log.info("ONNX Runtime matches PyTorch to %.3g on the arguments", worst)
    return worst
