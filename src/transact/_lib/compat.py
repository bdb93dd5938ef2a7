"""Names the oldest supported Python lacks, imported at run time so annotations that use them
resolve (``typing.get_type_hints`` on ``list_workflows``) on every supported version."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Unpack

__all__ = ["Unpack"]
