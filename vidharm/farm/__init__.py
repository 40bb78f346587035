"""Render farms: frame-range chunks, work-folder checks, shot lists and Open Job Description job templates.

The farm phases are the ``vidharm analyze``, ``smooth``, ``render`` and ``concat`` commands; this package
plans them (chunks per shot), checks that a job's sidecars belong together, and writes job templates that a
real scheduler runs (OpenJD: ``openjd run`` on one machine, AWS Deadline Cloud on a farm).
"""

from __future__ import annotations

from vidharm.farm.chunks import format_frames, plan_chunks
from vidharm.farm.openjd import (
    LAYOUTS,
    ShotPlan,
    build_openjd_template,
    export_openjd,
    plan_shot,
    validate_openjd_template,
)
from vidharm.farm.shots import DEFAULT_CHUNK, SHOT_OPTIONS, Shot, make_shot, read_shot_list
from vidharm.farm.work import check_sidecars_agree, check_track_source, check_work_folder

__all__ = [
    "DEFAULT_CHUNK",
    "LAYOUTS",
    "SHOT_OPTIONS",
    "Shot",
    "ShotPlan",
    "build_openjd_template",
    "check_sidecars_agree",
    "check_track_source",
    "check_work_folder",
    "export_openjd",
    "format_frames",
    "make_shot",
    "plan_chunks",
    "plan_shot",
    "read_shot_list",
    "validate_openjd_template",
]
