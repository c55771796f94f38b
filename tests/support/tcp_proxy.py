"""A loopback TCP proxy a test can cut, restore or hold, to take a dependency away from
one service process without stopping the server every other test uses."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, upstream_port: int, listen_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = listen_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def hold(self) -> None:
        """Keep every connection open but forward nothing more, as a server that stopped
        answering would: a call through it hangs instead of failing. What it held back is
        never delivered, so a client killed meanwhile has not written anything."""
        self._flowing.clear()

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones, as a dead server would."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        # Wakes the pipes a hold stopped, onto transports already aborted: they end.
        self._flowing.set()
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()
            self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
