"""White-box editing: keyframe CSVs, locks, per-range smoothing, mix, sidecar -> render round trip, stills."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from numbered_shot import analyze_numbered_shot, write_numbered_shot

from vidharm.errors import InputError, UsageError
from vidharm.filters import FILTER_NAMES, measure_filter_stats
from vidharm.io import read_frames, read_image, write_image
from vidharm.io._synth import write_test_clip
from vidharm.pipeline import (
    FrameParams,
    ParamsTrack,
    ProcessConfig,
    harmonize_image,
    open_clip,
    process_video,
    read_params,
    render_frame,
    render_video,
    smooth,
    write_params,
)
from vidharm.pipeline.edit import (
    apply_keyframes,
    lock_args,
    neutral_track,
    parse_arg_values,
    parse_locks,
    read_keyframes,
)

LOSSLESS = ProcessConfig(codec="ffv1", device="cpu")


def _clip(folder: Path, num_frames: int = 6, width: int = 64, height: int = 48) -> tuple[Path, Path]:
    clip = write_test_clip(folder / "clip.mp4", num_frames=num_frames, width=width, height=height)
    masks = folder / "masks"
    masks.mkdir()
    for i in range(num_frames):
        mask = np.zeros((height, width), np.uint8)
        mask[height // 4 : 3 * height // 4, 4 + i : 4 + i + width // 3] = 255
        cv2.imwrite(str(masks / f"{i:05d}.png"), cv2.GaussianBlur(mask, (5, 5), 1.0))
    return clip, masks


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One lossless process_video run with its sidecar, shared by the round-trip tests."""
    folder = tmp_path_factory.mktemp("processed")
    clip, masks = _clip(folder)
    out, sidecar = folder / "processed.mkv", folder / "params.json"
    process_video(clip, masks, out, LOSSLESS, params_out=sidecar)
    return {"clip": clip, "masks": masks, "out": out, "params": sidecar}


def _frames(path: Path) -> list[np.ndarray]:
    return [f.image for f in read_frames(path)]


def _track(n: int = 10, *, smoothed: bool = True) -> ParamsTrack:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        raw = [round(float(v), 4) for v in rng.uniform(-0.3, 0.3, 6)]
        stats = [round(float(v), 6) for v in rng.uniform(0.3, 0.6, 4)]
        rows.append(FrameParams(i, i * 512, raw, stats, signature=[1.0, 0.0, 0.0]))
    track = ParamsTrack({"fps": "25/1", "time_base": "1/12800", "num_frames": n, "width": 8, "height": 6}, rows)
    return smooth(track, mode="ema", half_life_s=0.2) if smoothed else track


def _applied(track: ParamsTrack) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([r.applied()[0] for r in track.frames]),
        np.array([r.applied()[1] for r in track.frames]),
    )


# --- the keyframe CSV ---------------------------------------------------------------------------------------


def test_read_keyframes_per_column_keys_and_smoothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_text(
        "\ufeff# a comment line\nFrame, Brightness ,contrast,half_life_s,smoothing\n"
        "0,0.1,,,\n\n12,,-0.2,,\n24,0.3,,1.5,zero_lag\n30,,,0,\n"
    )
    keys = read_keyframes(path)
    assert keys.args == {"brightness": ((0, 0.1), (24, 0.3)), "contrast": ((12, -0.2),)}
    assert keys.smoothing == ((24, "zero_lag", 1.5), (30, None, 0.0))
    assert keys.frames == [0, 12, 24, 30]
    np.testing.assert_allclose(
        keys.curve("brightness", np.array([-3, 0, 6, 12, 24, 99])), [0.1, 0.1, 0.15, 0.2, 0.3, 0.3]
    )
    np.testing.assert_allclose(keys.curve("contrast", np.array([0, 12, 50])), [-0.2, -0.2, -0.2])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frame,brightnes\n0,0.1\n", "unknown column 'brightnes'; did you mean 'brightness'"),
        ("frame,satur\n0,0.1\n", "did you mean 'saturation'"),
        ("brightness,frame\n0.1,0\n", "first column must be 'frame'"),
        ("frame,contrast,contrast\n0,1,1\n", "appears twice"),
        ("frame;brightness\n0;0.1\n", "not comma-separated"),
        ("frame,brightness\n0,abc\n", "line 2, column brightness: 'abc' is not a number"),
        ("frame,brightness\n0,0.1\n5,nan\n", "line 3, column brightness: 'nan' is not finite"),
        ("frame,brightness\n0,inf\n", "not finite"),
        ("frame,brightness\n10,0.1\n5,0.2\n", "line 3: frame 5 comes after frame 10; sort the rows"),
        ("frame,brightness\n5,0.1\n5,0.2\n", "frame 5 appears twice \\(also line 2\\)"),
        ("frame,brightness\n-1,0.1\n", "not a frame number"),
        ("frame,brightness\n2.5,0.1\n", "not a frame number"),
        ("frame,brightness\nten,0.1\n", "frame 'ten' is not a number"),
        ("frame,smoothing\n0,emma\n", "smoothing 'emma' is not one of .*did you mean 'ema'"),
        ("frame,half_life_s\n0,-1\n", "half_life_s is -1"),
        ("frame,brightness\n0,0.1,7\n", "3 cells but the header names 2 columns"),
        ("", "empty"),
        ("frame,brightness\n0,\n", "no keyframe and no smoothing"),
    ],
)
def test_bad_keyframe_csv_is_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_keyframes(text=text)


def test_missing_keyframe_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="keyframe file not found"):
        read_keyframes(tmp_path / "nope.csv")


def test_keyframes_outside_the_clip_are_refused() -> None:
    keys = read_keyframes(text="frame,brightness\n0,0.1\n10,0.2\n")
    with pytest.raises(InputError, match="line 3: frame 10 is outside the clip \\(frames 0-9\\)"):
        apply_keyframes(_track(10), keys)


# --- merging over a base: only what was edited changes -------------------------------------------------------


def test_keyframes_replace_only_their_arguments() -> None:
    base = _track(10)
    keys = read_keyframes(text="frame,saturation,shadow\n2,0.2,\n6,0.6,-0.1\n")
    edited = apply_keyframes(base, keys)
    old_args, old_stats = _applied(base)
    new_args, new_stats = _applied(edited)
    np.testing.assert_allclose(new_args[:, 3], [0.2, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6, 0.6, 0.6], atol=1e-12)
    np.testing.assert_array_equal(new_args[:, 5], -0.1)
    untouched = [0, 1, 2, 4]
    np.testing.assert_array_equal(new_args[:, untouched], old_args[:, untouched])
    # saturation and shadow come after the contrast pivot: the statistics are not touched at all
    np.testing.assert_array_equal(new_stats, old_stats)
    assert [r.raw for r in edited.frames] == [r.raw for r in base.frames]  # the model's prediction is kept
    assert edited.header["edits"][-1]["args"]["saturation"] == [[2, 0.2], [6, 0.6]]


def test_brightness_edit_moves_the_pivot_as_a_new_measurement_would() -> None:
    # A frame whose values never clip under these gains: the rescaled pivot must equal a fresh measurement.
    image = torch.linspace(0.05, 0.45, 3 * 20 * 20).reshape(1, 3, 20, 20)
    old = torch.tensor([[0.1, 0.2, 0.3, 0.0, 0.0, 0.0]])
    new = torch.tensor([[0.1, -0.3, 0.3, 0.0, 0.0, 0.0]])
    stats = measure_filter_stats(image, old)[0].tolist()
    track = ParamsTrack({"fps": "25/1"}, [FrameParams(0, None, old[0].tolist(), stats)])
    edited = lock_args(track, {"brightness": -0.3})
    want = measure_filter_stats(image, new)[0].tolist()
    got = edited.frames[0].applied()[1]
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert got[:3] == stats[:3]  # the channel means do not depend on the arguments
    assert abs(got[3] - stats[3]) > 0.05


def test_edit_changes_only_the_foreground_pixels_it_should(processed: dict[str, Path], tmp_path: Path) -> None:
    base = read_params(processed["params"])
    edited = apply_keyframes(base, read_keyframes(text="frame,saturation\n0,-0.8\n"))
    out = tmp_path / "edited.mkv"
    render_video(open_clip(processed["clip"], processed["masks"]), edited, out, LOSSLESS)
    before, after = _frames(processed["out"]), _frames(out)
    source = _frames(processed["clip"])
    for i, (a, b, src) in enumerate(zip(before, after, source, strict=True)):
        mask = cv2.imread(str(processed["masks"] / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(b[mask == 0], src[mask == 0])  # background untouched
        assert np.abs(a[mask == 255].astype(int) - b[mask == 255]).mean() > 5  # desaturated foreground
        grey = b[mask == 255].astype(int)
        spread_after = (grey.max(axis=1) - grey.min(axis=1)).mean()
        spread_before = (a[mask == 255].astype(int).max(axis=1) - a[mask == 255].astype(int).min(axis=1)).mean()
        assert spread_after < 0.5 * spread_before


def test_lock_and_parse_locks() -> None:
    base = _track(5)
    locked = lock_args(base, parse_locks("contrast,highlight=0.25"))
    args, _ = _applied(locked)
    np.testing.assert_array_equal(args[:, 2], 0.0)
    np.testing.assert_array_equal(args[:, 4], 0.25)
    np.testing.assert_array_equal(args[:, [0, 1, 3, 5]], _applied(base)[0][:, [0, 1, 3, 5]])
    assert locked.header["edits"][-1] == {"lock": {"contrast": 0.0, "highlight": 0.25}}
    with pytest.raises(UsageError, match="did you mean 'brightness'"):
        parse_locks("brightnes")
    with pytest.raises(UsageError, match="given twice"):
        parse_locks("contrast,contrast=1")
    with pytest.raises(UsageError, match="not a number"):
        parse_locks("contrast=x")
    with pytest.raises(UsageError, match="finite"):
        lock_args(base, {"contrast": float("nan")})
    with pytest.raises(UsageError, match="unknown argument 'constrast'"):
        lock_args(base, {"constrast": 0.0})


def test_parse_arg_values() -> None:
    assert parse_arg_values("0.1, -0.2,0,0,0,0.05") == [0.1, -0.2, 0.0, 0.0, 0.0, 0.05]
    assert parse_arg_values("shadow=0.3,temperature=-0.1") == [-0.1, 0.0, 0.0, 0.0, 0.0, 0.3]
    for bad, message in [("0.1,0.2", "expected 6"), ("a,0,0,0,0,0", "not a number"), ("shade=1", "did you mean")]:
        with pytest.raises(UsageError, match=message):
            parse_arg_values(bad)


# --- per-range smoothing --------------------------------------------------------------------------------------


def test_smoothing_range_off_restores_raw_from_its_frame_and_keeps_earlier_rows() -> None:
    base = _track(12)
    edited = apply_keyframes(base, read_keyframes(text="frame,smoothing\n6,off\n"))
    old_args, old_stats = _applied(base)
    new_args, new_stats = _applied(edited)
    np.testing.assert_array_equal(new_args[:6], old_args[:6])
    np.testing.assert_array_equal(new_stats[:6], old_stats[:6])
    np.testing.assert_allclose(new_args[6:], base.raw_array()[6:], atol=1e-12)
    np.testing.assert_allclose(new_stats[6:], base.stats_array()[6:], atol=1e-12)


def test_smoothing_half_life_change_continues_the_ema() -> None:
    base = _track(12, smoothed=False)
    edited = apply_keyframes(base, read_keyframes(text="frame,half_life_s\n0,0.2\n6,1.0\n"))
    raw, times = base.raw_array(), base.times_s()
    state = raw[0].copy()
    want = [state.copy()]
    for t in range(1, 12):
        half_life = 0.2 if t < 6 else 1.0
        alpha = 1 - 2 ** (-(times[t] - times[t - 1]) / half_life)
        state = state + alpha * (raw[t] - state)
        want.append(state.copy())
    np.testing.assert_allclose(_applied(edited)[0], np.array(want), atol=1e-6)
    # a setting equal to the base's own reproduces the base's smoothing
    same = apply_keyframes(_track(12), read_keyframes(text="frame,half_life_s,smoothing\n0,0.2,ema\n"))
    np.testing.assert_allclose(_applied(same)[0], _applied(_track(12))[0], atol=2e-6)


def test_keyframed_arguments_are_not_smoothed_again() -> None:
    edited = apply_keyframes(_track(8), read_keyframes(text="frame,contrast,half_life_s\n0,0.0,\n7,0.7,5\n"))
    np.testing.assert_allclose(_applied(edited)[0][:, 2], np.arange(8) * 0.1, atol=1e-12)


# --- render, mix, round trip ------------------------------------------------------------------------------------


def test_sidecar_render_equals_process_bit_for_bit(processed: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "rendered.mkv"
    render_video(open_clip(processed["clip"], processed["masks"]), read_params(processed["params"]), out, LOSSLESS)
    a, b = _frames(processed["out"]), _frames(out)
    assert len(a) == len(b) == 6
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_mix_zero_renders_the_input_and_mix_half_is_halfway(processed: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mix0.mkv"
    render_video(
        open_clip(processed["clip"], processed["masks"]), read_params(processed["params"]), out, LOSSLESS, mix=0.0
    )
    for x, y in zip(_frames(processed["clip"]), _frames(out), strict=True):
        np.testing.assert_array_equal(x, y)
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    mask = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    args = [0.2, 0.3, 0.1, -0.4, 0.1, 0.1]
    full = render_frame(image, mask, args, [0.5] * 4).astype(np.float64)
    half = render_frame(image, mask, args, [0.5] * 4, mix=0.5).astype(np.float64)
    assert np.abs(half - (image + 0.5 * (full - image))).max() <= 1.0
    with pytest.raises(UsageError, match="between 0 and 1"):
        render_frame(image, mask, args, mix=1.5)


def test_neutral_track_has_the_clips_statistics(processed: dict[str, Path]) -> None:
    inp = open_clip(processed["clip"], processed["masks"])
    neutral = neutral_track(inp)
    analyzed = read_params(processed["params"])
    assert neutral.header["model"] == "neutral" and neutral.header["width"] == 64
    np.testing.assert_array_equal(neutral.raw_array(), 0.0)
    np.testing.assert_allclose(neutral.stats_array()[:, :3], analyzed.stats_array()[:, :3], atol=1e-6)
    assert [r.pts for r in neutral.frames] == [r.pts for r in analyzed.frames]
    keyed = apply_keyframes(neutral, read_keyframes(text="frame,brightness\n0,0.2\n"))
    np.testing.assert_array_equal(_applied(keyed)[0][:, 1], 0.2)


def test_edited_sidecar_survives_write_and_read(tmp_path: Path) -> None:
    edited = lock_args(apply_keyframes(_track(6), read_keyframes(text="frame,temperature\n0,0.1\n")), {"shadow": 0})
    write_params(edited, tmp_path / "e.json")
    back = read_params(tmp_path / "e.json")
    assert [r.applied() for r in back.frames] == [r.applied() for r in edited.frames]
    assert [list(e) for e in back.header["edits"]] == [["keyframes", "args", "smoothing"], ["lock"]]


# --- stills ---------------------------------------------------------------------------------------------------


def test_image_with_given_args_equals_predicted_harmonization(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    image[:, 16:] //= 3  # a darker background for the stats model to pull towards
    mask = np.zeros((24, 32), np.uint8)
    mask[6:18, 2:14] = 255
    write_image(tmp_path / "c.png", image)
    write_image(tmp_path / "m.png", mask)
    config = ProcessConfig(device="cpu")
    predicted = harmonize_image(tmp_path / "c.png", tmp_path / "m.png", tmp_path / "h.png", config)
    assert harmonize_image(tmp_path / "c.png", tmp_path / "m.png", None, config) == predicted
    assert not (tmp_path / "None").exists()
    c, m = tmp_path / "c.png", tmp_path / "m.png"
    harmonize_image(c, m, tmp_path / "r.png", config, args=list(predicted.values()))
    np.testing.assert_array_equal(read_image(tmp_path / "r.png"), read_image(tmp_path / "h.png"))
    args = parse_arg_values("brightness=0.5")
    harmonize_image(c, m, tmp_path / "b.png", config, args=args, mix=0.0)
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), image)
    harmonize_image(c, m, tmp_path / "b2.png", config, args=args)
    assert not np.array_equal(read_image(tmp_path / "b2.png"), image)
    with pytest.raises(UsageError, match="6 finite numbers"):
        harmonize_image(c, m, tmp_path / "x.png", config, args=[0.1] * 5)
    assert list(predicted) == list(FILTER_NAMES)


def test_rows_keep_stored_values_they_do_not_edit() -> None:
    # A hand-written sidecar value with more decimals than the editor stores must come back unchanged.
    rows = [FrameParams(0, None, [0.1234567891] * 6, [0.5] * 4)]
    track = ParamsTrack({"fps": "25/1"}, rows)
    edited = lock_args(track, {"saturation": 0.2})
    assert edited.frames[0].smoothed == [0.1234567891] * 3 + [0.2] + [0.1234567891] * 2
    assert dataclasses.replace(edited.frames[0], smoothed=None).raw == rows[0].raw


def test_colour_transfer_tracks_are_edited_by_coefficient_name() -> None:
    rows = [FrameParams(i, None, [0.1 * i] * 12, []) for i in range(4)]
    track = ParamsTrack({"fps": "25/1", "method": {"kind": "affine"}, "num_frames": 4}, rows)
    names = track.method.arg_names
    keys = read_keyframes(text="frame,m3\n0,0.5\n3,0.8\n", names=names)
    edited = lock_args(apply_keyframes(track, keys), parse_locks("m0=1", names))
    args = np.array([r.applied()[0] for r in edited.frames])
    np.testing.assert_allclose(args[:, 3], [0.5, 0.6, 0.7, 0.8], atol=1e-12)
    np.testing.assert_array_equal(args[:, 0], 1.0)
    np.testing.assert_allclose(args[:, 5], [0.0, 0.1, 0.2, 0.3], atol=1e-12)
    assert all(r.applied()[1] == [] for r in edited.frames)
    with pytest.raises(InputError, match="unknown column 'brightness'"):
        read_keyframes(text="frame,brightness\n0,0.1\n", names=names)
    with pytest.raises(InputError, match="not a value of this track's 'affine' rows"):
        apply_keyframes(track, read_keyframes(text="frame,brightness\n0,0.1\n"))


def test_keyframe_csv_frames_are_the_source_numbers_of_a_sequence(tmp_path: Path) -> None:
    """A CSV for a sequence numbered from 1001 says 1001..: its row 1003 edits file 1003 (position 2)."""
    clip, mattes = write_numbered_shot(tmp_path)
    base = analyze_numbered_shot(clip, mattes)
    assert base.first_frame == 1001
    keys = read_keyframes(text="frame,brightness,half_life_s\n1001,0.0,\n1003,0.4,\n1005,,0\n")
    edited = apply_keyframes(base, keys)
    np.testing.assert_allclose([r.smoothed[1] for r in edited.frames], [0.0, 0.2, 0.4, 0.4, 0.4, 0.4])
    # half_life_s 0 from 1005 on: the unkeyed arguments are raw from position 4, untouched before it
    assert [r.smoothed[0] for r in edited.frames[4:]] == [r.raw[0] for r in base.frames[4:]]
    assert [r.smoothed[0] for r in edited.frames[:4]] == [r.applied()[0][0] for r in base.frames[:4]]
    # inside the sidecar the keyframes are recorded as positions, like its rows
    assert edited.header["edits"][-1]["args"] == {"brightness": [[0, 0.0], [2, 0.4]]}
    assert edited.header["edits"][-1]["smoothing"] == [[4, None, 0.0]]
    with pytest.raises(InputError, match=r"line 2: frame 2 is outside the clip \(frames 1001-1006\)"):
        apply_keyframes(base, read_keyframes(text="frame,brightness\n2,0.4\n"))
