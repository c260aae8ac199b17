"""Running the sandbox: sockets bound first (so port 0 works), then uvicorn, HTTP and HTTPS.

The HTTPS listener serves the same app; it exists because MSAL refuses an authority
that is not https. Its certificate comes from a CA kept in the data dir
(``tls/ca.pem``), which clients pass as ``verify``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from pathlib import Path

import uvicorn

from m365perf.sandbox.app import create_app
from m365perf.sandbox.config import SandboxConfig
from m365perf.sandbox.keys import ensure_tls


class _QuietDrops(logging.Filter):
    """Hide uvicorn's complaint about the deliberate drops; keep every other error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("ASGI callable should return None")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it keep-alive replies wait ~40 ms for an ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(config: SandboxConfig, *, seed: bool = False, ready_file: Path | None = None) -> None:
    """Run until interrupted. Writes ``ready_file`` (JSON with the real ports) once listening."""
    http_sock = _bind(config.host, config.port)
    tls_sock = _bind(config.host, config.tls_port) if config.tls else None
    config = config.model_copy(
        update={
            "port": http_sock.getsockname()[1],
            "tls_port": tls_sock.getsockname()[1] if tls_sock else config.tls_port,
        }
    )
    app = create_app(config, seed=seed)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    common = {
        "log_level": "warning",
        "proxy_headers": False,
        "lifespan": "off",
        "access_log": False,
        "timeout_graceful_shutdown": 2,
    }
    servers = [(uvicorn.Server(uvicorn.Config(app, **common)), http_sock)]  # type: ignore[arg-type]
    if tls_sock is not None:
        tls = ensure_tls(config.data_dir / "tls", config.host)
        servers.append(
            (
                uvicorn.Server(
                    uvicorn.Config(
                        app,
                        ssl_certfile=str(tls.cert_file),
                        ssl_keyfile=str(tls.key_file),
                        **common,  # type: ignore[arg-type]
                    )
                ),
                tls_sock,
            )
        )
    if ready_file is not None:
        temporary = ready_file.with_suffix(".tmp")
        temporary.write_text(
            json.dumps(
                {
                    "port": config.port,
                    "tls_port": config.tls_port if tls_sock else None,
                    "pid": os.getpid(),
                }
            )
        )
        temporary.replace(ready_file)

    async def _all() -> None:
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        asyncio.run(_all())
