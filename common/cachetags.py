"""The cache-tag vocabulary: which pages a change makes stale. One typed helper per tag, no bare strings.

A regenerated page carries the tags of what it shows (pagecache.isr.tag_response); a change
revalidates the pages with its tags (pagecache.services.pages_revalidate). Other caches of the same
figures (the API's answers) register a listener with :func:`on_revalidate` and hear every such call:
one vocabulary and one trigger for every cache, so an edit or a new score reaches them all at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NewType

logger = logging.getLogger(__name__)

Tag = NewType("Tag", str)
Listener = Callable[[frozenset[str]], None]
_listeners: list[Listener] = []


def on_revalidate(listener: Listener) -> Listener:
    """Call ``listener(tags)`` whenever pages with these tags are revalidated (in the process that does it)."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def revalidated(tags: Iterable[str]) -> None:
    """Tell every listener that these tags changed. A failing listener is logged and does not stop the
    others, nor the pages' own revalidation."""
    changed = frozenset(tags)
    for listener in list(_listeners):
        try:
            listener(changed)
        except Exception:
            logger.exception("cache-tag listener %r failed for %s", listener, sorted(changed))


ALL = Tag("all")  # every page: a regulator, instrument or platform change, a methodology change
BROKER_LIST = Tag("broker-list")  # pages that list brokers: home, directory, compare picker
LIVE_BOARD = Tag("live-board")
METHODOLOGY = Tag("methodology")


def broker(broker_id: int) -> Tag:
    """Pages that show this broker (its profile, compare pages with it)."""
    return Tag(f"broker:{broker_id}")


def broker_changed(broker_id: int) -> list[Tag]:
    """What a change to one broker makes stale: its own pages and every list of brokers."""
    return [broker(broker_id), BROKER_LIST]


EVENTS = Tag("events")  # the archive of event reports


def event(event_id: int) -> Tag:
    """The report page of one release."""
    return Tag(f"event:{event_id}")
