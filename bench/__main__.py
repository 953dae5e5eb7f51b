"""Run every benchmark in turn: ``python -m bench [NAME ...]``.

Each prints its own figures (and writes JSON under bench/results/); targets live here, as
printed numbers and ratios, not as timed assertions in the tests.
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = {
    "ami_throughput": "AMI parse + dispatch events/s vs panoramisk and asterisk-ami",
    "asr": "speech: real-time factor, intent latency, accuracy vs false accepts, concurrency",
    "screenpop": "AgentCalled -> pop on the agent's websocket, 200 agents",
}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown bench {', '.join(unknown)}; have: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    failed = []
    for name in names or list(BENCHES):
        print(f"\n=== bench.{name}: {BENCHES[name]} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
