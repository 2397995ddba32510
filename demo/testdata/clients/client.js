// A client of the demo on Node's `ws` (npm install ws): echo (text and
// binary), chat (two members of one room) and push (two increasing
// readings), over ws:// or wss://. Run by demo/clients_test.go:
//
//	node client.js BASE_URL [CA_FILE]
//
// BASE_URL is ws://host:port or wss://host:port; CA_FILE (PEM) verifies a
// wss server. It prints "PASS echo=ok chat=ok push=ok" and exits 0, or
// prints what failed and exits 1.
"use strict";
const fs = require("fs");
const WebSocket = require("ws");

const base = process.argv[2];
const opts = process.argv[3] ? { ca: fs.readFileSync(process.argv[3]) } : {};

function open(path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base + path, opts);
    ws.queue = [];
    ws.waiters = [];
    ws.on("message", (data, isBinary) => {
      const m = { data, isBinary };
      const w = ws.waiters.shift();
      if (w) w(m); else ws.queue.push(m);
    });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

function next(ws, pred) {
  return new Promise((resolve) => {
    const take = (m) => {
      if (pred(m)) resolve(m);
      else ws.waiters.unshift(take);
    };
    const m = ws.queue.shift();
    if (m) take(m); else ws.waiters.push(take);
  });
}

const text = (m) => !m.isBinary && m.data.toString();

async function echo() {
  const ws = await open("/ws/echo");
  ws.send("héllo over node");
  const t = await next(ws, () => true);
  if (text(t) !== "héllo over node") throw new Error("text echo " + text(t));
  const bin = Buffer.from([0, 1, 2, 254, 255]);
  ws.send(bin);
  const b = await next(ws, () => true);
  if (!b.isBinary || !Buffer.from(b.data).equals(bin)) throw new Error("binary echo differs");
  ws.close(1000);
}

async function chat() {
  const room = "node-" + Math.floor(Math.random() * 1e9);
  const a = await open("/ws/chat?room=" + room + "&nick=alice");
  await next(a, (m) => text(m) === "* alice joined");
  const b = await open("/ws/chat?room=" + room + "&nick=bob");
  await next(a, (m) => text(m) === "* bob joined");
  a.send("hi bob");
  await Promise.all([next(a, (m) => text(m) === "alice: hi bob"), next(b, (m) => text(m) === "alice: hi bob")]);
  b.send("hi alice");
  await next(a, (m) => text(m) === "bob: hi alice");
  b.close(1000);
  await next(a, (m) => text(m) === "* bob left");
  a.close(1000);
}

async function push() {
  const ws = await open("/ws/push");
  const reading = (m) => {
    const r = JSON.parse(text(m));
    if (typeof r.temp !== "number" || typeof r.seq !== "number" || isNaN(Date.parse(r.t))) throw new Error("bad reading " + text(m));
    return r;
  };
  const first = reading(await next(ws, () => true));
  await next(ws, (m) => reading(m).seq > first.seq);
  ws.close(1000);
}

function within(p, ms, name) {
  return Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(name + " timed out")), ms))]);
}

(async () => {
  const parts = [];
  let pass = true;
  for (const [name, fn] of [["echo", echo], ["chat", chat], ["push", push]]) {
    try {
      await within(fn(), 15000, name);
      parts.push(name + "=ok");
    } catch (e) {
      pass = false;
      parts.push(name + "=FAIL(" + (e && e.message || e) + ")");
    }
  }
  console.log((pass ? "PASS " : "FAIL ") + parts.join(" "));
  process.exit(pass ? 0 : 1);
})();
