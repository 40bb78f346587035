"""Open Job Description (OpenJD 2023-09) job templates for a shot: analyze tasks -> smooth -> render tasks -> concat.

The template runs the ``vidharm`` commands, so any OpenJD runner (``openjd run`` on one machine, AWS Deadline
Cloud on a farm) runs exactly what a shell loop would. Every file and folder is a ``PATH`` job parameter and the
commands reference them as ``{{Param.X}}``, so a runner with path-mapping rules hands each worker its own
mount of the same storage. The commands print ``openjd_progress: <percent>`` lines (``--openjd-progress``),
which runners show as task progress. Tasks are idempotent: analyze and smooth rewrite their sidecar, render
rewrites its video segment or skips finished image files, concat rewrites the output, each atomically.

Task frame ranges (``--frames``) are source frame numbers: ``1001-1100``, ``1101-1200`` ... for an image sequence
that starts at 1001, ``0-99`` ... for a video; the sidecars (``analyze.001001-001100.json``) and video segments
(``render.1001-1100.mkv``) are named by them. An image-sequence input is passed as its folder (a ``DIRECTORY``
parameter, so job attachments and path mapping see real paths) joined with the pattern's file name.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vidharm
from vidharm.errors import OutputError, UsageError
from vidharm.farm.chunks import format_frames, plan_chunks
from vidharm.farm.shots import SHOT_OPTIONS, SWITCHES, Shot, is_path_value
from vidharm.pipeline import open_clip, open_layers
from vidharm.pipeline.inputs import is_sequence_source

__all__ = [
    "LAYOUTS",
    "ShotPlan",
    "plan_shot",
    "build_openjd_template",
    "validate_openjd_template",
    "export_openjd",
]

log = logging.getLogger(__name__)

LAYOUTS = ("job-per-shot", "step-per-shot")
SPEC_VERSION = "jobtemplate-2023-09"
# The 2023-09 specification allows 50 job parameters without extensions.
_MAX_JOB_PARAMETERS = 50
_COMMAND_PARAM = "VidharmCommand"
_FRAMES = "{{Task.Param.Frames}}"


@dataclass(frozen=True)
class ShotPlan:
    """A shot with its frame count and its chunks (one analyze and one render task per chunk).

    Attributes:
        shot: the shot.
        num_frames: its clip's frame count.
        chunks: source frame ranges (from ``first_frame``) that tile the clip.
        first_frame: the clip's first source frame number (an image sequence's first file number, 0 for a video).
    """

    shot: Shot
    num_frames: int
    chunks: list[range]
    first_frame: int = 0


def plan_shot(shot: Shot) -> ShotPlan:
    """Open the shot's inputs as the tasks will (checking that every frame has a mask) and split it into chunks.

    The clip (or the layers) is opened with the shot's ``fps``, ``mask_from_alpha``, ``stats_mask`` and
    ``premultiplied`` options, so a mistake in any of them fails here rather than on the farm. Chunks are source
    frame ranges (``1001-1100`` for a sequence that starts at 1001).

    Raises:
        InputError: unreadable clip or layers, missing or misnumbered masks.
        UsageError: a chunk size below 1, ``fps`` for a video.
    """
    opts = shot.options
    fps, stats = opts.get("fps"), opts.get("stats_mask")
    if shot.foreground is not None:
        inp = open_layers(
            shot.foreground,
            shot.clip,
            shot.masks,
            premultiplied=bool(opts.get("premultiplied")),
            stats_mask=stats,
            fps=fps,
        )
    else:
        inp = open_clip(
            shot.clip, shot.masks, fps=fps, mask_from_alpha=bool(opts.get("mask_from_alpha")), stats_mask=stats
        )
    chunks = plan_chunks(inp.num_frames, shot.chunk, inp.first_frame)
    return ShotPlan(shot=shot, num_frames=inp.num_frames, chunks=chunks, first_frame=inp.first_frame)


def _param_name(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def _identifier(text: str) -> str:
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")[:40] or "shot"
    return ident if not ident[0].isdigit() else f"S{ident}"


def _relative_default(path: Path, template_dir: Path) -> str | None:
    # OpenJD clients take a PATH default only relative to the template's folder, and never outside it.
    try:
        rel = os.path.relpath(path, template_dir)
    except ValueError:
        return None
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        return None
    return rel


def _options(shot: Shot, phase: str, param: str) -> list[str]:
    args: list[str] = []
    for key, value in shot.options.items():
        flag, phases, _ = SHOT_OPTIONS[key]
        if phase not in phases:
            continue
        if key == "set":
            for item in value:
                args += [flag, item]
        elif key in SWITCHES:
            args += [flag] if value else []
        elif is_path_value(key, value):
            args += [flag, f"{{{{Param.{param}{_param_name(key)}}}}}"]
        else:
            args += [flag, str(value)]
    return args


def _step(
    name: str, args: list[str], *, frames: list[str] | None = None, after: str | None = None, description: str = ""
) -> dict[str, Any]:
    step: dict[str, Any] = {"name": name}
    if description:
        step["description"] = description
    if after is not None:
        step["dependencies"] = [{"dependsOn": after}]
    if frames is not None:
        step["parameterSpace"] = {
            "taskParameterDefinitions": [{"name": "Frames", "type": "STRING", "range": list(frames)}]
        }
    step["script"] = {
        "actions": {
            "onRun": {
                "command": f"{{{{Param.{_COMMAND_PARAM}}}}}",
                "args": ["--openjd-progress", *args],
                # SIGTERM first: vidharm then removes its temp files before exiting.
                "cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 30},
            }
        }
    }
    return step


def _shot_parameters(plan: ShotPlan, prefix: str, template_dir: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    shot = plan.shot
    label = f" of shot {shot.name}" if prefix else ""
    plate = "the background plate" if shot.foreground is not None else "the input video"
    entries: list[tuple[str, Path, str, str, str]] = [_input_entry("Clip", shot.clip, plate + label)]
    if shot.foreground is not None:
        entries.append(_input_entry("Foreground", shot.foreground, f"the foreground layer{label}"))
    if shot.masks is not None:
        what = "the foreground's alpha" if shot.foreground is not None else "the masks"
        entries.append(("Masks", shot.masks, "DIRECTORY" if shot.masks.is_dir() else "FILE", "IN", what + label))
    entries.append(("WorkDir", shot.work, "DIRECTORY", "INOUT", f"sidecars, parameters and segments{label}"))
    if shot.is_sequence:
        entries.append(("OutputDir", shot.output.parent, "DIRECTORY", "OUT", f"the image sequence's folder{label}"))
    else:
        entries.append(("Output", shot.output, "FILE", "OUT", f"the harmonized video{label}"))
    for key, what in (
        ("config", "the config file"),
        ("weights", "the weights file"),
        ("stats_mask", "the statistics mask"),
        ("ocio", "the OCIO config"),
    ):
        value = shot.options.get(key)
        if value is not None and is_path_value(key, value):
            path = Path(value)
            kind = "DIRECTORY" if path.is_dir() else "FILE"
            entries.append((_param_name(key), path, kind, "IN", what + label))
    definitions, values = [], {}
    for name, path, kind, flow, description in entries:
        definition: dict[str, Any] = {
            "name": prefix + name,
            "type": "PATH",
            "objectType": kind,
            "dataFlow": flow,
            "description": description,
        }
        default = _relative_default(path, template_dir)
        if default is not None:
            definition["default"] = default
        definitions.append(definition)
        values[prefix + name] = str(path)
    return definitions, values


def _input_entry(name: str, path: Path, description: str) -> tuple[str, Path, str, str, str]:
    # An image sequence is its folder (real files for job attachments and path mapping) plus the pattern's name.
    if is_sequence_source(path):
        return (name + "Dir", path.parent, "DIRECTORY", "IN", f"{description} (image-sequence folder)")
    return (name, path, "FILE", "IN", description)


def _input_arg(path: Path, name: str, param: Any) -> str:
    return f"{param(name + 'Dir')}/{path.name}" if is_sequence_source(path) else str(param(name))


def _shot_steps(plan: ShotPlan, prefix: str, step_prefix: str) -> list[dict[str, Any]]:
    shot = plan.shot

    def param(name: str) -> str:
        return f"{{{{Param.{prefix}{name}}}}}"

    clip, work = _input_arg(shot.clip, "Clip", param), param("WorkDir")
    if shot.foreground is not None:
        inputs = ["--fg", _input_arg(shot.foreground, "Foreground", param), "--bg", clip]
        inputs += ["--alpha", param("Masks")] if shot.masks is not None else []
    else:
        inputs = [clip, param("Masks")] if shot.masks is not None else [clip]
    frames = [format_frames(c) for c in plan.chunks]
    sidecars = [f"{work}/analyze.{c.start:06d}-{c.stop - 1:06d}.json" for c in plan.chunks]
    params = f"{work}/params.json"
    steps = [
        _step(
            f"{step_prefix}Analyze",
            ["analyze", *inputs, "--frames", _FRAMES, "-o", work, "-q", *_options(shot, "analyze", prefix)],
            frames=frames,
            description="predict the raw per-frame arguments of a frame range",
        ),
        _step(
            f"{step_prefix}Smooth",
            ["smooth", *sidecars, "-o", params, *_options(shot, "smooth", prefix)],
            after=f"{step_prefix}Analyze",
            description="join the chunks' sidecars and smooth the whole track once",
        ),
    ]
    render = ["render", *inputs, params, "--frames", _FRAMES, "-q", *_options(shot, "render", prefix)]
    if shot.is_sequence:
        steps.append(
            _step(
                f"{step_prefix}Render",
                [*render, "-o", f"{param('OutputDir')}/{shot.output.name}"],
                frames=frames,
                after=f"{step_prefix}Smooth",
                description="render a frame range as image files (finished frames are skipped)",
            )
        )
        return steps
    ext = shot.output.suffix
    steps.append(
        _step(
            f"{step_prefix}Render",
            [*render, "-o", f"{work}/render.{_FRAMES}{ext}"],
            frames=frames,
            after=f"{step_prefix}Smooth",
            description="render a frame range as a video segment",
        )
    )
    segments = [f"{work}/render.{f}{ext}" for f in frames]
    steps.append(
        _step(
            f"{step_prefix}Concat",
            [
                "concat",
                *segments,
                "-o",
                param("Output"),
                *([] if is_sequence_source(shot.clip) else ["--audio-from", clip]),
            ],
            after=f"{step_prefix}Render",
            description="join the segments without re-encoding and add the clip's audio",
        )
    )
    return steps


def build_openjd_template(
    plans: Sequence[ShotPlan], *, name: str, template_dir: Path, command: str = "vidharm"
) -> tuple[dict[str, Any], dict[str, str]]:
    """An OpenJD 2023-09 job template for one shot, or for several (a chain of steps per shot).

    Args:
        plans: the shots with their chunks (:func:`plan_shot`).
        name: the job's name.
        template_dir: where the template will be written; PATH parameters inside it get relative defaults.
        command: the vidharm executable on the workers (the ``VidharmCommand`` parameter's default).

    Returns:
        The template (a dict to dump as YAML or JSON) and the job parameter values (absolute paths), for
        ``openjd run job.yaml -p file://job.params.yaml`` or a Deadline Cloud submission.

    Raises:
        UsageError: no shots, or too many for one job's 50 parameters.

    Example:
        >>> shot = Shot("a", Path("/s/a.mp4"), Path("/s/m"), Path("/s/out.mp4"), Path("/s/w"), chunk=5)
        >>> template, values = build_openjd_template([ShotPlan(shot, 12, plan_chunks(12, 5))], name="a",
        ...                                          template_dir=Path("/s"))
        >>> [s["name"] for s in template["steps"]], values["Clip"]
        (['Analyze', 'Smooth', 'Render', 'Concat'], '/s/a.mp4')
        >>> template["steps"][0]["parameterSpace"]["taskParameterDefinitions"][0]["range"]
        ['0-4', '5-9', '10-11']
    """
    if not plans:
        raise UsageError("no shots to export; give a clip and masks, or a shot list")
    definitions: list[dict[str, Any]] = [
        {
            "name": _COMMAND_PARAM,
            "type": "STRING",
            "default": command,
            "description": "the vidharm executable on the workers (e.g. vidharm or /opt/venv/bin/vidharm)",
        }
    ]
    values: dict[str, str] = {_COMMAND_PARAM: command}
    steps: list[dict[str, Any]] = []
    several = len(plans) > 1
    used: set[str] = set()
    for i, plan in enumerate(plans, start=1):
        ident = _identifier(plan.shot.name)
        if ident in used:
            ident = f"{ident}_{i}"
        used.add(ident)
        prefix = f"{ident}_" if several else ""
        step_prefix = f"{plan.shot.name[:40]} " if several else ""
        defs, vals = _shot_parameters(plan, prefix, template_dir)
        definitions += defs
        values.update(vals)
        steps += _shot_steps(plan, prefix, step_prefix)
    if len(definitions) > _MAX_JOB_PARAMETERS:
        raise UsageError(
            f"{len(plans)} shots need {len(definitions)} job parameters, more than the {_MAX_JOB_PARAMETERS} one "
            "OpenJD job may have; export one job per shot (--layout job-per-shot)"
        )
    total = sum(p.num_frames for p in plans)
    template = {
        "specificationVersion": SPEC_VERSION,
        "name": name,
        "description": f"vidharm {vidharm.__version__}: harmonize {len(plans)} shot(s), {total} frames: "
        "analyze tasks, smooth, render tasks, concat",
        "parameterDefinitions": definitions,
        "steps": steps,
    }
    return template, values


def validate_openjd_template(template: dict[str, Any]) -> bool:
    """Validate a template with the ``openjd-model`` library, when it is installed.

    Returns:
        True when validated, False when ``openjd-model`` is not installed (``pip install vidharm[farm]``).

    Raises:
        UsageError: the template does not validate (a bug in vidharm; the message is the library's).
    Example:
        >>> shot = Shot("a", Path("/s/a.mp4"), Path("/s/m"), Path("/s/out.mp4"), Path("/s/w"))
        >>> plans = [ShotPlan(shot, 3, plan_chunks(3, 2))]
        >>> template, _ = build_openjd_template(plans, name="a", template_dir=Path("/s"))
        >>> validate_openjd_template(template) in (True, False)  # False where openjd-model is not installed
        True
    """
    try:
        from openjd.model import DecodeValidationError, decode_job_template
    except ImportError:
        log.info("openjd-model is not installed; the template was not validated (pip install 'vidharm[farm]')")
        return False
    try:
        decode_job_template(template=template)
    except DecodeValidationError as exc:
        raise UsageError(f"the OpenJD template does not validate: {exc}") from None
    return True


def _write_text(path: Path, text: str) -> None:
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dump(path: Path, template: dict[str, Any], values: dict[str, str]) -> Path:
    import yaml

    params = path.with_name(path.stem + ".params.yaml")
    header = (
        f"# Open Job Description job template written by vidharm {vidharm.__version__}.\n"
        f"# One machine: openjd run {path.name} -p file://{params.name}\n"
        "# Farms: submit it (e.g. deadline bundle submit) with these parameter values; path-mapping rules apply.\n"
    )
    _write_text(path, header + yaml.safe_dump(template, sort_keys=False, width=1000))
    _write_text(params, yaml.safe_dump(values, sort_keys=False, width=1000))
    return params


def export_openjd(
    shots: Sequence[Shot],
    output: str | Path,
    *,
    layout: str = "job-per-shot",
    command: str = "vidharm",
    name: str | None = None,
) -> list[Path]:
    """Write OpenJD job templates (``.yaml``) and their parameter values (``<stem>.params.yaml``).

    Args:
        shots: the shots (:func:`~vidharm.farm.shots.make_shot`, :func:`~vidharm.farm.shots.read_shot_list`).
        output: the template file for one shot or ``step-per-shot``; a folder (created) for ``job-per-shot``
            with several shots, which gets ``<shot name>.yaml`` each.
        layout: ``job-per-shot`` or ``step-per-shot`` (one job, a chain of steps per shot).
        command: the vidharm executable on the workers.
        name: the job name for one template (default ``vidharm <shot>``).

    Returns:
        The template files written.

    Raises:
        UsageError: unknown layout, an output that is not .yaml/.yml, a template that does not validate.
        InputError: a shot's clip or masks cannot be used.
        OutputError: the files cannot be written.
    """
    if layout not in LAYOUTS:
        raise UsageError(f"layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    output = Path(output)
    plans = [plan_shot(s) for s in shots]
    if layout == "step-per-shot" or len(plans) == 1:
        if output.suffix.lower() not in (".yaml", ".yml"):
            raise UsageError(f"{output}: the job template is a .yaml file; e.g. -o job.yaml")
        groups = [(output, plans, name or f"vidharm {plans[0].shot.name if len(plans) == 1 else output.stem}")]
    else:
        if output.suffix:
            raise UsageError(f"{output}: with several shots and one job each, -o is a folder; e.g. -o jobs/")
        output.mkdir(parents=True, exist_ok=True)
        groups = [(output / f"{p.shot.name}.yaml", [p], f"vidharm {p.shot.name}") for p in plans]
    written = []
    for path, group, job_name in groups:
        template, values = build_openjd_template(
            group, name=job_name, template_dir=path.parent.resolve(), command=command
        )
        validate_openjd_template(template)
        _dump(path, template, values)
        written.append(path)
    return written
