"""Loopback servers for benchmark 1: the bare 202 handler, and a black hole for GitHub.

    python -m benchmarks.servers bare --port 18081
    python -m benchmarks.servers black-hole --port 18082

`bare` is what the bot's webhook intake is measured against: aiohttp reading the body
and answering 202, nothing else. `black-hole` stands in for api.github.com while the
bot serves: it accepts connections and never answers, so the bot's job worker waits
on the network (as it mostly does for real) instead of failing fast and spinning.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web


async def accepted(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=202, text="accepted\n")


def bare_app() -> web.Application:
    app = web.Application(client_max_size=25 * 1024 * 1024)
    app.router.add_post("/webhooks/github", accepted)
    app.router.add_get("/healthz", healthy)
    return app


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def black_hole(port: int) -> None:
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep the connection open, say nothing
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["bare", "black-hole"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.kind == "bare":
        web.run_app(bare_app(), host="127.0.0.1", port=args.port, print=None)
    else:
        asyncio.run(black_hole(args.port))


if __name__ == "__main__":
    main()
