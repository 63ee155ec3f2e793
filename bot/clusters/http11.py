"""HTTP/1.1 requests on asyncio streams, over a keep-alive pool of connections to one server.

What the API server calls of a certificate or token kubeconfig need, and no more: one
request at a time per connection, Content-Length and chunked answers (gzip or deflate
when the server compresses them), TLS with the kubeconfig's own SSLContext. aiohttp
does the same at a cost a short command feels: its import alone builds two default TLS
contexts from the system's CA store (80-95 ms of CPU), and each request costs ~0.3 ms.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass

_LIMIT = 100  # connections open at once, as the Kubernetes client's pool allows
_STREAM_LIMIT = 2**21  # the longest header block or chunk-size line read
_NO_BODY = frozenset({204, 304})
# A reused connection that fails with one of these before any byte of the answer was
# closed by the server while idle (or is closed now): the request is sent again.
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class RequestFailed(Exception):
    """The server gave no (usable) answer; the message says why, safe to show."""


@dataclass(frozen=True)
class Server:
    """Where the requests go: host and port, and TLS (None for plain HTTP)."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None
    server_name: str | None = None  # the name the certificate must carry, and SNI

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class _Stale(Exception):
    """A reused connection failed before any byte of the answer."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.reused = False

    def usable(self) -> bool:
        """False when the server has closed it (or sent what nobody asked for) while idle."""
        return not (self.writer.is_closing() or self.reader.at_eof() or _buffered(self.reader))

    def close(self) -> None:
        # Aborted, as aiohttp's connector closes TLS connections: without TLS's goodbye,
        # whose wait a server that stopped answering would stretch to 30 s.
        self.writer.transport.abort()


def _buffered(reader: asyncio.StreamReader) -> bool:
    return bool(getattr(reader, "_buffer", b""))


class ConnectionPool:
    """Requests to one server; idle connections are kept open and reused, newest first."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._idle: list[_Connection] = []
        self._closing: set[asyncio.Future[None]] = set()  # closed, not yet let go by asyncio
        self._slots = asyncio.Semaphore(_LIMIT)

    async def request(self, head: bytes, body: bytes, timeout: float) -> tuple[int, bytes]:
        """Sends the request `head` (its lines and the blank one) and `body`; the answer's
        status and body (decompressed). Raises RequestFailed, OSError or TimeoutError."""
        try:
            async with asyncio.timeout(timeout), self._slots:
                return await self._exchange(head + body)
        except TimeoutError:
            raise TimeoutError(f"no answer from {self.server} within {timeout:g} s") from None

    async def open_ahead(self, count: int) -> None:
        """Opens connections, all at once, until `count` are idle: their handshakes done
        before the requests that need them. One that fails is left for a request to
        open again, and to report."""
        opening = (self._connect() for _ in range(count - len(self._idle)))
        opened = await asyncio.gather(*opening, return_exceptions=True)
        self._idle += [c for c in opened if isinstance(c, _Connection)]

    async def close(self) -> None:
        """Closes the idle connections, and waits until every closed one is."""
        idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)
        await asyncio.gather(*self._closing, return_exceptions=True)

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        closed = asyncio.ensure_future(connection.writer.wait_closed())
        self._closing.add(closed)
        closed.add_done_callback(_forgotten(self._closing))

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        connection = self._reusable() or await self._connect()
        try:
            try:
                status, body, keep = await _answer(connection, request)
            except _Stale:
                # Sent on a connection the server had closed: once more on a new one.
                self._discard(connection)
                connection = await self._connect()
                status, body, keep = await _answer(connection, request)
        except BaseException:
            self._discard(connection)
            raise
        if keep:
            connection.reused = True
            self._idle.append(connection)
        else:
            self._discard(connection)
        return status, body

    def _reusable(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable():
                return connection
            self._discard(connection)
        return None

    async def _connect(self) -> _Connection:
        server = self.server
        try:
            reader, writer = await asyncio.open_connection(
                server.host,
                server.port,
                ssl=server.tls,
                server_hostname=server.server_name if server.tls else None,
                limit=_STREAM_LIMIT,
            )
        except ssl.SSLCertVerificationError as exc:
            raise RequestFailed(
                f"cannot connect to {server}: its TLS certificate is not trusted "
                f"({exc.verify_message}); check the kubeconfig's certificate-authority "
                "and tls-server-name"
            ) from exc
        except ssl.SSLError as exc:
            raise RequestFailed(f"cannot connect to {server}: TLS failed: {exc}") from exc
        except OSError as exc:
            raise RequestFailed(f"cannot connect to {server}: {exc}") from exc
        return _Connection(reader, writer)


def _forgotten(closing: set[asyncio.Future[None]]) -> Callable[[asyncio.Future[None]], None]:
    """Drops a closed connection's future from `closing`; its error, if any, is no news."""

    def forget(closed: asyncio.Future[None]) -> None:
        closing.discard(closed)
        if not closed.cancelled():
            closed.exception()

    return forget


async def _answer(connection: _Connection, request: bytes) -> tuple[int, bytes, bool]:
    """Sends the request; the answer's status, body, and whether the connection is reusable.

    Raises _Stale when a reused connection fails before any byte of the answer.
    """
    reader = connection.reader
    try:
        connection.writer.write(request)
        await connection.writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if connection.reused and not exc.partial:
            raise _Stale from exc
        raise RequestFailed("the server closed the connection without an answer") from exc
    except _STALE as exc:
        if connection.reused:
            raise _Stale from exc
        raise RequestFailed(f"the server closed the connection without an answer: {exc}") from exc
    except asyncio.LimitOverrunError as exc:
        raise RequestFailed("the server's answer has too long a header") from exc
    status, headers, version = _head(head)
    while 100 <= status < 200:  # informational: the real answer follows
        status, headers, version = _head(await _read_head(reader))
    body, complete = await _body(reader, status, headers)
    close = "close" in _tokens(headers.get("connection", ""))
    return status, _decoded(body, headers), complete and version == "HTTP/1.1" and not close


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise RequestFailed("the server closed the connection in its answer") from exc


def _head(data: bytes) -> tuple[int, dict[str, str], str]:
    """The status, headers (names lowercase, repeats joined by ", ") and HTTP version."""
    lines = data.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise RequestFailed(f"the server's answer is not HTTP/1.1: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise RequestFailed(f"the server's answer has a malformed header: {line[:80]!r}")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(code), headers, version


def _tokens(value: str) -> list[str]:
    return [token.strip().lower() for token in value.split(",")]


async def _body(
    reader: asyncio.StreamReader, status: int, headers: dict[str, str]
) -> tuple[bytes, bool]:
    """The body as sent, and whether it ended where the connection may go on."""
    if status in _NO_BODY:
        return b"", True
    try:
        if _tokens(headers.get("transfer-encoding", ""))[-1] == "chunked":
            return await _chunked(reader), True
        if "content-length" in headers:
            return await reader.readexactly(_length(headers["content-length"])), True
    except asyncio.IncompleteReadError as exc:
        raise RequestFailed("the server closed the connection in its answer") from exc
    except asyncio.LimitOverrunError as exc:
        raise RequestFailed("the server's answer has too long a chunk-size line") from exc
    return await reader.read(), False  # the body ends where the connection does


def _length(value: str) -> int:
    lengths = set(_tokens(value))  # repeated, the same value is still one length
    if len(lengths) != 1 or not next(iter(lengths)).isdigit():
        raise RequestFailed(f"the server's answer has a bad Content-Length: {value!r}")
    return int(lengths.pop())


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            bad = f"the server's answer has a bad chunk size: {line[:40]!r}"
            raise RequestFailed(bad) from exc
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers: nothing here reads them
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise RequestFailed("the server's answer has a chunk longer than its size")


def _decoded(body: bytes, headers: dict[str, str]) -> bytes:
    """The body without its Content-Encoding (the request offers gzip and deflate)."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if not body or encoding not in ("gzip", "deflate"):
        return body
    # deflate is meant with zlib's header, but some servers send it raw.
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    if encoding == "deflate" and body[0] & 0x0F != 8:
        wbits = -zlib.MAX_WBITS
    try:
        decompressor = zlib.decompressobj(wbits)
        return decompressor.decompress(body) + decompressor.flush()
    except zlib.error as exc:
        raise RequestFailed(f"cannot decode the server's {encoding} answer: {exc}") from exc
