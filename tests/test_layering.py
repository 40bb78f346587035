"""The import direction of ../shared/STYLE.md: every module imports only the packages below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vidharm"

# Package (first component below vidharm) -> the vidharm packages it may import.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors"},
    "io": {"errors", "io"},
    "masks": {"io", "errors", "masks"},
    "filters": {"errors", "filters"},
    "temporal": {"errors", "temporal"},
    "metrics": {"errors", "metrics"},
    "models": {"errors", "models"},
    "pipeline": {"io", "masks", "models", "filters", "temporal", "metrics", "config", "errors", "pipeline"},
    "train": {"models", "filters", "metrics", "masks", "temporal", "io", "config", "errors", "train"},
    "farm": {"pipeline", "config", "errors", "farm"},
    "cli": {"pipeline", "farm", "train", "models", "config", "errors"},
}
# Sub-packages of models with their own, narrower rules.
MODEL_FAMILIES: dict[str, set[str]] = {
    "harmonizer": {"filters", "models._registry", "models._checkpoint", "models.harmonizer", "errors"},
    "hdnet": {"models._registry", "models._checkpoint", "models.hdnet", "errors"},
}


def _vidharm_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "vidharm"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "vidharm":
                found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    rel = path.relative_to(PACKAGE)
    top = rel.parts[0].removesuffix(".py")
    if top == "__init__":
        return
    assert top in ALLOWED, f"{rel}: package '{top}' has no entry in the layering table of STYLE.md"
    family = rel.parts[1] if top == "models" and len(rel.parts) > 2 and rel.parts[1] in MODEL_FAMILIES else None
    for lineno, module in _vidharm_imports(path):
        parts = module.split(".")[1:]
        if not parts:  # `import vidharm` for __version__
            continue
        target = parts[0]
        if family is not None:
            dotted = ".".join(parts[:2]) if target == "models" else target
            allowed = MODEL_FAMILIES[family]
            assert dotted in allowed, (
                f"{rel}:{lineno} imports vidharm.{'.'.join(parts)}; {family} may import {sorted(allowed)}"
            )
        else:
            assert target in ALLOWED[top], (
                f"{rel}:{lineno} imports vidharm.{'.'.join(parts)}; {top} may import {sorted(ALLOWED[top])}"
            )
