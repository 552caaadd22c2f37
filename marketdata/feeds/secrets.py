"""Credentials of feeds: the database holds only where a secret is (env:NAME or file:/path).

Pure: no Django. Values are read when a feed starts, never logged, never stored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

_ENV = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$")


class SecretMissing(Exception):
    """A referenced secret is not set (or its file cannot be read)."""


def secret_ref_check(name: object, ref: object) -> str:
    """'' if `ref` is a valid reference, else what is wrong (a value in clear is refused)."""
    if not isinstance(name, str) or not name:
        return "Credential names must be non-empty strings."
    if not isinstance(ref, str):
        return f"{name}: the reference must be a string."
    if _ENV.match(ref) or (ref.startswith("file:/") and len(ref) > 6):
        return ""
    return f"{name}: use env:VARIABLE or file:/absolute/path, never the secret itself."


def secret_resolve(ref: str) -> str:
    if _ENV.match(ref):
        value = os.environ.get(ref[4:])
        if value is None:
            raise SecretMissing(f"environment variable {ref[4:]} is not set")
        return value
    if ref.startswith("file:/"):
        try:
            return Path(ref[5:]).read_text().strip()
        except OSError as exc:
            raise SecretMissing(f"cannot read secret file {ref[5:]}: {exc.strerror}") from None
    raise SecretMissing(f"not a secret reference: {ref[:8]}...")


def secrets_resolve(refs: Mapping[str, str]) -> dict[str, str]:
    return {name: secret_resolve(ref) for name, ref in refs.items()}
