#!/usr/bin/env python3
"""A backend that echoes every message and counts events per connection.

A connection opened with ?control asks for the counts with any message and
gets them as JSON: opens, closes and messages of all other connections, and
the violations of exactly-once delivery it saw (an id opened twice, closed
twice, closed or messaged without an open, messages out of sequence: each
client numbers its messages "<n>" from 0).
"""
import json
import sys

opens, closes, msgs = set(), set(), {}
stats = {"opens": 0, "closes": 0, "messages": 0, "dup_open": 0, "dup_close": 0,
         "orphan": 0, "out_of_order": 0, "hello": None}
control = set()
out = sys.stdout
for line in sys.stdin:
    ev = json.loads(line)
    kind, cid = ev["event"], ev.get("id")
    if kind == "hello":
        stats["hello"] = ev
    elif kind == "open":
        if ev["query"] == "control":
            control.add(cid)
            continue
        if cid in opens:
            stats["dup_open"] += 1
        opens.add(cid)
        stats["opens"] += 1
    elif kind == "message":
        if cid in control:
            out.write(json.dumps({"cmd": "send", "id": cid, "text": json.dumps(stats)}) + "\n")
            out.flush()
            continue
        if cid not in opens or cid in closes:
            stats["orphan"] += 1
        n = msgs.get(cid, 0)
        if ev.get("text") != str(n):
            stats["out_of_order"] += 1
        msgs[cid] = n + 1
        stats["messages"] += 1
        out.write(json.dumps({"cmd": "send", "id": cid, "text": ev.get("text")}) + "\n")
        out.flush()
    elif kind == "close":
        if cid in control:
            continue
        if cid in closes:
            stats["dup_close"] += 1
        if cid not in opens:
            stats["orphan"] += 1
        closes.add(cid)
        stats["closes"] += 1
