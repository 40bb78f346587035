"""Colour management with OpenColorIO: a frame's colour space in, the model's analysis space out, and back.

The networks and the six filters were made for display-referred, gamma-encoded sRGB. A colour-managed frame
(scene-linear ACEScg from an EXR, a log camera space, a Rec.709 master ...) is converted with OpenColorIO to
the *analysis space*, the config's sRGB texture space (``sRGB Encoded Rec.709 (sRGB)`` in the ACES configs:
linear Rec.709 primaries with the piecewise sRGB curve, extended linearly below 0 and by the curve above 1,
so the conversion is invertible and unbounded values survive it). It is an encoding, not a display view:
nothing is tone-mapped, so the round trip input -> analysis -> input gives the input back (to about 3e-6,
float32).

The config is ``--ocio CONFIG`` (a file, or an ``ocio://`` URI of a config OpenColorIO ships), else the
``$OCIO`` environment variable, else :data:`BUILTIN_CONFIG`, the ACES studio config built into the
OpenColorIO library (``studio-config-v5.0.0_aces-v2.1_ocio-v2.6`` with opencolorio 2.6). Conversions run
on the CPU in float32 with OpenColorIO's lossless optimisation (its default one approximates the power
curves to about 2e-5).
"""

from __future__ import annotations

import difflib
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vidharm.errors import InputError, ShapeError, UsageError

__all__ = ["BUILTIN_CONFIG", "ANALYSIS_SPACE_NAMES", "ColorManagement", "resolve_ocio_config", "open_color_management"]

BUILTIN_CONFIG = "ocio://studio-config-latest"
"""The config used when neither ``--ocio`` nor ``$OCIO`` names one: the ACES studio config in OpenColorIO."""

ANALYSIS_SPACE_NAMES: tuple[str, ...] = (
    "sRGB Encoded Rec.709 (sRGB)",  # ACES configs v2+ (its aliases srgb_tx, sRGB - Texture resolve to it)
    "sRGB - Texture",
    "Utility - sRGB - Texture",  # ACES 1.x configs
    "srgb_tx",
    "srgb_texture",
    "sRGB",  # nuke-default and similar configs: the sRGB curve on linear Rec.709
)
"""Names tried, in order, for the analysis space (an sRGB texture encoding) in a config."""


def resolve_ocio_config(ocio: str | os.PathLike[str] | None = None) -> str:
    """The OCIO config to use: ``ocio``, else ``$OCIO``, else :data:`BUILTIN_CONFIG`.

    Args:
        ocio: a config file (``config.ocio``), an ``ocio://`` URI of a built-in config, or None.

    Returns:
        The config as OpenColorIO opens it: an absolute file path or an ``ocio://`` URI.

    Raises:
        InputError: the named config file (or the one ``$OCIO`` names) does not exist.

    Example:
        >>> resolve_ocio_config("ocio://cg-config-latest")
        'ocio://cg-config-latest'
    """
    source = "--ocio"
    if ocio is None or str(ocio) == "":
        ocio = os.environ.get("OCIO") or None
        source = "$OCIO"
    if ocio is None:
        return BUILTIN_CONFIG
    text = str(ocio)
    if text.startswith("ocio://"):
        return text
    path = Path(text).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise InputError(
            f"{path}: the OCIO config ({source}) {what}; give the path of a config.ocio file, "
            f"or {BUILTIN_CONFIG} for the ACES config built into OpenColorIO"
        )
    return str(path.resolve())


@lru_cache(maxsize=4)
def _load_config(reference: str) -> Any:
    import PyOpenColorIO as ocio

    try:
        return ocio.Config.CreateFromFile(reference)
    except ocio.Exception as exc:
        raise InputError(
            f"{reference}: OpenColorIO cannot load this config ({str(exc).splitlines()[0]}); "
            "check the file, or omit --ocio to use the ACES config built into OpenColorIO"
        ) from None


def _space_names(config: Any) -> list[str]:
    names: list[str] = []
    for space in config.getColorSpaces():
        names.append(space.getName())
        names.extend(space.getAliases())
    return names


def _lookup(config: Any, name: str, reference: str) -> Any:
    space = config.getColorSpace(name)
    if space is not None:
        return space
    names = _space_names(config)
    lower = {n.lower(): n for n in names}
    close = [lower[n] for n in difflib.get_close_matches(name.lower(), list(lower), n=6, cutoff=0.6)]
    hint = f"close names: {', '.join(repr(n) for n in close)}" if close else "no name is close"
    raise UsageError(
        f"colour space {name!r} is not in the OCIO config {config.getName() or reference} ({hint}); "
        f"give one of its {len(list(config.getColorSpaces()))} colour spaces (or an alias or role) with --colorspace"
    )


def _analysis_space(config: Any, reference: str) -> Any:
    for name in ANALYSIS_SPACE_NAMES:
        space = config.getColorSpace(name)
        if space is not None and not space.isData():
            return space
    raise InputError(
        f"{reference}: the OCIO config {config.getName()!r} has no sRGB texture colour space for the analysis "
        f"(looked for {', '.join(repr(n) for n in ANALYSIS_SPACE_NAMES)}); add one (or an alias 'srgb_tx') "
        "to the config, or use the ACES config built into OpenColorIO"
    )


def _apply(processor: Any, image: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim < 1 or image.shape[-1] != 3:
        raise ShapeError(
            f"{name}: expected an (..., 3) RGB array such as (H, W, 3), got {getattr(image, 'shape', image)}"
        )
    if image.dtype != np.float32:
        raise InputError(
            f"{name}: expected float32 values (code values scaled to [0, 1] or scene-linear), got {image.dtype}; "
            "convert integer frames with image.astype(np.float32) / peak"
        )
    out = np.array(image, dtype=np.float32, order="C", copy=True)
    if out.size:
        processor.applyRGB(out)
    return out


@dataclass(frozen=True, eq=False)
class ColorManagement:
    """The conversion of a frame between its colour space and the analysis space (an sRGB texture encoding).

    Build it with :func:`open_color_management`. Both conversions are cached OpenColorIO CPU processors (thread
    safe); they take and return float32 (..., 3) arrays and never modify their input.

    Attributes:
        colorspace: the input's colour space, as the config names it (aliases resolved).
        analysis_space: the config's sRGB texture space the model and the filters see.
        config: the config as opened: an absolute path or an ``ocio://`` URI.
        config_name: the config's own name, e.g. ``studio-config-v5.0.0_aces-v2.1_ocio-v2.6``.

    Example:
        >>> cm = open_color_management("ACEScg")
        >>> cm.analysis_space, cm.is_identity
        ('sRGB Encoded Rec.709 (sRGB)', False)
        >>> grey = cm.to_analysis(np.full((1, 1, 3), 0.18, np.float32))
        >>> round(float(grey[0, 0, 1]), 3), round(float(cm.from_analysis(grey)[0, 0, 1]), 5)
        (0.461, 0.18)
    """

    colorspace: str
    analysis_space: str
    config: str
    config_name: str
    _forward: Any = field(repr=False)
    _inverse: Any = field(repr=False)
    is_identity: bool = False
    """True when the input space is the analysis space (both conversions do nothing)."""

    def to_analysis(self, image: np.ndarray) -> np.ndarray:
        """Convert from :attr:`colorspace` to the analysis space.

        Args:
            image: (..., 3) float32 RGB in the input space (any finite values; scene-linear may exceed 1).

        Returns:
            A new (..., 3) float32 array in the analysis space (may leave [0, 1]).

        Raises:
            ShapeError: the last axis is not 3.
            InputError: ``image`` is not float32.
        """
        return _apply(self._forward, image, "image")

    def from_analysis(self, image: np.ndarray) -> np.ndarray:
        """Convert from the analysis space back to :attr:`colorspace` (the inverse of :meth:`to_analysis`).

        Args:
            image: (..., 3) float32 RGB in the analysis space (any finite values).

        Returns:
            A new (..., 3) float32 array in the input space.

        Raises:
            ShapeError: the last axis is not 3.
            InputError: ``image`` is not float32.
        """
        return _apply(self._inverse, image, "image")

    def describe(self) -> dict[str, str]:
        """What a parameter file records about the colour handling of its analysis.

        Example:
            >>> sorted(open_color_management("ACEScg").describe())
            ['analysis_space', 'colorspace', 'config', 'config_name']
        """
        return {
            "colorspace": self.colorspace,
            "analysis_space": self.analysis_space,
            "config": self.config,
            "config_name": self.config_name,
        }


_lock = threading.Lock()


@lru_cache(maxsize=16)
def _open(colorspace: str, reference: str) -> ColorManagement:
    import PyOpenColorIO as ocio

    config = _load_config(reference)
    space = _lookup(config, colorspace, reference)
    if space.isData():
        raise UsageError(
            f"colour space {space.getName()!r} holds data, not colour (OCIO never converts it); "
            "omit --colorspace to harmonize the code values as they are, or name the frames' colour space"
        )
    analysis = _analysis_space(config, reference)
    forward = config.getProcessor(space.getName(), analysis.getName())
    inverse = config.getProcessor(analysis.getName(), space.getName())
    f32, lossless = ocio.BIT_DEPTH_F32, ocio.OPTIMIZATION_LOSSLESS
    return ColorManagement(
        colorspace=space.getName(),
        analysis_space=analysis.getName(),
        config=reference,
        config_name=config.getName(),
        _forward=forward.getOptimizedCPUProcessor(f32, f32, lossless),
        _inverse=inverse.getOptimizedCPUProcessor(f32, f32, lossless),
        is_identity=bool(forward.isNoOp() and inverse.isNoOp()),
    )


def open_color_management(colorspace: str, ocio: str | os.PathLike[str] | None = None) -> ColorManagement:
    """Look ``colorspace`` up in the OCIO config and build the conversions to and from the analysis space.

    Args:
        colorspace: the frames' colour space: a name, alias or role of the config (``ACEScg``, ``lin_ap1``,
            ``scene_linear``, ``sRGB Encoded Rec.709 (sRGB)`` ...).
        ocio: the config (see :func:`resolve_ocio_config`); None for ``$OCIO`` or the built-in ACES config.

    Returns:
        The conversions (cached: the same arguments give the same object).

    Raises:
        UsageError: ``colorspace`` is not in the config (the message lists the close names) or is a data space.
        InputError: the config file is missing or unreadable, or has no sRGB texture space.

    Example:
        >>> open_color_management("srgb_tx").is_identity
        True
        >>> try:
        ...     open_color_management("ACEScgg")
        ... except UsageError as exc:
        ...     print(str(exc)[:60])
        colour space 'ACEScgg' is not in the OCIO config studio-conf
    """
    if not isinstance(colorspace, str) or not colorspace.strip():
        raise UsageError(f"colorspace: expected the name of a colour space of the OCIO config, got {colorspace!r}")
    reference = resolve_ocio_config(ocio)
    with _lock:
        return _open(colorspace.strip(), reference)
