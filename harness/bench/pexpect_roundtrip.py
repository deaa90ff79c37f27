#!/usr/bin/env python3
"""Command round trips on a module's serial console with pexpect, the way labgrid and
pytest-embedded talk to a console: a pexpect spawn on the port's file descriptor, `send`, then
`expect` the machine-format reply frame (the R header, then as many body bytes as it says).

Prints JSON on stdout: {"command": ..., "warmup": W, "round_trips_ns": [N timed round trips]}.
Run by `hil bench transports`; by hand:

    python3 harness/bench/pexpect_roundtrip.py --port /dev/pts/3 --command 'get wlan.ssid' \\
        --expect gecko-lab --iterations 1000

Needs pexpect (`pip install pexpect`).
"""

import argparse
import json
import os
import re
import sys
import time
import tty

import pexpect
import pexpect.fdpexpect

# The machine-format response header: R, the result code, the body's length in 5 digits.
HEADER = re.compile(rb"R(\d)(\d{5})\r\n")


def round_trip(child, line, expect_body):
    """Sends one command line and waits for its whole reply frame; the code and the body."""
    child.send(line)
    child.expect(HEADER)
    code, length = int(child.match.group(1)), int(child.match.group(2))
    if length:
        # The body: exactly `length` bytes, whatever they are.
        child.expect(re.compile(rb"[\s\S]{%d}" % length))
        body = child.match.group(0)
    else:
        body = b""
    if code != 0 or body != expect_body:
        raise SystemExit(f"unexpected reply: code {code}, body {body!r}")
    return code, body


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True, help="the console's pty or UART")
    parser.add_argument("--command", required=True)
    parser.add_argument("--expect", required=True, help="the response, without its line end")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per reply")
    args = parser.parse_args()

    fd = os.open(args.port, os.O_RDWR | os.O_NOCTTY)
    # Raw bytes both ways, as a serial driver sets the port up.
    tty.setraw(fd)
    # delaybeforesend: pexpect waits 50 ms before each send by default (for programs that
    # turn echo off late); a console needs none, and the bench measures pexpect at its best.
    child = pexpect.fdpexpect.fdspawn(fd, timeout=args.timeout)
    child.delaybeforesend = None
    line = (args.command + "\r\n").encode()
    expect_body = (args.expect + "\r\n").encode()
    samples = []
    for i in range(args.warmup + args.iterations):
        t = time.perf_counter_ns()
        round_trip(child, line, expect_body)
        took = time.perf_counter_ns() - t
        if i >= args.warmup:
            samples.append(took)
    os.close(fd)
    json.dump(
        {"command": args.command, "warmup": args.warmup, "round_trips_ns": samples},
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
