"""Run an iterable in a background thread behind a bounded queue (decode ahead while the consumer computes)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from vidharm.errors import UsageError

__all__ = ["prefetch"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

_POLL_S = 0.1  # how often a blocked side re-checks whether the other side has gone away
_JOIN_S = 10.0  # how long an early-stopped consumer waits for the producer to notice


class _Done:
    """End-of-stream marker, carrying the producer's exception if it failed."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def _produce(iterable: Iterable[T], items: queue.Queue[object], stop: threading.Event) -> None:
    error: BaseException | None = None
    iterator = iter(iterable)
    try:
        for item in iterator:
            while not stop.is_set():
                try:
                    items.put(item, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                break
    except BaseException as exc:  # handed to the consumer, which re-raises it
        error = exc
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            try:
                close()  # lets a generator source run its `with` blocks (close containers) in this thread
            except Exception as exc:
                error = error or exc
    while not stop.is_set():
        try:
            items.put(_Done(error), timeout=_POLL_S)
            return
        except queue.Full:
            continue


def prefetch(iterable: Iterable[T], maxsize: int = 8) -> Iterator[T]:
    """Iterate ``iterable`` in a daemon thread, handing items over through a queue of at most ``maxsize``.

    The producer runs at most ``maxsize`` items ahead. An exception in the producer is re-raised in the
    consumer at the point it would have occurred. When the consumer stops early (``break``, an exception,
    or ``close()`` on this generator) the producer is told to stop, its source is closed (generators run their
    ``finally``/``with`` blocks) and the thread is joined.

    Args:
        iterable: the items to produce, e.g. ``read_frames(path)``.
        maxsize: queue bound, >= 1.

    Yields:
        The items of ``iterable``, in order.

    Raises:
        UsageError: ``maxsize`` < 1.
        Exception: whatever the producer raised.

    Example:
        >>> list(prefetch(range(5), maxsize=2))
        [0, 1, 2, 3, 4]
        >>> def broken():
        ...     yield 1
        ...     raise ValueError("bad frame")
        >>> list(prefetch(broken()))
        Traceback (most recent call last):
        ...
        ValueError: bad frame
    """
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
        raise UsageError(f"maxsize must be an int >= 1, got {maxsize!r}")
    return _consume(iterable, maxsize)


def _consume(iterable: Iterable[T], maxsize: int) -> Iterator[T]:
    items: queue.Queue[object] = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(iterable, items, stop), name="vidharm-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = items.get(timeout=_POLL_S)
            except queue.Empty:
                if not thread.is_alive() and items.empty():
                    raise RuntimeError("prefetch producer thread ended without a result") from None
                continue
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                items.get_nowait()
            except queue.Empty:
                break
        thread.join(timeout=_JOIN_S)
        if thread.is_alive():
            _log.warning("prefetch producer still busy %.0f s after the consumer stopped; leaving it", _JOIN_S)
