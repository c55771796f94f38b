"""A private database on the real MongoDB-compatible server, with the names of the commands
its client sends, for tests that count round trips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from tests.support.stack import MONGO_URL, TEST_DB


class Commands(monitoring.CommandListener):
    """The names of the commands the client sent, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class CountedDatabase:
    database: AsyncDatabase[dict[str, Any]]
    commands: Commands = field(default_factory=Commands)


@asynccontextmanager
async def counted_database(suffix: str) -> AsyncIterator[CountedDatabase]:
    """``<TEST_DB>_<suffix>``, dropped before and after."""
    name = f"{TEST_DB}_{suffix}"
    commands = Commands()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        MONGO_URL, tz_aware=True, event_listeners=[commands]
    )
    await mongo.drop_database(name)
    try:
        yield CountedDatabase(mongo[name], commands)
    finally:
        await mongo.drop_database(name)
        await mongo.close()
