"""A workflow row's ``authenticated_roles``: a JSON array of strings, NULL when none were given.

Both the auth context (which writes and reads them) and the status a caller sees read them, so the
codec sits below both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence


def encode_roles(roles: Sequence[str] | None) -> str | None:
    return json.dumps(list(roles)) if roles is not None else None


def decode_roles(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(str(role) for role in json.loads(text))
