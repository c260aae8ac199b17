"""``python -m m365perf.sandbox --config FILE``: how tests start a sandbox in a subprocess."""

from __future__ import annotations

import argparse
from pathlib import Path

from m365perf.sandbox.config import SandboxConfig
from m365perf.sandbox.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m m365perf.sandbox")
    parser.add_argument("--config", type=Path, required=True, help="SandboxConfig as JSON")
    parser.add_argument("--seed", action="store_true", help="load the demo council")
    parser.add_argument("--ready-file", type=Path, help="written with the ports once listening")
    args = parser.parse_args()
    config = SandboxConfig.model_validate_json(args.config.read_text())
    serve(config, seed=args.seed, ready_file=args.ready_file)


if __name__ == "__main__":
    main()
