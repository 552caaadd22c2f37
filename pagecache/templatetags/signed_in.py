"""{% signed_in_only %}...{% end_signed_in_only %}: markup only a signed-in visitor gets, in a cached page.

A regenerated page is rendered once for everyone, so the block is stored as an HTML comment and
``pagecache.isr.personalise`` opens it for a signed-in visitor. E.g. the profile's live-quotes script:
an anonymous visitor would download and run it for nothing (it shows live quotes to traders only).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from pagecache.isr import SIGNED_IN_END, SIGNED_IN_START

register = template.Library()


class SignedInOnlyNode(template.Node):
    def __init__(self, nodelist: template.NodeList) -> None:
        self.nodelist = nodelist

    def render(self, context: template.Context) -> SafeString:
        inner = self.nodelist.render(context)
        user: Any = getattr(context.get("request"), "user", None)
        if user is not None and user.is_authenticated:
            return mark_safe(inner)  # noqa: S308 (rendered by the template engine, escaped there)
        if "-->" in inner or SIGNED_IN_END in inner:
            raise template.TemplateSyntaxError("signed_in_only content may not contain -->")
        return mark_safe(SIGNED_IN_START + inner + SIGNED_IN_END)  # noqa: S308 (as above)


@register.tag
def signed_in_only(parser: template.base.Parser, token: template.base.Token) -> SignedInOnlyNode:
    nodelist = parser.parse(("end_signed_in_only",))
    parser.delete_first_token()
    return SignedInOnlyNode(nodelist)
