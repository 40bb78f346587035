"""Work folders and parameter files from another clip or other masks are refused by their fingerprints."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import InputError
from vidharm.farm import check_sidecars_agree, check_track_source, check_work_folder
from vidharm.pipeline import ParamsTrack, ProcessConfig, analyze, open_clip, write_params

CONFIG = ProcessConfig(device="cpu")


@pytest.fixture
def two_shots(clip_with_masks: Callable[..., tuple[Path, Path]]) -> dict[str, object]:
    clip_a, masks_a = clip_with_masks(num_frames=4, name="a.mp4")
    clip_b, masks_b = clip_with_masks(num_frames=4, name="b.mp4", codec="libx264rgb", pix_fmt="rgb24")
    track_a = analyze(open_clip(clip_a, masks_a, range(0, 2)), CONFIG)
    return {"a": (clip_a, masks_a), "b": (clip_b, masks_b), "track_a": track_a}


def test_a_work_folder_of_another_clip_is_refused(tmp_path: Path, two_shots: dict[str, object]) -> None:
    track_a: ParamsTrack = two_shots["track_a"]  # type: ignore[assignment]
    work = tmp_path / "work"
    work.mkdir()
    write_params(track_a, work / "analyze.000000-000001.json")
    check_work_folder(work, track_a.header)  # same clip: fine
    check_work_folder(tmp_path / "missing", track_a.header)  # a new folder: fine
    other = {**track_a.header, "clip_fingerprint": "0" * 64, "clip": "b.mp4"}
    with pytest.raises(InputError, match=r"holds analyze.000000-000001.json, analyzed from another clip"):
        check_work_folder(work, other)
    masks = {**track_a.header, "masks_fingerprint": "0" * 64}
    with pytest.raises(InputError, match="another masks"):
        check_work_folder(work, masks)
    (work / "analyze.000002-000003.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable sidecar"):
        check_work_folder(work, track_a.header)


def test_sidecars_of_two_clips_do_not_join() -> None:
    a = {"clip_fingerprint": "1", "masks_fingerprint": "m", "clip": "a.mp4"}
    check_sidecars_agree([a, dict(a)], ["x", "y"])
    check_sidecars_agree([], [])
    with pytest.raises(InputError, match=r"y was analyzed from another clip \(b.mp4\) than x \(a.mp4\)"):
        check_sidecars_agree([a, {**a, "clip_fingerprint": "2", "clip": "b.mp4"}], ["x", "y"])


def test_rendering_onto_another_clip_or_masks_is_refused(two_shots: dict[str, object]) -> None:
    track_a: ParamsTrack = two_shots["track_a"]  # type: ignore[assignment]
    clip_a, masks_a = two_shots["a"]  # type: ignore[misc]
    clip_b, masks_b = two_shots["b"]  # type: ignore[misc]
    check_track_source(track_a, open_clip(clip_a, masks_a))
    with pytest.raises(InputError, match=r"p.json was analyzed from another clip .*analyze b.mp4"):
        check_track_source(track_a, open_clip(clip_b, masks_a), name="p.json")
    (Path(masks_b) / "00000.png").write_bytes((Path(masks_a) / "00001.png").read_bytes())  # other masks, same clip
    with pytest.raises(InputError, match="analyzed with other masks"):
        check_track_source(track_a, open_clip(clip_a, masks_b))


def test_hand_made_sidecars_without_fingerprints_pass(two_shots: dict[str, object]) -> None:
    track_a: ParamsTrack = two_shots["track_a"]  # type: ignore[assignment]
    clip_b, masks_b = two_shots["b"]  # type: ignore[misc]
    bare = dataclasses.replace(track_a, header={k: v for k, v in track_a.header.items() if "fingerprint" not in k})
    check_track_source(bare, open_clip(clip_b, masks_b))
    assert json.dumps(bare.header)  # still a plain header


def test_chunks_analysed_against_another_stats_mask_or_foreground_do_not_join(tmp_path: Path) -> None:
    base = {"clip_fingerprint": "c", "masks_fingerprint": "m", "clip": "a.mp4"}
    with_bars = {**base, "stats_mask_fingerprint": "s1", "stats_mask": "bars.png"}
    check_sidecars_agree([with_bars, dict(with_bars)], ["x", "y"])
    with pytest.raises(InputError, match=r"y was analyzed from another statistics mask \(sky.png\) than x \(bars"):
        check_sidecars_agree([with_bars, {**with_bars, "stats_mask_fingerprint": "s2", "stats_mask": "sky.png"}],
                             ["x", "y"])  # fmt: skip
    with pytest.raises(InputError, match=r"another statistics mask \(none\) than x \(bars.png\)"):
        check_sidecars_agree([with_bars, base], ["x", "y"])
    layered = {**base, "foreground_fingerprint": "f1", "foreground": "fg.%04d.png"}
    with pytest.raises(InputError, match=r"another foreground layer \(fg2.%04d.png\)"):
        check_sidecars_agree([layered, {**layered, "foreground_fingerprint": "f2", "foreground": "fg2.%04d.png"}],
                             ["x", "y"])  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    (work / "analyze.000000-000001.json").write_text(json.dumps({"header": with_bars}))
    check_work_folder(work, with_bars)
    with pytest.raises(InputError, match="holds analyze.000000-000001.json, analyzed from another statistics mask"):
        check_work_folder(work, base)


def test_rendering_a_layered_analysis_needs_the_same_foreground(tmp_path: Path) -> None:
    from vidharm.io import write_image
    from vidharm.pipeline import open_layers

    for folder, name, value in (("fg", "fg", 200), ("other", "fg", 100), ("bg", "bg", 50)):
        (tmp_path / folder).mkdir()
        for n in (1001, 1002):
            rgba = np.full((8, 12, 4), value, np.uint8)
            write_image(tmp_path / folder / f"{name}.{n}.png", rgba if name != "bg" else rgba[..., :3])
    fg, fg2, bg = tmp_path / "fg" / "fg.%04d.png", tmp_path / "other" / "fg.%04d.png", tmp_path / "bg" / "bg.%04d.png"
    track = analyze(open_layers(fg, bg), CONFIG)
    assert track.header["foreground_fingerprint"]
    check_track_source(track, open_layers(fg, bg))
    with pytest.raises(InputError, match="analyzed with another foreground layer"):
        check_track_source(track, open_layers(fg2, bg), name="p.json")
    masks = tmp_path / "masks"
    masks.mkdir()
    for n in (1001, 1002):
        write_image(masks / f"{n}.png", np.full((8, 12), 255, np.uint8))
    flat = dataclasses.replace(track, header={**track.header, "masks_fingerprint": None})
    with pytest.raises(InputError, match="analyzed from layers .*--fg and --bg"):
        check_track_source(flat, open_clip(bg, masks), name="p.json")
