#!/usr/bin/env python3
"""counter.py: server push from a per-connection program (wsloop -exec).

Sends 1, 2, 3, ... as text messages, one every INTERVAL seconds (the first
argument, default 1; or ?every=SECONDS in the URL, which the program sees in
QUERY_STRING). A message from the client resets the count: the program reads
stdin on a thread of its own. stdout is flushed after each line: a pipe is
block-buffered otherwise, and the client would see nothing for a long time.

    wsloop -exec '/ws/count=examples/exec/counter.py 0.1'
"""
import os
import sys
import threading
import time
from urllib.parse import parse_qs

interval = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
q = parse_qs(os.environ.get("QUERY_STRING", ""))
if "every" in q:
    interval = max(0.01, float(q["every"][0]))

count = 0
lock = threading.Lock()


def read_input():
    global count
    for _ in sys.stdin:
        with lock:
            count = 0
    os._exit(0)  # stdin closed: the client has gone


threading.Thread(target=read_input, daemon=True).start()
while True:
    with lock:
        count += 1
        n = count
    sys.stdout.write("%d\n" % n)
    sys.stdout.flush()
    time.sleep(interval)
