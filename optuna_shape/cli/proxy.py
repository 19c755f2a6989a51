"""``optuna-shape proxy``: serve a study database to many workers through Optuna's gRPC proxy.

A thin adapter over Optuna's gRPC proxy server: it opens the database as ``search`` does (on
SQLite with the locked queue pop of :func:`optuna_shape.store.backends.open_storage`), wraps it
in Optuna's storage cache, and serves it with concurrent reads of a study sharing one database
read (:mod:`optuna_shape.store.grpc_server`) until Ctrl-C or SIGTERM. Workers then use
``--storage grpc://HOST:PORT`` and hold no database connection of their own.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from typing import Any

from optuna_shape.cli._common import (
    DEFAULT_STORAGE,
    EXIT_OK,
    STORAGE_ENV,
    CLIError,
    UsageError,
    mask,
    open_storage,
    storage_url,
)
from optuna_shape.store.backends import grpc_proxy_problem

__all__ = ["add_arguments", "run", "DEFAULT_PORT", "DEFAULT_THREADS"]

DEFAULT_PORT = 13000
"""Port the proxy listens on by default (Optuna's own default)."""
DEFAULT_THREADS = 10
"""Threads serving requests by default (Optuna's own default)."""

HELP = "serve a study database to many workers through Optuna's gRPC storage proxy"
DESCRIPTION = ("Serve the database named by --storage (sqlite:///FILE or postgresql://...) "
               "through Optuna's gRPC storage proxy until Ctrl-C or SIGTERM, so that many "
               "workers share it over one connection pool: start the workers with "
               "--storage grpc://HOST:PORT. Needs grpcio and protobuf "
               "(pip install \"optuna-shape[grpc]\").")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``proxy`` flags to ``p``."""
    p.add_argument("--storage", default=None,
                   help=f"database to serve: sqlite:///FILE or postgresql://USER:PW@HOST/DB "
                        f"(default: ${STORAGE_ENV} if set, else {DEFAULT_STORAGE})")
    p.add_argument("--host", default="localhost",
                   help="address to listen on; 0.0.0.0 (every interface) for workers on other "
                        "machines — the proxy has no authentication, so keep it on a trusted "
                        "network")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help="threads serving requests")


class _Stopped(Exception):
    """SIGTERM arrived: stop serving."""


def _refuse(url: str) -> None:
    """Usage error for a storage the proxy cannot serve."""
    shown = mask(url)
    valid = "serve a database: --storage sqlite:///FILE or postgresql://USER:PW@HOST/DB"
    if url == ":memory:":
        raise UsageError(f"--storage {shown}: an in-memory storage would vanish with the proxy; "
                         f"{valid}")
    if url.startswith("grpc://"):
        raise UsageError(f"--storage {shown} is a gRPC proxy itself; {valid}")
    if url.startswith("journal:") or ("://" not in url and url.endswith((".log", ".journal"))):
        raise UsageError(f"--storage {shown}: Optuna's gRPC proxy does not serve journal "
                         f"storages; {valid}")


def _check_listen(host: str, port: int) -> None:
    """Refuse a port that is taken or an address that is not this machine's, before serving."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise CLIError(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") \
            from None
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another "
                           "proxy on this port? pick another with --port)") from None


def _worker_host(host: str) -> str:
    """The host workers connect to (this machine's name when listening on every interface)."""
    return socket.gethostname() if host in ("", "0.0.0.0", "::", "[::]") else host


def run(args: argparse.Namespace) -> int:
    """Run ``optuna-shape proxy``: serve until Ctrl-C or SIGTERM; returns 0 then."""
    url = storage_url(args.storage)
    _refuse(url)
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: the port must be 1-65535")
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads}: at least 1 thread is needed")
    problem = grpc_proxy_problem()
    if problem is not None:
        raise CLIError(problem)
    from concurrent.futures import ThreadPoolExecutor

    from optuna_shape.store.grpc_server import make_server

    storage = open_storage(url, heartbeat_interval=None)  # workers beat through the proxy
    _check_listen(args.host, args.port)
    print(f"optuna-shape proxy: serving {mask(url)} on {args.host}:{args.port} "
          f"({args.threads} threads); workers: --storage "
          f"grpc://{_worker_host(args.host)}:{args.port}; Ctrl-C stops it",
          file=sys.stderr, flush=True)

    def stop(signum: int, frame: Any) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        # Optuna's cache in front of the database, as its proxy documentation recommends
        server = make_server(storage, args.host, args.port, ThreadPoolExecutor(args.threads))
        server.start()
        server.wait_for_termination()
    except (KeyboardInterrupt, _Stopped):
        print("optuna-shape proxy: stopped", file=sys.stderr, flush=True)
    except RuntimeError as exc:  # grpc: "Failed to bind to address ..."
        if "bind" not in str(exc).lower():
            raise
        raise CLIError(f"cannot listen on {args.host}:{args.port}: "
                       f"{' '.join(str(exc).split())}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK
