// wsloop demo page: plain browser JavaScript, no libraries.
// With ?selftest=1 the page exercises echo, chat and push by itself and shows
// the outcome in #selftest (and the title); with &report=PATH it also GETs
// PATH?result=OUTCOME (the end-to-end test reads it).
"use strict";

function wsURL(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

function $(id) { return document.getElementById(id); }

function log(list, text, cls) {
  var li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  list.appendChild(li);
  while (list.children.length > 200) list.removeChild(list.firstChild);
  list.scrollTop = list.scrollHeight;
}

// ---- Echo ----
var echoSent = 0, echoReceived = 0; // the page's own echo socket, for the self-test
function startEcho() {
  var ws = new WebSocket(wsURL("/ws/echo"));
  ws.onopen = function () { $("echo-state").textContent = "open"; };
  ws.onclose = function (e) { $("echo-state").textContent = "closed (" + e.code + ")"; };
  ws.onmessage = function (e) {
    echoReceived++;
    log($("echo-log"), "< " + (typeof e.data === "string" ? e.data : "(binary)"));
  };
  $("echo-form").onsubmit = function (ev) {
    ev.preventDefault();
    var v = $("echo-input").value;
    if (ws.readyState !== WebSocket.OPEN || v === "") return;
    ws.send(v);
    echoSent++;
    log($("echo-log"), "> " + v, "out");
    $("echo-input").value = "";
  };
}

// ---- Chat ----
var chat = null;
function joinChat() {
  if (chat) chat.close(1000, "leaving");
  var q = "?room=" + encodeURIComponent($("chat-room").value || "lobby");
  var nick = $("chat-nick").value;
  if (nick) q += "&nick=" + encodeURIComponent(nick);
  var ws = new WebSocket(wsURL("/ws/chat" + q));
  chat = ws;
  $("chat-state").textContent = "joining";
  ws.onopen = function () {
    $("chat-state").textContent = "in " + ($("chat-room").value || "lobby");
    $("chat-input").disabled = $("chat-send").disabled = false;
  };
  ws.onclose = function (e) {
    if (chat !== ws) return;
    $("chat-state").textContent = "closed (" + e.code + ")";
    $("chat-input").disabled = $("chat-send").disabled = true;
  };
  ws.onmessage = function (e) { log($("chat-log"), e.data); };
}
function startChat() {
  $("chat-join").onsubmit = function (ev) { ev.preventDefault(); joinChat(); };
  $("chat-form").onsubmit = function (ev) {
    ev.preventDefault();
    var v = $("chat-input").value;
    if (!chat || chat.readyState !== WebSocket.OPEN || v === "") return;
    chat.send(v);
    $("chat-input").value = "";
  };
}

// ---- Push ----
function startPush() {
  var ws = new WebSocket(wsURL("/ws/push"));
  ws.onopen = function () { $("push-state").textContent = "live"; };
  ws.onclose = function (e) { $("push-state").textContent = "closed (" + e.code + ")"; };
  ws.onmessage = function (e) {
    var r;
    try { r = JSON.parse(e.data); } catch (err) { log($("push-log"), "bad reading: " + e.data, "err"); return; }
    $("temp").textContent = r.temp.toFixed(1);
    $("push-seq").textContent = r.seq;
    $("push-time").textContent = new Date(r.t).toLocaleTimeString();
    log($("push-log"), "#" + r.seq + "  " + r.temp.toFixed(1) + " \u00b0C  " + r.t);
  };
}

// ---- Self-test ----

// open resolves with a socket once it is open; it rejects on error or close.
function open(path) {
  return new Promise(function (resolve, reject) {
    var ws = new WebSocket(wsURL(path));
    ws.binaryType = "arraybuffer";
    ws.inbox = [];
    ws.waiters = [];
    ws.onmessage = function (e) {
      ws.inbox.push(e.data);
      ws.waiters.slice().forEach(function (w) { w(); });
    };
    ws.onopen = function () { resolve(ws); };
    ws.onerror = function () { reject(new Error(path + ": error")); };
    ws.onclose = function (e) {
      reject(new Error(path + ": closed " + e.code));
      ws.waiters.slice().forEach(function (w) { w(); });
    };
  });
}

// next resolves with the first message (past index from) that pred accepts.
function next(ws, pred, from) {
  return new Promise(function (resolve, reject) {
    var i = from || 0;
    function check() {
      for (; i < ws.inbox.length; i++) {
        if (pred(ws.inbox[i])) {
          ws.waiters.splice(ws.waiters.indexOf(check), 1);
          resolve(ws.inbox[i]);
          return;
        }
      }
      if (ws.readyState >= WebSocket.CLOSING) {
        ws.waiters.splice(ws.waiters.indexOf(check), 1);
        reject(new Error("closed before the expected message"));
      }
    }
    ws.waiters.push(check);
    check();
  });
}

function withTimeout(p, ms, what) {
  return Promise.race([p, new Promise(function (_, reject) {
    setTimeout(function () { reject(new Error(what + ": timed out")); }, ms);
  })]);
}

// verdict is a test's "ok", marked "+deflate" when its sockets negotiated
// permessage-deflate (with a server run with -compress).
function verdict(sockets) {
  var all = sockets.every(function (ws) { return /permessage-deflate/.test(ws.extensions); });
  return all ? "ok+deflate" : "ok";
}

// longText is a message long enough to be sent compressed.
function longText(word, n) {
  var s = "";
  while (s.length < n) s += word + " " + s.length + " ";
  return s;
}

function testEcho() {
  return open("/ws/echo").then(function (ws) {
    var text = "h\u00e9llo \u2713 " + Math.random();
    var bin = new Uint8Array([0, 1, 2, 250, 255]);
    var long = longText("\u00e9cho", 4000);
    ws.send(text);
    ws.send(bin.buffer);
    ws.send(long);
    return next(ws, function (m) { return m === text; }).then(function () {
      return next(ws, function (m) {
        if (typeof m === "string") return false;
        var got = new Uint8Array(m);
        return got.length === bin.length && got.every(function (b, i) { return b === bin[i]; });
      });
    }).then(function () {
      return next(ws, function (m) { return m === long; });
    }).then(function () {
      ws.close(1000);
      // The page's own echo socket sent nothing, so it must have got nothing:
      // replies go to their sender only.
      if (echoReceived > echoSent) throw new Error("echo reached another connection");
      return verdict([ws]);
    });
  });
}

function testChat() {
  var room = "selftest-" + Math.floor(Math.random() * 1e9);
  return open("/ws/chat?room=" + room + "&nick=alice").then(function (a) {
    return next(a, function (m) { return m === "* alice joined"; }).then(function () {
      return open("/ws/chat?room=" + room + "&nick=bob");
    }).then(function (b) {
      // alice sees bob arrive: both are members now.
      return next(a, function (m) { return m === "* bob joined"; }).then(function () {
        a.send("hi bob");
        return Promise.all([
          next(a, function (m) { return m === "alice: hi bob"; }),
          next(b, function (m) { return m === "alice: hi bob"; })
        ]);
      }).then(function () {
        var long = longText("hi alice", 2000);
        b.send(long);
        return Promise.all([
          next(a, function (m) { return m === "bob: " + long; }),
          next(b, function (m) { return m === "bob: " + long; })
        ]);
      }).then(function () {
        var v = verdict([a, b]);
        b.close(1000);
        return next(a, function (m) { return m === "* bob left"; }).then(function () { return v; });
      }).then(function (v) { a.close(1000); return v; });
    });
  });
}

function testPush() {
  return open("/ws/push").then(function (ws) {
    function reading(m) {
      var r = JSON.parse(m);
      if (typeof r.temp !== "number" || typeof r.seq !== "number" || isNaN(Date.parse(r.t))) {
        throw new Error("bad reading " + m);
      }
      return r;
    }
    return next(ws, function () { return true; }).then(function (m1) {
      var first = reading(m1);
      return next(ws, function (m) { return reading(m).seq > first.seq; }).then(function () {
        ws.close(1000);
        return verdict([ws]);
      });
    });
  });
}

function selftest() {
  var box = $("selftest");
  box.style.display = "block";
  box.dataset.status = "running";
  box.textContent = "SELFTEST running";
  var names = ["echo", "chat", "push"];
  var runs = [testEcho, testChat, testPush].map(function (fn, i) {
    return withTimeout(fn(), 15000, names[i]).then(
      function (v) { return names[i] + "=" + v; },
      function (err) { return names[i] + "=FAIL(" + (err && err.message || err) + ")"; });
  });
  Promise.all(runs).then(function (parts) {
    var pass = parts.every(function (p) { return /=ok(\+deflate)?$/.test(p); });
    var text = "SELFTEST " + (pass ? "PASS" : "FAIL") + " " + parts.join(" ");
    box.textContent = text;
    box.dataset.status = pass ? "pass" : "fail";
    box.className = pass ? "pass" : "fail";
    document.title = text;
    var report = new URLSearchParams(location.search).get("report");
    if (report && report.charAt(0) === "/") {
      // In the query, not a body: the server's HTTP side reads no request bodies.
      fetch(report + "?result=" + encodeURIComponent(text)).catch(function () {});
    }
  });
}

startEcho();
startChat();
startPush();
if (new URLSearchParams(location.search).get("selftest") === "1") selftest();
