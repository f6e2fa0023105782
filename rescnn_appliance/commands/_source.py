"""The ``--source WORD|PATH`` flag shared by ``run`` and ``bench``.

Example::

    >>> source_overrides("demo")
    {'camera.source': 'demo'}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rescnn_appliance.config import CHOICES

SOURCES = CHOICES["camera.source"]


def source_overrides(source: str | None) -> dict[str, Any]:
    """A source word, or a path (a folder of images or a video file), as dotted settings."""
    if not source:
        return {}
    if source in SOURCES:
        return {"camera.source": source}
    path = Path(source).expanduser()
    return {"camera.source": "folder" if path.is_dir() else "video", "camera.path": str(path)}
