"""An ExaBGP API process for benchmarks/receive.py: counts the EVPN routes ExaBGP decoded and
writes the monotonic time at which the count reached the target to a file."""

import json
import sys
import time


def main() -> None:
    target, out = int(sys.argv[1]), sys.argv[2]
    total = 0
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        update = message.get("neighbor", {}).get("message", {}).get("update", {})
        for family in update.get("announce", {}).values():
            for routes in family.values():
                total += len(routes)
        if total >= target:
            with open(out, "w") as f:
                f.write(str(time.monotonic()))
            total = -(1 << 60)  # report once


if __name__ == "__main__":
    main()
