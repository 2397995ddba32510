"""A client of the demo on Python's websockets (Debian's python3-websockets):
echo (text and binary), chat (two members of one room) and push (two
increasing readings), over ws:// or wss://. Run by demo/clients_test.go:

    python3 client.py BASE_URL [CA_FILE]

It prints "PASS echo=ok chat=ok push=ok" and exits 0, or what failed and
exits 1.
"""
import asyncio
import json
import random
import ssl
import sys
from datetime import datetime

import websockets

BASE = sys.argv[1]
SSL = None
if len(sys.argv) > 2:
    SSL = ssl.create_default_context(cafile=sys.argv[2])


def connect(path):
    return websockets.connect(BASE + path, ssl=SSL)


async def until(ws, pred):
    while True:
        m = await ws.recv()
        if pred(m):
            return m


async def echo():
    async with connect("/ws/echo") as ws:
        await ws.send("héllo over python")
        if await ws.recv() != "héllo over python":
            raise Exception("text echo differs")
        await ws.send(bytes([0, 1, 2, 254, 255]))
        if await ws.recv() != bytes([0, 1, 2, 254, 255]):
            raise Exception("binary echo differs")


async def chat():
    room = "py-%d" % random.randrange(10**9)
    async with connect("/ws/chat?room=%s&nick=alice" % room) as a:
        await until(a, lambda m: m == "* alice joined")
        async with connect("/ws/chat?room=%s&nick=bob" % room) as b:
            await until(a, lambda m: m == "* bob joined")
            await a.send("hi bob")
            await until(a, lambda m: m == "alice: hi bob")
            await until(b, lambda m: m == "alice: hi bob")
            await b.send("hi alice")
            await until(a, lambda m: m == "bob: hi alice")
        await until(a, lambda m: m == "* bob left")


async def push():
    def reading(m):
        r = json.loads(m)
        if not isinstance(r["temp"], (int, float)) or not isinstance(r["seq"], int):
            raise Exception("bad reading " + m)
        datetime.fromisoformat(r["t"].replace("Z", "+00:00"))
        return r

    async with connect("/ws/push") as ws:
        first = reading(await ws.recv())
        await until(ws, lambda m: reading(m)["seq"] > first["seq"])


async def main():
    parts, ok = [], True
    for name, fn in (("echo", echo), ("chat", chat), ("push", push)):
        try:
            await asyncio.wait_for(fn(), 15)
            parts.append(name + "=ok")
        except Exception as e:  # report every failure, then fail
            ok = False
            parts.append("%s=FAIL(%r)" % (name, e))
    print(("PASS " if ok else "FAIL ") + " ".join(parts))
    sys.exit(0 if ok else 1)


asyncio.run(main())
