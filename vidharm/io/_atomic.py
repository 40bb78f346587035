"""Write-to-temp-then-rename, so an output path is either complete or absent."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vidharm.errors import OutputError

__all__ = ["atomic_path"]


def temp_path_for(path: Path) -> Path:
    """A hidden, unused temp path beside ``path`` with the same suffix (so format guessing by suffix still works).

    Raises:
        OutputError: the folder of ``path`` does not exist, or ``path`` is a folder.
    """
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: folder {parent} does not exist; create it first (mkdir -p {parent})")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, expected a file path; name a file inside it")
    return parent / f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes the rename durable; some filesystems refuse it, which only costs durability.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(temp: Path, path: Path) -> None:
    """fsync ``temp``, rename it onto ``path`` and fsync the folder.

    Raises:
        OutputError: ``temp`` was never written, or the rename failed.
    """
    if not temp.is_file():
        raise OutputError(
            f"{path}: nothing was written to the temp file {temp.name}; write the output inside the block"
        )
    try:
        _fsync_file(temp)
        os.replace(temp, path)
    except OSError as exc:
        discard(temp)
        raise OutputError(
            f"{path}: could not move the finished temp file into place ({exc}); check permissions and space"
        ) from exc
    _fsync_dir(path.parent)


def discard(temp: Path) -> None:
    """Delete ``temp`` if it exists, ignoring errors (used while another error propagates)."""
    try:
        temp.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it is fsynced and renamed onto ``path``, on any error deleted.

    The temp file is hidden (leading dot) and keeps ``path``'s suffix, so writers that pick a format by suffix
    (OpenCV, PyAV) work on it unchanged. ``os.replace`` makes the switch atomic: readers see the old file or the
    complete new one, never a half-written one.

    Args:
        path: the final output path; its folder must exist.

    Yields:
        The temp path to write to.

    Raises:
        OutputError: the folder is missing, nothing was written to the temp path, or the rename failed.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "result.txt"
        >>> with atomic_path(out) as tmp:
        ...     _ = tmp.write_text("done")
        ...     out.exists()
        False
        >>> out.read_text()
        'done'
    """
    final = Path(path)
    temp = temp_path_for(final)
    try:
        yield temp
    except BaseException:
        discard(temp)
        raise
    commit(temp, final)
