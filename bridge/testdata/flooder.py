#!/usr/bin/env python3
"""A backend that answers "flood:N" with N messages of 8 KiB to the sender
and echoes anything else."""
import json
import sys

out = sys.stdout
pad = "f" * 8192
for line in sys.stdin:
    ev = json.loads(line)
    if ev["event"] != "message":
        continue
    text = ev.get("text", "")
    if text.startswith("flood:"):
        for i in range(int(text[6:])):
            out.write(json.dumps({"cmd": "send", "id": ev["id"], "text": pad}) + "\n")
    else:
        out.write(json.dumps({"cmd": "send", "id": ev["id"], "text": text}) + "\n")
    out.flush()
