"""The tag index the page cache and the API's answer cache share (common.tagindex): the Redis one and
the one-process fallback behave alike."""

from __future__ import annotations

import uuid

import pytest

from common.tagindex import LocalTagIndex, RedisTagIndex


@pytest.fixture(params=["redis", "local"])
def index(request):
    if request.param == "local":
        return LocalTagIndex()
    return RedisTagIndex(namespace=f"test-tags-{uuid.uuid4().hex}", slack_s=5)


def test_members_are_the_union_of_the_tags_and_pop_empties_only_the_tags_asked(index):
    index.add(["broker:1", "broker-list"], "page-a", 60)
    index.add(["broker:2"], "page-b", 60)
    index.add(["broker-list"], "page-c", 60)
    assert index.members(["broker:1", "broker:2"]) == {"page-a", "page-b"}
    assert index.pop(["broker-list"]) == {"page-a", "page-c"}
    assert index.members(["broker-list"]) == set()
    assert index.members(["broker:1"]) == {"page-a"}  # the other tags keep their members
    assert index.pop([]) == set() and index.members([]) == set()
