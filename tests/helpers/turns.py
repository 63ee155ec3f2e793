"""A loopback TCP relay that counts round trips: how often a client speaks again after
the server has answered it. A client that waits for an answer before it goes on (a
BEGIN, then its statements, then a COMMIT) speaks once per round trip."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlsplit, urlunsplit


class Turns:
    """Round trips over every connection through the relay."""

    def __init__(self) -> None:
        self.count = 0


class _Connection:
    def __init__(self, turns: Turns) -> None:
        self._turns, self._server_spoke_last = turns, True  # the first words are a turn

    def heard(self, from_client: bool) -> None:
        if from_client and self._server_spoke_last:
            self._turns.count += 1
        self._server_spoke_last = not from_client


@asynccontextmanager
async def relayed(url: str) -> AsyncIterator[tuple[str, Turns]]:
    """The URL through a relay to the server `url` names, and its count of turns."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    turns = Turns()

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heard: Callable[[], None]
    ) -> None:
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                heard()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, port)
        connection = _Connection(turns)
        await asyncio.gather(
            pipe(client_r, server_w, lambda: connection.heard(from_client=True)),
            pipe(server_r, client_w, lambda: connection.heard(from_client=False)),
        )

    relay = await asyncio.start_server(serve, "127.0.0.1", 0)
    relay_port = relay.sockets[0].getsockname()[1]
    netloc = parts.netloc.rsplit("@", 1)
    user = f"{netloc[0]}@" if len(netloc) == 2 else ""
    try:
        yield urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{relay_port}")), turns
    finally:
        relay.close()
