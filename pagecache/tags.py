"""Which cached pages carry which tag (common.tagindex, in the pages' namespace)."""

from __future__ import annotations

from common.tagindex import tag_index_new

tag_index = tag_index_new(namespace="pagetag")
