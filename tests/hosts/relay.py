"""A byte relay between two endpoints, run as a script: ``relay.py LISTEN TARGET [--netns NS]``.

Endpoints are ``tcp:HOST:PORT`` or ``unix:PATH``. It listens in the namespace it was started
in and connects to ``TARGET`` inside ``NS`` when given (``setns`` around creating the socket:
a socket stays in the namespace it was made in), so one process joins the test's loopback to
a host's address without giving the root namespace an address on the test subnet. The
harness uses it both ways: loopback → a host's API, and a "db" host's address → the real
MariaDB's unix socket (unix sockets are reached through the file system from any namespace).
A relay into a namespace exits when that namespace is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import socket
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
CHUNK = 65536


class Endpoint:
    def __init__(self, spec: str) -> None:
        kind, _, rest = spec.partition(":")
        if kind not in ("tcp", "unix") or not rest:
            raise SystemExit(f"relay: endpoint {spec!r} is neither tcp:HOST:PORT nor unix:PATH")
        self.unix = kind == "unix"
        self.path = rest
        host, _, port = rest.rpartition(":")
        self.address: tuple[str, int] | None = None if self.unix else (host, int(port))


def setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def make_socket(target: Endpoint, netns: str | None) -> socket.socket:
    family = socket.AF_UNIX if target.unix else socket.AF_INET
    if netns is None:
        return socket.socket(family, socket.SOCK_STREAM)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        setns(there)
        try:
            return socket.socket(family, socket.SOCK_STREAM)
        finally:
            setns(home)
    finally:
        os.close(home)
        os.close(there)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


async def serve(listen: Endpoint, target: Endpoint, netns: str | None) -> None:
    loop = asyncio.get_running_loop()

    async def link(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = make_socket(target, netns)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, target.path if target.unix else target.address)
        except OSError:
            sock.close()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(sock=sock)
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    if listen.unix:
        server = await asyncio.start_unix_server(link, listen.path)
    else:
        assert listen.address is not None
        server = await asyncio.start_server(link, *listen.address, reuse_address=True)
    print("relay: listening", flush=True)
    async with server:
        await server.serve_forever()


def exit_with(netns: str) -> None:
    """A run killed before its clean-up leaves this relay behind; the next run's sweep removes
    the namespace, and this takes the relay with it."""
    while os.path.exists(f"/run/netns/{netns}"):
        time.sleep(1)
    os._exit(0)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("listen")
    parser.add_argument("target")
    parser.add_argument("--netns", help="connect to TARGET inside this network namespace")
    args = parser.parse_args(argv)
    if args.netns:
        threading.Thread(target=exit_with, args=(args.netns,), daemon=True).start()
    asyncio.run(serve(Endpoint(args.listen), Endpoint(args.target), args.netns))


if __name__ == "__main__":
    main(sys.argv[1:])
