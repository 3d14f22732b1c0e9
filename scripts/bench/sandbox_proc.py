"""The Order Desk sandbox with several stores, as its own process for the benchmarks.

    python -m scripts.bench.sandbox_proc --store 200001:KEY:demo --store 200002:KEY:empty

Prints one JSON line (`base_url`, `admin_url`) once it accepts connections, then serves on an
ephemeral loopback port until SIGTERM, SIGINT or the end of standard input.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from orderdesk_mcp.sandbox import SandboxStoreSpec, start_sandbox


def parse_store(text: str) -> SandboxStoreSpec:
    store_id, api_key, seed = text.split(":", 2)
    return SandboxStoreSpec(store_id, api_key, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", action="append", required=True, type=parse_store)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Stdin closing means the harness went away: stop instead of lingering.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    with start_sandbox(args.store, host="127.0.0.1", port=0, threads=args.threads) as sandbox:
        print(json.dumps({"base_url": sandbox.base_url, "admin_url": sandbox.admin_url}))
        sys.stdout.flush()
        stop.wait()


if __name__ == "__main__":
    main()
