#!/usr/bin/env python3
"""chat.py: chat rooms as one shared backend for wsloop -backend, in Python.

Connect to ws://HOST/PATH?room=NAME&nick=NICK. Every text message goes to
everyone in the room as "nick: text"; joins and leaves are announced. The
rooms live in wsloop (join, publish): this program keeps only each
connection's room and nick.

    wsloop -backend '/ws/rooms=examples/backend/chat.py'
    examples/backend/chat.py --socket /run/chat.sock &   # or it listens
    wsloop -backend '/ws/rooms=unix:///run/chat.sock'

The protocol is JSON lines, one event per line in, one command per line out;
see wsloop's bridge package documentation.
"""
import json
import os
import socket
import sys
from urllib.parse import parse_qs


def serve(lines, out):
    conns = {}  # id -> (room, nick)
    guests = 0

    def cmd(**c):
        out.write(json.dumps(c, ensure_ascii=False) + "\n")

    for line in lines:
        ev = json.loads(line)
        kind, cid = ev["event"], ev.get("id")
        if kind == "hello":
            conns.clear()  # a (re)started backend: no connection is open
        elif kind == "open":
            q = parse_qs(ev["query"])
            room = q.get("room", ["lobby"])[0][:32]
            nick = q.get("nick", [""])[0][:24]
            if not nick:
                guests += 1
                nick = "guest-%d" % guests
            conns[cid] = (room, nick)
            cmd(cmd="join", id=cid, room=room)
            cmd(cmd="publish", room=room, text="* %s joined" % nick)
        elif kind == "message" and cid in conns:
            room, nick = conns[cid]
            if "text" in ev:
                cmd(cmd="publish", room=room, text="%s: %s" % (nick, ev["text"]))
            else:
                cmd(cmd="close", id=cid, code=1003, reason="text only")
        elif kind == "close" and cid in conns:
            room, nick = conns.pop(cid)
            cmd(cmd="publish", room=room, text="* %s left" % nick)
        out.flush()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--socket":
        path = sys.argv[2]
        if os.path.exists(path):
            os.unlink(path)
        ln = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ln.bind(path)
        ln.listen(4)
        while True:
            c, _ = ln.accept()
            with c, c.makefile("r", encoding="utf-8") as r, c.makefile("w", encoding="utf-8") as w:
                try:
                    serve(r, w)
                except (BrokenPipeError, ConnectionResetError):
                    pass
    else:
        serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
