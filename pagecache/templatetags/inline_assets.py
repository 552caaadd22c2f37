"""{% inline_style "css/site.css" %}, {% inline_script "js/after-paint.js" %} and {% data_uri "favicon.svg" %}:
assets written into the page (pagecache/inline.py says why, and how the Content-Security-Policy allows them)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from pagecache import inline

register = template.Library()


@register.simple_tag
def inline_style(path: str) -> SafeString:
    # A stylesheet of this repository, checked for </style and hashed into the policy byte for byte:
    # written as is, never escaped (an escaped byte would no longer match its hash).
    return mark_safe(f"<style>{inline.inline_style_text(path)}</style>")  # noqa: S308


@register.simple_tag
def inline_script(path: str) -> SafeString:
    # Like inline_style: checked for </script, hashed into script-src byte for byte, written as is.
    return mark_safe(f"<script>{inline.inline_script_text(path)}</script>")  # noqa: S308


@register.simple_tag
def data_uri(path: str) -> str:
    return inline.data_uri(path)
