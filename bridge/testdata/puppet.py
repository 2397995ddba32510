#!/usr/bin/env python3
"""A backend that lets its clients drive it, for testing the commands.

On open it tells the connection its id ("id:<id>"), after the open event
itself ("open:<line>") when the query has "showopen". A text message that is a
JSON object is sent on as a command, with "id" set to the sender's unless it
has one; "raw:<line>" sends <line> as it is (for bad commands); anything
else is echoed. Events it gets are logged to stderr.
"""
import json
import sys

out = sys.stdout
for line in sys.stdin:
    ev = json.loads(line)
    kind, cid = ev["event"], ev.get("id")
    if kind == "open":
        if "showopen" in ev["query"]:
            out.write(json.dumps({"cmd": "send", "id": cid, "text": "open:" + line.rstrip("\n")}) + "\n")
        out.write(json.dumps({"cmd": "send", "id": cid, "text": "id:" + cid}) + "\n")
    elif kind == "message":
        text = ev.get("text")
        if text is None:
            out.write(json.dumps({"cmd": "send", "id": cid, "binary": ev["binary"]}) + "\n")
        elif text.startswith("{"):
            cmd = json.loads(text)
            cmd.setdefault("id", cid)
            out.write(json.dumps(cmd) + "\n")
        elif text.startswith("raw:"):
            out.write(text[4:] + "\n")
        else:
            out.write(json.dumps({"cmd": "send", "id": cid, "text": text}) + "\n")
    out.flush()
