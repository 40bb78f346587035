"""OpenColorIO colour management: config resolution, colour-space lookup, conversions and their round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import InputError, ShapeError, UsageError
from vidharm.io import BUILTIN_CONFIG, open_color_management, resolve_ocio_config

# A minimal OCIO v2 config: scene-linear Rec.709 and its sRGB encoding (named as nuke-default names it).
SRGB_CONFIG = """ocio_profile_version: 2
roles:
  default: linear
  scene_linear: linear
file_rules:
  - !<Rule> {name: Default, colorspace: default}
displays:
  sRGB:
    - !<View> {name: Raw, colorspace: linear}
colorspaces:
  - !<ColorSpace>
    name: linear
    isdata: false
  - !<ColorSpace>
    name: sRGB
    isdata: false
    to_scene_reference: !<ExponentWithLinearTransform> {gamma: 2.4, offset: 0.055}
"""

# The same without any sRGB encoding: no analysis space.
LINEAR_ONLY_CONFIG = """ocio_profile_version: 2
roles:
  default: linear
file_rules:
  - !<Rule> {name: Default, colorspace: default}
displays:
  sRGB:
    - !<View> {name: Raw, colorspace: linear}
colorspaces:
  - !<ColorSpace>
    name: linear
    isdata: false
  - !<ColorSpace>
    name: gamma22
    isdata: false
    to_scene_reference: !<ExponentTransform> {value: 2.2}
"""


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding (float64 reference), for values in [0, 1]."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


@pytest.fixture(autouse=True)
def no_ocio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCIO", raising=False)


def test_config_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_ocio_config(None) == BUILTIN_CONFIG
    config = tmp_path / "config.ocio"
    config.write_text(SRGB_CONFIG)
    other = tmp_path / "other.ocio"
    other.write_text(SRGB_CONFIG)
    monkeypatch.setenv("OCIO", str(other))
    assert resolve_ocio_config(None) == str(other.resolve())
    assert resolve_ocio_config(config) == str(config.resolve())  # --ocio wins over $OCIO
    assert resolve_ocio_config("ocio://cg-config-latest") == "ocio://cg-config-latest"


def test_missing_config_is_an_input_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere" / "config.ocio"
    with pytest.raises(InputError, match="nowhere/config.ocio.*--ocio.*does not exist"):
        open_color_management("ACEScg", missing)
    monkeypatch.setenv("OCIO", str(missing))
    with pytest.raises(InputError, match=r"\$OCIO"):
        open_color_management("ACEScg")
    with pytest.raises(InputError, match="is a folder"):
        resolve_ocio_config(tmp_path)


def test_unreadable_config_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ocio"
    bad.write_text("this is: [not an ocio config\n")
    with pytest.raises(InputError, match="bad.ocio: OpenColorIO cannot load this config"):
        open_color_management("linear", bad)


def test_unknown_colour_space_lists_the_close_names() -> None:
    with pytest.raises(UsageError) as info:
        open_color_management("ACEScgg")
    message = str(info.value)
    assert "'ACEScgg' is not in the OCIO config studio-config" in message
    assert "close names: 'ACEScg'" in message and "\n" not in message
    with pytest.raises(UsageError, match="no name is close"):
        open_color_management("qqqqzzzz")


def test_names_aliases_and_roles_resolve_to_the_canonical_space() -> None:
    assert open_color_management("lin_ap1").colorspace == "ACEScg"
    assert open_color_management("scene_linear").colorspace == "ACEScg"
    assert open_color_management(" ACEScg ") is open_color_management("ACEScg")  # cached


def test_data_space_and_empty_name_are_refused() -> None:
    with pytest.raises(UsageError, match="holds data"):
        open_color_management("Raw")
    with pytest.raises(UsageError, match="colorspace"):
        open_color_management("  ")


def test_analysis_space_is_the_srgb_texture_encoding_not_a_display_view() -> None:
    cm = open_color_management("Linear Rec.709 (sRGB)")
    assert cm.analysis_space == "sRGB Encoded Rec.709 (sRGB)"
    linear = np.linspace(0, 1, 101, dtype=np.float32).reshape(-1, 1, 1).repeat(3, axis=2)
    encoded = cm.to_analysis(linear)
    np.testing.assert_allclose(encoded, srgb_encode(linear.astype(np.float64)), atol=2e-6)
    # A display view would tone-map: the encoding keeps 1.0 at 1.0 and carries values above it.
    above = cm.to_analysis(np.array([[[1.0, 2.0, 4.0]]], np.float32))[0, 0]
    assert abs(above[0] - 1.0) < 1e-6 and 1.0 < above[1] < above[2]


def test_srgb_to_acescg_to_srgb_round_trip() -> None:
    """The issue's round trip: sRGB -> ACEScg -> sRGB, also for values outside [0, 1]."""
    srgb = open_color_management("sRGB Encoded Rec.709 (sRGB)")
    assert srgb.is_identity
    acescg = open_color_management("ACEScg")
    rng = np.random.default_rng(1)
    codes = rng.uniform(-0.2, 1.5, (64, 64, 3)).astype(np.float32)
    scene = acescg.from_analysis(codes)  # sRGB texture -> ACEScg
    assert not np.allclose(scene, codes, atol=1e-2)  # a real conversion happened
    back = acescg.to_analysis(scene)  # ACEScg -> sRGB texture
    np.testing.assert_allclose(back, codes, atol=1e-5)
    # Grey stays grey, and 18 % ACEScg grey is the sRGB encoding of 0.18.
    grey = acescg.to_analysis(np.full((1, 1, 3), 0.18, np.float32))[0, 0]
    np.testing.assert_allclose(grey, srgb_encode(np.array(0.18)), atol=2e-5)


def test_conversions_never_modify_their_input_and_check_it() -> None:
    cm = open_color_management("ACEScg")
    image = np.full((2, 3, 3), 0.5, np.float32)
    before = image.copy()
    out = cm.to_analysis(image)
    assert out is not image and np.array_equal(image, before) and out.shape == (2, 3, 3)
    assert cm.from_analysis(image[:0]).shape == (0, 3, 3)
    with pytest.raises(InputError, match="float32"):
        cm.to_analysis(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\)"):
        cm.from_analysis(np.zeros((2, 2, 4), np.float32))


def test_a_config_file_given_or_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.ocio"
    config.write_text(SRGB_CONFIG)
    cm = open_color_management("linear", config)
    assert (cm.colorspace, cm.analysis_space, cm.config) == ("linear", "sRGB", str(config.resolve()))
    value = cm.to_analysis(np.array([[0.18, 0.5, 1.0]], np.float32))
    np.testing.assert_allclose(value, srgb_encode(np.array([[0.18, 0.5, 1.0]])), atol=2e-6)
    monkeypatch.setenv("OCIO", str(config))
    assert open_color_management("linear").config == str(config.resolve())
    assert cm.describe() == {
        "colorspace": "linear",
        "analysis_space": "sRGB",
        "config": str(config.resolve()),
        "config_name": cm.config_name,
    }


def test_a_config_without_an_srgb_texture_space_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "linear_only.ocio"
    config.write_text(LINEAR_ONLY_CONFIG)
    with pytest.raises(InputError, match="linear_only.ocio.*no sRGB texture colour space.*srgb_tx"):
        open_color_management("linear", config)
