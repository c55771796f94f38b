"""Reading a service's JSON-lines log (`<log_dir>/<service>.log`) as it is written."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path


async def logged(log: Path, *fragments: str, timeout: float = 10.0) -> str:
    """The first line of `log` that holds every fragment, waiting for it to be written."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        for line in text.splitlines():
            if all(fragment in line for fragment in fragments):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no line of {log} holds all of {fragments}")
        await asyncio.sleep(0.1)
