"""What the consumer tests and the provider verifications share: where pacts live, the
matchers several contracts use, and how a verification reports Pact's own mismatch output."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pact import Verifier, match
from pact.match.matcher import AbstractMatcher

PACTS = Path(__file__).resolve().parent / "pacts"

ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
ISO_DATE = "%Y-%m-%d"
# Every call between services carries a service token (``services.common.auth``); the
# verifier replaces this example with a real one.
BEARER = r"^Bearer [A-Za-z0-9._~+/=-]+$"
STEP_STATUS = r"^(pending|approved|rejected)$"
DECISION = r"^(approved|rejected)$"
FINAL_STATUS = r"^(pending|in_progress|approved|rejected|withdrawn|cancelled)$"


@dataclass(frozen=True)
class Provider:
    """A provider running as its own process for verification."""

    name: str
    url: str

    @property
    def states_url(self) -> str:
        return f"{self.url}/_pact/provider-states"


def service_token() -> AbstractMatcher[Any]:
    return match.regex("Bearer service-token", regex=BEARER)


def timestamp(example: str = "2026-11-28T09:00:00.000000Z") -> AbstractMatcher[Any]:
    """Any ISO-8601 date-time with a zone; the fraction is optional (a datetime that falls on
    a whole second is written without one)."""
    return match.regex(example, regex=ISO_DATETIME)


def pact_path(consumer: str, provider: str) -> Path:
    return PACTS / f"{consumer}-{provider}.json"


def normalise(path: Path) -> None:
    """Keep a pact byte-for-byte reproducible: the library versions in ``metadata.pactRust``
    change with an upgrade that changes nothing in the contract, so they are not kept."""
    pact = json.loads(path.read_text(encoding="utf-8"))
    pact.get("metadata", {}).pop("pactRust", None)
    text = json.dumps(pact, indent=2, sort_keys=True, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def pacts_naming(provider: str, directory: Path = PACTS) -> list[Path]:
    """Every committed pact whose provider is ``provider``."""
    found = [
        path
        for path in sorted(directory.glob("*.json"))
        if json.loads(path.read_text(encoding="utf-8"))["provider"]["name"] == provider
    ]
    if not found:
        raise AssertionError(f"no pact in {directory} names {provider}")
    return found


def verifier_for(provider: str, *sources: Path) -> Verifier:
    verifier = Verifier(provider, host="127.0.0.1").set_coloured_output(enabled=False)
    for source in sources or pacts_naming(provider):
        verifier.add_source(source)
    return verifier


def run(verifier: Verifier) -> tuple[bool, str]:
    """Verify; returns whether every interaction passed and Pact's report."""
    try:
        verifier.verify()
    except RuntimeError:
        return False, verifier.output(strip_ansi=True)
    return True, verifier.output(strip_ansi=True)


def assert_verified(verifier: Verifier) -> None:
    passed, report = run(verifier)
    assert passed, f"provider verification failed; Pact's report:\n{report}"
