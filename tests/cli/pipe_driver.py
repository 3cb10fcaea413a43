#!/usr/bin/python3
"""Drives `tolk` through pipes the way an interactive caller does (used by tests/test_cli.cpp).

pipe:   writes one line, waits for its translation, and only then writes the next; a block-buffered tolk would
        never answer, so every wait has a timeout and a deadlock fails the test instead of hanging it.
sigint: writes lines, waits for their translations, sends SIGINT while tolk waits for more input, and checks
        that tolk exits with 130 after flushing the lines it finished.

Usage: pipe_driver.py pipe|sigint TIMEOUT_S TOLK_ARGS... ; lines to send come from stdin (one per line).
Prints the translations received, one per line; exits 0 on success, 1 with a message on stderr otherwise.
"""
import os
import select
import signal
import subprocess
import sys


def read_line(proc, buffer, timeout):
    """One line of proc's stdout within `timeout` seconds, or None."""
    deadline = timeout
    fd = proc.stdout.fileno()
    while b"\n" not in buffer:
        ready, _, _ = select.select([fd], [], [], deadline)
        if not ready:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode("utf-8", "replace")


def main():
    mode, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    lines = sys.stdin.read().splitlines()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buffer = bytearray()
    received = []
    try:
        for i, line in enumerate(lines):
            proc.stdin.write(line.encode("utf-8") + b"\n")
            proc.stdin.flush()
            answer = read_line(proc, buffer, timeout)
            if answer is None:
                sys.stderr.write(f"no answer to line {i + 1} within {timeout} s (deadlock or crash)\n")
                return 1
            received.append(answer)
        if mode == "sigint":
            proc.send_signal(signal.SIGINT)
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                sys.stderr.write("tolk did not exit after SIGINT\n")
                return 1
            rest = bytes(buffer) + proc.stdout.read()
            if rest:
                sys.stderr.write(f"unexpected output after SIGINT: {rest!r}\n")
                return 1
            if rc != 130:
                sys.stderr.write(f"exit code {rc} after SIGINT, expected 130; stderr: {proc.stderr.read()!r}\n")
                return 1
        else:
            proc.stdin.close()
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                sys.stderr.write("tolk did not exit at end of input\n")
                return 1
            if rc != 0:
                sys.stderr.write(f"exit code {rc}; stderr: {proc.stderr.read()!r}\n")
                return 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for line in received:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
