// wsloop demo page: plain browser JavaScript, no libraries.
// With ?selftest=1 the page exercises echo, chat and push by itself and shows
// the outcome in #selftest (and the title); with &report=PATH it also GETs
// PATH?result=OUTCOME (the end-to-end test reads it); &bridged=P1,P2 adds a
// test that each of those bridged program paths echoes a line.
//
// When wsloop bridges programs and serves its console (-exec or -backend
// with -console), the page lists those paths (console/endpoints.json) in a
// Programs panel to talk to them.
//
// Chat and push speak WebSocket, or, when the upgrade fails (a proxy or a
// network that blocks it), fall back to Server-Sent Events down and POST up
// on the same rooms and feed (/sse/...), as socket.io and SockJS degrade.
// ?transport=sse forces the fallback, ?transport=ws forbids it.
"use strict";

var params = new URLSearchParams(location.search);
var forced = params.get("transport"); // "ws", "sse" or null: try WebSocket, fall back
var useSSE = forced === "sse";

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

function showTransport() {
  $("transport").textContent = useSSE ? "Server-Sent Events + POST (fallback)" : "WebSocket";
}

// ---- Transport ----

// channel connects to an application, "chat" or "push", with the query
// string q ("" or "?..."). h has onopen(ch), onmessage(text), onclose(why)
// and, optionally, onstate(text). The channel has send(text) (chat), close()
// and transport ("ws" or "sse"); a WebSocket that fails before it opens is
// replaced by the fallback, for this channel and every later one.
function channel(kind, q, h) {
  var ch = { transport: "ws", closed: false };
  if (useSSE) return sseChannel(ch, kind, q, h);
  var ws = new WebSocket(wsURL("/ws/" + kind + q));
  var opened = false;
  ch.send = function (text) { ws.send(text); };
  ch.ready = function () { return ws.readyState === WebSocket.OPEN; };
  ch.close = function () { ch.closed = true; ws.close(1000); };
  ws.onopen = function () { opened = true; ch.extensions = ws.extensions; h.onopen(ch); };
  ws.onmessage = function (e) { h.onmessage(e.data); };
  ws.onclose = function (e) {
    if (!opened && forced !== "ws" && !ch.closed) {
      useSSE = true; // the upgrade is blocked here: degrade
      showTransport();
      sseChannel(ch, kind, q, h);
      return;
    }
    ch.closed = true;
    h.onclose("closed (" + e.code + ")");
  };
  return ch;
}

// sseChannel makes ch an event stream of /sse/KIND; a chat stream's first
// event ("hello") gives the id its POSTs are said as. The browser
// reconnects a dropped stream by itself, with Last-Event-ID: the server
// sends what was missed, or a "gap" event when it cannot.
function sseChannel(ch, kind, q, h) {
  var es = new EventSource("/sse/" + kind + q);
  var id = null, opened = false;
  ch.transport = "sse";
  ch.send = function (text) {
    return fetch("/sse/chat/send?id=" + encodeURIComponent(id), { method: "POST", body: text })
      .then(function (r) { if (!r.ok) throw new Error("POST: " + r.status); });
  };
  ch.ready = function () { return es.readyState === EventSource.OPEN && (kind !== "chat" || id !== null); };
  ch.close = function () {
    if (ch.closed) return;
    ch.closed = true;
    es.close();
    h.onclose("closed");
  };
  function open() {
    if (h.onstate) h.onstate("");
    if (!opened) { opened = true; h.onopen(ch); }
  }
  es.addEventListener("hello", function (e) { id = JSON.parse(e.data).id; open(); });
  es.addEventListener("gap", function () { h.onmessage("(some messages were missed)"); });
  es.onopen = function () { if (kind !== "chat") open(); };
  es.onmessage = function (e) { h.onmessage(e.data); };
  es.onerror = function () {
    if (es.readyState === EventSource.CLOSED) {
      if (!ch.closed) { ch.closed = true; h.onclose("closed"); }
    } else if (h.onstate) {
      h.onstate("reconnecting");
    }
  };
  return ch;
}

// ---- Echo ----
var echoSent = 0, echoReceived = 0; // the page's own echo socket, for the self-test
function startEcho() {
  if (useSSE) { $("echo-state").textContent = "WebSocket only"; return; }
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
  if (chat) chat.close();
  var room = $("chat-room").value || "lobby";
  var q = "?room=" + encodeURIComponent(room);
  var nick = $("chat-nick").value;
  if (nick) q += "&nick=" + encodeURIComponent(nick);
  $("chat-state").textContent = "joining";
  var me = channel("chat", q, {
    onopen: function () {
      $("chat-state").textContent = "in " + room + " (" + me.transport + ")";
      $("chat-input").disabled = $("chat-send").disabled = false;
    },
    onmessage: function (text) { log($("chat-log"), text); },
    onstate: function (s) { if (s) $("chat-state").textContent = s; },
    onclose: function (why) {
      if (chat !== me) return;
      $("chat-state").textContent = why;
      $("chat-input").disabled = $("chat-send").disabled = true;
    }
  });
  chat = me;
}
function startChat() {
  $("chat-join").onsubmit = function (ev) { ev.preventDefault(); joinChat(); };
  $("chat-form").onsubmit = function (ev) {
    ev.preventDefault();
    var v = $("chat-input").value;
    if (!chat || !chat.ready() || v === "") return;
    chat.send(v);
    $("chat-input").value = "";
  };
}

// ---- Push ----
function startPush() {
  var feed = channel("push", "", {
    onopen: function () { $("push-state").textContent = "live (" + feed.transport + ")"; },
    onstate: function (s) { $("push-state").textContent = s || "live (" + feed.transport + ")"; },
    onclose: function (why) { $("push-state").textContent = why; },
    onmessage: function (text) {
      var r;
      try { r = JSON.parse(text); } catch (err) { log($("push-log"), text, "err"); return; }
      $("temp").textContent = r.temp.toFixed(1);
      $("push-seq").textContent = r.seq;
      $("push-time").textContent = new Date(r.t).toLocaleTimeString();
      log($("push-log"), "#" + r.seq + "  " + r.temp.toFixed(1) + " \u00b0C  " + r.t);
    }
  });
}

// ---- Programs (bridged paths) ----
function startBridged() {
  fetch("console/endpoints.json").then(function (r) {
    return r.ok ? r.json() : [];
  }).then(function (list) {
    if (!Array.isArray(list) || list.length === 0) return;
    var sel = $("bridged-path");
    list.forEach(function (e) {
      var o = document.createElement("option");
      o.value = e.path;
      o.textContent = e.path + " (" + (e.kind === "backend" ? "shared backend" : "a program per connection") + ": " + e.program + ")";
      sel.appendChild(o);
    });
    $("bridged").hidden = false;
    var ws = null;
    function enable(on) { $("bridged-input").disabled = !on; $("bridged-send").disabled = !on; }
    $("bridged-open").onsubmit = function (ev) {
      ev.preventDefault();
      if (ws) ws.close(1000);
      enable(false);
      var path = sel.value;
      var sock = new WebSocket(wsURL(path));
      ws = sock;
      $("bridged-state").textContent = "connecting to " + path;
      sock.onopen = function () { $("bridged-state").textContent = "open: " + path; enable(true); };
      sock.onmessage = function (e) { log($("bridged-log"), "< " + (typeof e.data === "string" ? e.data : "(binary)")); };
      sock.onclose = function (e) {
        if (ws !== sock) return;
        $("bridged-state").textContent = "closed (" + e.code + (e.reason ? ": " + e.reason : "") + ")";
        enable(false);
      };
    };
    $("bridged-form").onsubmit = function (ev) {
      ev.preventDefault();
      var v = $("bridged-input").value;
      if (!ws || ws.readyState !== WebSocket.OPEN || v === "") return;
      ws.send(v);
      log($("bridged-log"), "> " + v, "out");
      $("bridged-input").value = "";
    };
  }).catch(function () {});
}

// ---- Self-test ----

// open resolves with an echo WebSocket once it is open; it rejects on error or close.
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
      ws.closed = true;
      reject(new Error(path + ": closed " + e.code));
      ws.waiters.slice().forEach(function (w) { w(); });
    };
  });
}

// openChannel resolves with a channel (chat or push) once it is open.
function openChannel(kind, q) {
  return new Promise(function (resolve, reject) {
    var box = { inbox: [], waiters: [] };
    function wake() { box.waiters.slice().forEach(function (w) { w(); }); }
    var ch = channel(kind, q, {
      onopen: function (c) { resolve(c); },
      onmessage: function (text) { box.inbox.push(text); wake(); },
      onclose: function (why) { reject(new Error(kind + ": " + why)); wake(); }
    });
    ch.inbox = box.inbox;
    ch.waiters = box.waiters;
  });
}

// next resolves with the first message (past index from) that pred accepts.
function next(ch, pred, from) {
  return new Promise(function (resolve, reject) {
    var i = from || 0;
    function check() {
      for (; i < ch.inbox.length; i++) {
        if (pred(ch.inbox[i])) {
          ch.waiters.splice(ch.waiters.indexOf(check), 1);
          resolve(ch.inbox[i]);
          return;
        }
      }
      if (ch.closed || ch.readyState >= WebSocket.CLOSING) {
        ch.waiters.splice(ch.waiters.indexOf(check), 1);
        reject(new Error("closed before the expected message"));
      }
    }
    ch.waiters.push(check);
    check();
  });
}

function withTimeout(p, ms, what) {
  return Promise.race([p, new Promise(function (_, reject) {
    setTimeout(function () { reject(new Error(what + ": timed out")); }, ms);
  })]);
}

// verdict is a test's "ok", marked "+deflate" when its sockets negotiated
// permessage-deflate (with a server run with -compress); an event stream
// has no extensions.
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
  if (useSSE) return Promise.resolve("skip"); // echo is WebSocket only
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
  var room = "?room=selftest-" + Math.floor(Math.random() * 1e9);
  return openChannel("chat", room + "&nick=alice").then(function (a) {
    return next(a, function (m) { return m === "* alice joined"; }).then(function () {
      return openChannel("chat", room + "&nick=bob");
    }).then(function (b) {
      // alice sees bob arrive: both are members now.
      return next(a, function (m) { return m === "* bob joined"; }).then(function () {
        a.send("hi bob \u2713\nline two");
        return Promise.all([
          next(a, function (m) { return m === "alice: hi bob \u2713\nline two"; }),
          next(b, function (m) { return m === "alice: hi bob \u2713\nline two"; })
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
        b.close();
        return next(a, function (m) { return m === "* bob left"; }).then(function () { return v; });
      }).then(function (v) {
        if (a.transport !== (useSSE ? "sse" : "ws") || b.transport !== a.transport) {
          throw new Error("transports " + a.transport + ", " + b.transport);
        }
        a.close();
        return v;
      });
    });
  });
}

function testPush() {
  return openChannel("push", "").then(function (feed) {
    function reading(m) {
      var r = JSON.parse(m);
      if (typeof r.temp !== "number" || typeof r.seq !== "number" || isNaN(Date.parse(r.t))) {
        throw new Error("bad reading " + m);
      }
      return r;
    }
    return next(feed, function () { return true; }).then(function (m1) {
      var first = reading(m1);
      return next(feed, function (m) { return reading(m).seq > first.seq; }).then(function () {
        var v = verdict([feed]);
        feed.close();
        return v;
      });
    });
  });
}

// testBridged checks that each path of ?bridged= is listed in the Programs
// panel and echoes a line sent from the panel's own form.
function testBridged(paths) {
  return paths.reduce(function (prev, path) {
    return prev.then(function () {
      return waitFor(function () {
        return Array.prototype.some.call($("bridged-path").options, function (o) { return o.value === path; });
      }, path + " not listed").then(function () {
        $("bridged-path").value = path;
        $("bridged-open").requestSubmit();
        return waitFor(function () { return !$("bridged-input").disabled; }, path + ": not open");
      }).then(function () {
        var line = "line for " + path + " " + Math.random();
        $("bridged-input").value = line;
        $("bridged-form").requestSubmit();
        return waitFor(function () {
          return Array.prototype.some.call($("bridged-log").children, function (li) { return li.textContent === "< " + line; });
        }, path + ": no echo");
      });
    });
  }, Promise.resolve()).then(function () { return "ok"; });
}

// waitFor resolves once cond() holds, polling; it rejects after 10 s.
function waitFor(cond, what) {
  return new Promise(function (resolve, reject) {
    var start = Date.now();
    (function poll() {
      if (cond()) return resolve();
      if (Date.now() - start > 10000) return reject(new Error(what));
      setTimeout(poll, 50);
    })();
  });
}

// detect decides the transport before the tests run: WebSocket unless it
// is forbidden here (or ?transport says).
function detect() {
  if (forced) return Promise.resolve();
  return open("/ws/echo").then(function (ws) { ws.close(1000); }, function () {
    useSSE = true;
    showTransport();
  });
}

function selftest() {
  var box = $("selftest");
  box.style.display = "block";
  box.dataset.status = "running";
  box.textContent = "SELFTEST running";
  var names = ["echo", "chat", "push"];
  var tests = [testEcho, testChat, testPush];
  var bridged = (params.get("bridged") || "").split(",").filter(function (p) { return p.charAt(0) === "/"; });
  if (bridged.length > 0) {
    names.push("bridged");
    tests.push(function () { return testBridged(bridged); });
  }
  detect().then(function () {
    var runs = tests.map(function (fn, i) {
      return withTimeout(fn(), 15000, names[i]).then(
        function (v) { return names[i] + "=" + v; },
        function (err) { return names[i] + "=FAIL(" + (err && err.message || err) + ")"; });
    });
    return Promise.all(runs);
  }).then(function (parts) {
    var pass = parts.every(function (p) { return /=(ok(\+deflate)?|skip)$/.test(p); });
    var text = "SELFTEST " + (pass ? "PASS" : "FAIL") + " transport=" + (useSSE ? "sse" : "ws") + " " + parts.join(" ");
    box.textContent = text;
    box.dataset.status = pass ? "pass" : "fail";
    box.className = pass ? "pass" : "fail";
    document.title = text;
    var report = params.get("report");
    if (report && report.charAt(0) === "/") {
      fetch(report + "?result=" + encodeURIComponent(text)).catch(function () {});
    }
  });
}

showTransport();
startEcho();
startChat();
startPush();
startBridged();
if (params.get("selftest") === "1") selftest();
