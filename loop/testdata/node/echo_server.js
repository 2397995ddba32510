// A Node 'ws' echo server with permessage-deflate, for a wsloop client:
// node echo_server.js CLIENT_MAX_WINDOW_BITS. It listens on a free loopback
// port, prints "listening PORT", echoes every message (compressed), and
// prints one line per connection with the Sec-WebSocket-Extensions header
// of its answer. It exits when its standard input closes.
"use strict";
const WebSocket = require("ws");

const clientBits = Number(process.argv[2] || 0);
const deflate = { threshold: 0 };
if (clientBits) deflate.clientMaxWindowBits = clientBits;
const wss = new WebSocket.WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: deflate });
wss.on("listening", () => console.log("listening " + wss.address().port));
wss.on("headers", (headers) => {
  const ext = headers.find((h) => /^sec-websocket-extensions:/i.test(h)) || "";
  console.log("extensions " + ext.replace(/^[^:]*:\s*/, ""));
});
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary, compress: true }));
  ws.on("error", (err) => console.log("error " + err.message));
  ws.on("close", (code) => console.log("closed " + code));
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
