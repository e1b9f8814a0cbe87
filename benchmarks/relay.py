"""A bare relay: the floor of a Python hop in front of the demo model, for overhead.py.

    python benchmarks/relay.py --port P --upstream http://127.0.0.1:Q/v1

It does nothing but pass a chat request on and relay the answer, read by read, with the
two libraries the ib service uses for that (tornado's server, aiohttp's client): no
checks, no parsing, no logging. What it adds over a direct call is what any gateway
built from those parts adds before doing anything; ib's added time minus the relay's is
what ib's own work costs.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
import tornado.web

HEADERS = {"Authorization": "Bearer bench", "Content-Type": "application/json"}


class Relay(tornado.web.RequestHandler):
    def initialize(self, upstream: str, http: list) -> None:
        self.upstream, self.http = upstream, http

    async def _pass(self, method: str, path: str) -> None:
        if not self.http:  # made in the loop that uses it; no cap on connections
            self.http.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        async with self.http[0].request(method, self.upstream + path, headers=HEADERS,
                                        data=self.request.body or None) as up:
            self.set_status(up.status)
            self.set_header("Content-Type", up.headers.get("Content-Type", "application/json"))
            async for data in up.content.iter_any():
                self.write(data)
                await self.flush()

    async def post(self, path: str) -> None:
        await self._pass("POST", path)

    async def get(self, path: str) -> None:
        await self._pass("GET", path)


async def serve(port: int, upstream: str) -> None:
    app = tornado.web.Application([(r"/v1(/.*)", Relay,
                                    {"upstream": upstream.rstrip("/"), "http": []})])
    app.listen(port, "127.0.0.1")
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="the demo model's /v1 URL")
    args = ap.parse_args()
    asyncio.run(serve(args.port, args.upstream))


if __name__ == "__main__":
    main()
