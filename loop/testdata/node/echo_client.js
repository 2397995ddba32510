// A Node 'ws' client with permessage-deflate against a wsloop echo server:
// node echo_client.js URL. It sends text and binary messages of many sizes,
// whole and fragmented (compressed fragments across frames), checks every
// echo, and prints one JSON line: {"extensions": ..., "ok": n, "errors": [...]}.
"use strict";
const WebSocket = require("ws");

const url = process.argv[2];
const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0 } });

function payload(n, binary) {
  const words = ["event", "loop", "socket", "frame", "deflate", "window", "\u00e9t\u00e9", "\u2713"];
  if (binary) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
    return b;
  }
  const parts = [];
  for (let i = 0, bytes = 0; bytes < n; i++) {
    const w = words[i % words.length] + " " + i + " ";
    parts.push(w);
    bytes += Buffer.byteLength(w);
  }
  return parts.join("");
}

const plan = [];
for (const n of [0, 1, 16, 125, 126, 1000, 4096, 65536, 262144]) {
  plan.push({ n, binary: false, frags: 0 });
  plan.push({ n, binary: true, frags: 0 });
}
for (const n of [5000, 100000]) {
  plan.push({ n, binary: false, frags: 3 });
  plan.push({ n, binary: true, frags: 7 });
}

const errors = [];
let ok = 0;
let i = 0;
let expected = null;

function sendNext() {
  if (i === plan.length) {
    ws.close(1000, "done");
    return;
  }
  const p = plan[i++];
  const data = payload(p.n, p.binary);
  expected = { data, binary: p.binary };
  if (p.frags === 0) {
    ws.send(data, { binary: p.binary, compress: true });
    return;
  }
  // A fragmented message: compress: true on every fragment, fin on the last.
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const k = Math.ceil(buf.length / p.frags);
  for (let off = 0; off < buf.length; off += k) {
    ws.send(buf.subarray(off, off + k), { binary: p.binary, compress: true, fin: off + k >= buf.length });
  }
}

ws.on("open", sendNext);
ws.on("message", (data, isBinary) => {
  const want = expected;
  const wantBuf = Buffer.isBuffer(want.data) ? want.data : Buffer.from(want.data);
  if (isBinary !== want.binary || !Buffer.from(data).equals(wantBuf)) {
    errors.push(`message ${i - 1}: echo differs (${data.length} bytes, binary ${isBinary})`);
  } else {
    ok++;
  }
  sendNext();
});
ws.on("close", (code) => {
  console.log(JSON.stringify({ extensions: ws.extensions, ok, code, errors }));
  process.exit(errors.length === 0 && ok === plan.length ? 0 : 1);
});
ws.on("error", (err) => {
  errors.push(String(err));
});
setTimeout(() => { errors.push("timeout"); console.log(JSON.stringify({ extensions: ws.extensions, ok, errors })); process.exit(1); }, 20000).unref();
