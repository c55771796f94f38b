"""Runs the shell walkthroughs the README prints, command by command, as a reader would.

A walkthrough is the ```bash blocks under one README heading. Each command runs in one
bash process (so `ADMIN=$(...)` carries over), and a comment `# -> <json>` under a command
is what the README claims it prints: checked, with `...` as the last member of an object
or list meaning "and more". A claimed read (a GET) is repeated until it holds, as a reader
would look again a moment later; anything else must hold the first time.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)
_CLAIM = re.compile(r"#\s*->\s*(.+)$")


@dataclass
class Command:
    text: str
    claim: str | None = None

    @property
    def is_read(self) -> bool:
        return "curl" in self.text and "-XPOST" not in self.text and "-XPUT" not in self.text


def section(readme: str, heading: str) -> str:
    """The text under `## heading` up to the next heading of the same level."""
    start = readme.index(f"## {heading}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else len(readme)]


def moved(text: str, ports: dict[int, str]) -> str:
    """`text` with each local service address (`localhost:8001`, `127.0.0.1:8001`) whose
    port is in `ports` replaced by the address given there."""
    for port, address in ports.items():
        text = re.sub(rf"(localhost|127\.0\.0\.1):{port}\b", address, text)
    return text


def bash_blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def _open_quote(text: str) -> bool:
    """Whether `text` ends inside a quoted string, as bash reads it (escapes, both kinds
    of quotes, and comments outside quotes, whose apostrophes do not count)."""
    quote = ""
    escaped = False
    comment = False
    previous = "\n"
    for char in text:
        if comment:
            comment = char != "\n"
        elif escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and previous.isspace():
            comment = True
        previous = char
    return bool(quote)


def _complete(lines: list[str]) -> bool:
    joined = "\n".join(lines)
    if joined.rstrip().endswith("\\") or _open_quote(joined):
        return False
    opened = len(re.findall(r"^\s*(for|while)\b", joined, re.MULTILINE))
    closed = len(re.findall(r"^\s*done\b", joined, re.MULTILINE))
    return opened == closed


def commands(block: str) -> list[Command]:
    """Split a block into whole commands (continuations, quoted newlines and loops kept
    together), attaching each `# -> ...` comment to the command before it."""
    found: list[Command] = []
    pending: list[str] = []
    for line in block.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            claim = _CLAIM.match(stripped)
            if claim and found:
                found[-1].claim = claim.group(1).strip()
            continue
        pending.append(line)
        if _complete(pending):
            text = "\n".join(pending)
            # A trailing comment on the command's last line is the reader's, not bash's.
            claim = _CLAIM.search(pending[-1])
            found.append(Command(text, claim.group(1).strip() if claim else None))
            pending = []
    assert not pending, f"unfinished command in README block: {pending}"
    return found


MORE = "..."


def _parse_claim(claim: str) -> Any:
    """JSON in which `...` may close an object (`{"a": 1, ...}`: at least a=1) or a list
    (`[{...}, ...]`: at least those first elements)."""
    text = re.sub(r",\s*\.\.\.\s*}", ', "...": true}', claim)
    text = re.sub(r",\s*\.\.\.\s*]", ', "..."]', text)
    return json.loads(text)


def matches(claim: Any, actual: Any) -> bool:
    if isinstance(claim, dict):
        keys = [key for key in claim if key != MORE]
        return (
            isinstance(actual, dict)
            and all(key in actual and matches(claim[key], actual[key]) for key in keys)
            and (MORE in claim or set(keys) == set(actual))
        )
    if isinstance(claim, list):
        more = bool(claim) and claim[-1] == MORE
        items = claim[:-1] if more else claim
        return (
            isinstance(actual, list)
            and (len(actual) >= len(items) if more else len(actual) == len(items))
            and all(matches(c, a) for c, a in zip(items, actual, strict=False))
        )
    return bool(claim == actual)


def parse_output(output: str) -> Any:
    try:
        return json.loads(output)
    except ValueError:
        return output.strip()


class Shell:
    """One bash process fed a command at a time; each answer ends at a unique marker."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self._marker = f"@@walkthrough-{uuid.uuid4().hex}@@"
        self._bash = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, text: str) -> tuple[int, str]:
        assert self._bash.stdin is not None
        assert self._bash.stdout is not None
        self._bash.stdin.write(f"{text}\nprintf '\\n{self._marker} %s\\n' $?\n")
        self._bash.stdin.flush()
        lines: list[str] = []
        for line in self._bash.stdout:
            if line.startswith(self._marker):
                return int(line.split()[-1]), "".join(lines).rstrip("\n")
            lines.append(line)
        raise RuntimeError(f"bash ended while running: {text}\n{''.join(lines)}")

    def close(self) -> None:
        if self._bash.stdin is not None:
            self._bash.stdin.close()
        self._bash.wait(timeout=10)


def run_walkthrough(
    shell: Shell, block: str, *, settle_seconds: float = 30
) -> list[tuple[Command, str]]:
    """Run every command of `block`; fail on a non-zero exit or a claim that never holds."""
    ran = []
    for command in commands(block):
        deadline = time.monotonic() + settle_seconds
        while True:
            status, output = shell.run(command.text)
            assert status == 0, f"`{command.text}` exited {status}:\n{output}"
            if command.claim is None:
                break
            if matches(_parse_claim(command.claim), parse_output(output)):
                break
            if not command.is_read or time.monotonic() > deadline:
                raise AssertionError(
                    f"`{command.text}`\nprinted {output}\nbut the README says {command.claim}"
                )
            time.sleep(0.2)
        ran.append((command, output))
    return ran
