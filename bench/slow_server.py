#!/usr/bin/env python3
"""A 127.0.0.1 HTTP server that answers every GET exactly `--delay-ms` after it arrives.

Used by `bench/data_steps.py --only async` as the server every client is measured against. It
runs in its own process (so it does not share a GIL or a core's time slice with the harness),
on one asyncio event loop with raw protocols (no per-connection thread, no HTTP library), and
speaks HTTP/1.1 with keep-alive as well as HTTP/1.0 (closing after the response), so a client
that reuses connections can and one that does not still works. The listen backlog is 4096.

Each request's arrival and answer times (`time.monotonic()`, comparable with the harness's own
clock) are kept; `GET /__log` returns them as JSON lines `[arrived, answered, connection]` and
forgets them, so the harness can see per run where the time went (start-up before the first
request, gaps between waves, the wait after the last answer).

On a busy machine the server's own lateness would count against every client, so it raises its
scheduling priority (nice -10) when it may (as root); the clients run at normal priority. The
per-request log shows how late it answered.

The event loop is uvloop's when it is installed (`scripts/setup-tests.sh` puts it into `target/pyenv`,
whose Python the harness prefers): asyncio's own loop took ~8 ms to accept a burst of 100
connections and read their requests, and answered up to 3 ms late, lag that counted against
every client. The loop in use is printed with the port.

Prints `port N loop NAME` on stdout once listening.
"""
import argparse
import asyncio
import json
import os
import time

BODY_LIMIT = 64 * 1024  # a request head longer than this is refused


class Conn(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.buf = b""
        self.transport = None
        self.id = server.next_conn()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        now = time.monotonic()
        self.buf += data
        batch = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > BODY_LIMIT:
                    self.transport.close()
                return self.answer_later(now, batch)
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            path, version = parts[1], parts[2]
            headers = {k.strip().lower(): v.strip().lower()
                       for k, _, v in (h.partition(":") for h in lines[1:])}
            conn = headers.get("connection", "")
            keep = conn == "keep-alive" if version == "HTTP/1.0" else conn != "close"
            batch.append((path, version, keep))

    def answer_later(self, arrived, batch):
        if batch:
            # One timer per read keeps pipelined answers in request order.
            asyncio.get_running_loop().call_at(arrived + self.server.delay, self.answer, arrived, batch)

    def answer(self, arrived, batch):
        if self.transport.is_closing():
            return
        for path, version, keep in batch:
            if path == "/__log":
                body = "".join(json.dumps(r) + "\n" for r in self.server.take_log()).encode()
            else:
                body = f"page {path}\n".encode()
                self.server.log.append((arrived, time.monotonic(), self.id))
            self.transport.write(
                f"{version} 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode() + body)
            if not keep:
                self.transport.close()
                return


class Server:
    def __init__(self, delay):
        self.delay = delay
        self.log = []
        self.conns = 0

    def next_conn(self):
        self.conns += 1
        return self.conns

    def take_log(self):
        log, self.log = self.log, []
        return log


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay-ms", type=float, default=50)
    args = p.parse_args()
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except PermissionError:
        pass
    state = Server(args.delay_ms / 1000)
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: Conn(state), "127.0.0.1", args.port, backlog=4096)
    print(f"port {srv.sockets[0].getsockname()[1]} loop {type(loop).__module__.split('.')[0]}", flush=True)
    await srv.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
