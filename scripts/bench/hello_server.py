"""A bare waitress WSGI app answering a fixed JSON body: the transport floor for bench_mcp.

python -m scripts.bench.hello_server --port 8124
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from waitress import serve

BODY = b'{"jsonrpc":"2.0","id":1,"result":{}}'


def hello_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    serve(hello_app, host="127.0.0.1", port=args.port, threads=args.threads, _quiet=True)


if __name__ == "__main__":
    main()
