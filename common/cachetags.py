"""The cache-tag vocabulary: which pages a change makes stale. One typed helper per tag, no bare strings.

A regenerated page carries the tags of what it shows (pagecache.isr.tag_response); a change
revalidates the pages with its tags (pagecache.services.pages_revalidate).
"""

from __future__ import annotations

from typing import NewType

Tag = NewType("Tag", str)

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
