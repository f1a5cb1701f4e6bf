"""``digitnet serve``: the drawing page and the REST API, on uvicorn with digitnet's guarded
HTTP protocol."""

from __future__ import annotations

import sys
from pathlib import Path

from digitnet.cli.base import (
    MAX_DEFAULT_WORKERS,
    CommandError,
    command,
    default_workers,
    path_text,
    port_number,
    processes,
    trainings_at_once,
    upload_megabytes,
)


@command
def add_serve(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="the web page: draw a digit and watch the network recognise it",
        description="Serve the drawing page and the REST API (docs at /docs). Without --model"
        " it serves the bundled cnn and tutorial models.",
    )
    serve.add_argument("--model", action="append", metavar="MODEL",
                       help="a model file or bundled name; repeat to offer several")  # fmt: skip
    serve.add_argument("--host", default="127.0.0.1",
                       help="where to listen (default: 127.0.0.1, this machine only)")  # fmt: skip
    serve.add_argument("--port", type=port_number, default=8000, help="default: 8000")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="a name the server answers to besides its IP addresses and"
                       " localhost (a reverse proxy's, a machine's); repeat for several."
                       " Requests naming any other Host get 403")  # fmt: skip
    serve.add_argument("--open", action="store_true", help="open the page in a browser")
    serve.add_argument("--workers", type=processes, default=default_workers(),
                       help="processes that work out the answers, taking requests from one queue;"
                       " 1: the server itself (default: one per core, at most"
                       f" {MAX_DEFAULT_WORKERS}: %(default)s here)")  # fmt: skip
    serve.add_argument("--max-upload-mb", type=upload_megabytes, default=10,
                       help="largest accepted upload in MB, at most 50 (default: 10)")  # fmt: skip
    serve.add_argument("--models-dir", type=lambda text: Path(path_text(text)), metavar="DIR",
                       help="keep the models trained from the page here, and serve those already"
                       " here (default: kept until the server stops)")  # fmt: skip
    serve.add_argument("--max-trainings", type=trainings_at_once, default=1, metavar="N",
                       help="trainings at once; a few more wait in line (default: 1)")  # fmt: skip
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import threading
    import webbrowser

    import uvicorn
    from uvicorn._compat import asyncio_run

    from digitnet.web.app import create_app
    from digitnet.web.catalog import load_catalog
    from digitnet.web.limits import Hosts
    from digitnet.web.protocol import GuardedHttp, connection_cap

    catalog = load_catalog(args.model)  # here too, so a bad model fails before the server starts
    listening = listen(args.host, args.port)  # before the URL is announced: it may be taken
    GuardedHttp.max_connections = connection_cap()
    if args.models_dir is not None:
        args.models_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(catalog, max_upload_bytes=int(args.max_upload_mb * 2**20),
                     workers=args.workers, models_dir=args.models_dir,
                     max_trainings=args.max_trainings,
                     allowed_hosts=Hosts(args.port, tuple(args.allow_host)))  # fmt: skip
    config = uvicorn.Config(app, http=GuardedHttp, log_level="warning", access_log=False,
                            timeout_keep_alive=5,
                            timeout_graceful_shutdown=GRACE_SECONDS)  # fmt: skip
    server = uvicorn.Server(config)

    async def serve() -> None:
        try:
            await app.state.server.start()  # the workers loaded: the server can answer
        except RuntimeError as err:
            raise CommandError(f"{err}; the server did not start") from None
        listening.listen(config.backlog)  # connections wait here until the loop serves them
        shown = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{shown}:{args.port}/"
        print(f"digitnet serve: {', '.join(catalog.models)} at {url} (Ctrl-C to stop)",
              flush=True)  # fmt: skip
        if args.open:
            threading.Timer(1.0, webbrowser.open, [url]).start()
        await server.serve(sockets=[listening])

    asyncio_run(serve(), loop_factory=config.get_loop_factory())
    if not server.started:
        raise CommandError("the server did not start (see the lines above)")
    return 0


GRACE_SECONDS = 3  # requests in progress when the server is told to stop; then the workers' 2 s


def listen(host: str, port: int):
    """A socket bound to host:port, as uvicorn binds (SO_REUSEADDR: a server stopped and
    started again need not wait out TIME_WAIT), or an OSError saying where."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said aloud: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
    # that say so, and with it on, one answer in a hundred waited ~40 ms for a delayed ACK.
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    if sys.platform != "win32":
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as err:
        listening.close()
        raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror}") from None
    return listening
