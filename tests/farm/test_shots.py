"""Shots: defaults, option checks with nearest-name hints, CSV and YAML shot lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidharm.errors import InputError, UsageError
from vidharm.farm import DEFAULT_CHUNK, make_shot, read_shot_list


def test_defaults_follow_process() -> None:
    shot = make_shot("plates/a.mov", "plates/a_masks", base=Path("/show"))
    assert shot.output == Path("/show/plates/a_harmonized.mov")
    assert shot.work == Path("/show/plates/a_harmonized_work")
    assert (shot.name, shot.chunk, shot.options, shot.is_sequence) == ("a", DEFAULT_CHUNK, {}, False)


def test_sequence_output_gets_a_work_folder_beside_its_folder() -> None:
    shot = make_shot("a.mp4", "m", "renders/a/a.%05d.png", base=Path("/show"))
    assert shot.is_sequence and shot.work == Path("/show/renders/a_work")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"codek": "ffv1"}, "unknown option 'codek'; did you mean 'codec'"),
        ({"smoothing": "sideways"}, "smoothing: expected one of"),
        ({"mix": "2"}, "mix: expected a strength between 0 and 1"),
        ({"set": ["half_lif_s=1"]}, "half_life_s"),
    ],
)
def test_bad_options_are_refused_at_export(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        make_shot("a.mp4", "m", options=options)


def test_bad_chunk_and_missing_config() -> None:
    with pytest.raises(UsageError, match="chunk must be at least 1"):
        make_shot("a.mp4", "m", chunk=0)
    with pytest.raises(UsageError, match="whole number"):
        make_shot("a.mp4", "m", chunk="ten")
    with pytest.raises(InputError, match="config file .* not found"):
        make_shot("a.mp4", "m", options={"config": "/nonexistent/preset.yaml"})


def test_csv_shot_list(tmp_path: Path) -> None:
    (tmp_path / "shots.csv").write_text(
        "name,clip,masks,output,chunk,codec,set\n"
        "sh010,plates/a.mp4,plates/a_masks,out/a.mkv,50,ffv1,half_life_s=1;smoothing=zero_lag\n"
        ",plates/b.mp4,plates/b_masks,,,,\n"
        "sh010,plates/c.mp4,plates/c_masks,out/c.%04d.png,,,\n"
    )
    a, b, c = read_shot_list(tmp_path / "shots.csv", defaults={"preset": "ultrafast"})
    assert (a.name, a.chunk, a.output) == ("sh010", 50, tmp_path / "out" / "a.mkv")
    assert a.options == {"codec": "ffv1", "set": ["half_life_s=1", "smoothing=zero_lag"], "preset": "ultrafast"}
    assert (b.name, b.clip, b.chunk) == ("b", tmp_path / "plates" / "b.mp4", DEFAULT_CHUNK)
    assert c.name == "sh010_2" and c.is_sequence  # names are made unique


def test_yaml_shot_list_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "shots.yaml").write_text(
        "defaults: {codec: ffv1, chunk: 24}\n"
        "shots:\n"
        "  - {clip: a.mp4, masks: a_masks}\n"
        "  - {clip: b.mp4, masks: b_masks, chunk: 10, codec: libx264, set: [crf=0]}\n"
    )
    a, b = read_shot_list(tmp_path / "shots.yaml")
    assert (a.chunk, a.options) == (24, {"codec": "ffv1"})
    assert (b.chunk, b.options) == (10, {"codec": "libx264", "set": ["crf=0"]})


@pytest.mark.parametrize(
    ("name", "text", "error", "message"),
    [
        ("s.csv", "clip,masks,colour\na.mp4,m,1\n", UsageError, "unknown option 'colour'"),
        ("s.csv", "clip,output\na.mp4,o.mp4\n", InputError, "shot 1: no masks"),
        ("s.csv", "clip,masks\n", InputError, "no shots"),
        ("s.yaml", "shots: 3\n", InputError, "expected a list of shots"),
        ("s.yaml", "[unclosed\n", InputError, "not valid YAML"),
        ("s.txt", "a.mp4\n", UsageError, r"\.csv, \.yaml or \.yml"),
    ],
)
def test_bad_shot_lists(tmp_path: Path, name: str, text: str, error: type, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(error, match=message):
        read_shot_list(tmp_path / name)


def test_switches_paths_and_the_new_options(tmp_path: Path) -> None:
    import PyOpenColorIO as ocio

    (tmp_path / "bars").mkdir()
    (tmp_path / "c.ocio").write_text(ocio.Config.CreateFromBuiltinConfig("studio-config-latest").serialize())
    options = {"mask_from_alpha": "yes", "fps": "24000/1001", "stats_mask": "bars", "ocio": "c.ocio"}
    shot = make_shot("plate.%04d.exr", None, base=tmp_path, options={**options, "colorspace": "ACEScg"})
    assert shot.name == "plate" and shot.masks is None
    assert shot.options == {
        "mask_from_alpha": True,
        "fps": "24000/1001",
        "stats_mask": str(tmp_path / "bars"),  # relative paths are relative to the base
        "ocio": str(tmp_path / "c.ocio"),
        "colorspace": "ACEScg",
    }
    assert make_shot("a.mp4", "m", options={"mask_from_alpha": "false"}).options == {}
    uri = make_shot("a.mp4", "m", options={"colorspace": "ACEScg", "ocio": "ocio://studio-config-latest"})
    assert uri.options["ocio"] == "ocio://studio-config-latest"


@pytest.mark.parametrize(
    ("masks", "options", "error", "message"),
    [
        (None, {}, UsageError, "no masks; give the masks .* or mask_from_alpha"),
        ("m", {"mask_from_alpha": True}, UsageError, "either masks or mask_from_alpha"),
        ("m", {"mask_from_alpha": "maybe"}, UsageError, "mask_from_alpha is a switch"),
        ("m", {"premultiplied": "true"}, UsageError, "premultiplied goes with layers"),
        ("m", {"fps": "0"}, UsageError, "fps: expected a positive frame rate"),
        ("m", {"colorspace": "ACEScgg"}, UsageError, "'ACEScgg' is not in the OCIO config"),
        ("m", {"stats_mask": "/nonexistent/bars"}, InputError, "statistics mask /nonexistent/bars not found"),
        ("m", {"ocio": "/nonexistent/c.ocio", "colorspace": "ACEScg"}, InputError, "OCIO config .* not found"),
    ],
)
def test_bad_new_options_are_refused_at_export(masks: str | None, options: dict[str, object], error: type,
                                               message: str) -> None:  # fmt: skip
    with pytest.raises(error, match=message):
        make_shot("a.mp4", masks, options=options)


def test_layers_in_a_shot_list(tmp_path: Path) -> None:
    (tmp_path / "shots.yaml").write_text(
        "shots:\n"
        "  - {fg: el/fg.%04d.png, bg: pl/bg.%04d.png, alpha: el_alpha, premultiplied: true, output: o.mov}\n"
        "  - {fg: el/fg.%04d.png, bg: pl/bg.%04d.png}\n"
        "  - {clip: c.mov, mask_from_alpha: true}\n"
    )
    a, b, c = read_shot_list(tmp_path / "shots.yaml")
    assert (a.foreground, a.clip, a.masks) == (tmp_path / "el" / "fg.%04d.png", tmp_path / "pl" / "bg.%04d.png",
                                               tmp_path / "el_alpha")  # fmt: skip
    assert a.options == {"premultiplied": True} and a.name == "bg"
    assert b.masks is None and b.foreground is not None and b.name == "bg_2"
    assert (c.masks, c.options) == (None, {"mask_from_alpha": True})


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("fg,bg,clip\na,b,c\n", "layers take fg, bg and alpha, not clip"),
        ("fg\na\n", "layers need both fg"),
        ("clip,alpha\na.mov,m\n", "alpha goes with layers"),
        ("fg,bg,mask_from_alpha\na,b,true\n", "mask_from_alpha is for a flattened clip"),
        ("clip,mask_from_alpha\na.mov,false\n", "no masks"),
        ("masks\nm\n", "no clip"),
    ],
)
def test_bad_layer_rows(tmp_path: Path, row: str, message: str) -> None:
    (tmp_path / "s.csv").write_text(row)
    with pytest.raises((InputError, UsageError), match=message):
        read_shot_list(tmp_path / "s.csv")
