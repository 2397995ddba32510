// wsloop developer console: plain browser JavaScript, no libraries.
// With ?selftest=PATH[,PATH...]&report=URL the page drives its own form for
// each listed endpoint (select, connect, send, expect the echo, close) and
// reports the outcome by fetching URL?result=OUTCOME.
"use strict";

function $(id) { return document.getElementById(id); }

var ws = null;

function log(text, cls) {
  var li = document.createElement("li");
  var t = document.createElement("span");
  t.className = "t";
  t.textContent = new Date().toLocaleTimeString();
  li.appendChild(t);
  li.appendChild(document.createTextNode(text));
  li.className = cls;
  li.dataset.text = text;
  var list = $("log");
  list.appendChild(li);
  while (list.children.length > 500) list.removeChild(list.firstChild);
  list.scrollTop = list.scrollHeight;
}

function hex(bytes) {
  return Array.prototype.map.call(bytes, function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join(" ");
}

function setOpen(open) {
  $("message").disabled = $("send-btn").disabled = !open;
  $("close-btn").disabled = !ws;
  $("connect-btn").textContent = ws ? "Reconnect" : "Connect";
}

function connect() {
  var path = $("path").value.trim();
  if (path === "") return;
  if (path.charAt(0) !== "/") path = "/" + path;
  if (ws) ws.close(1000, "reconnecting");
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  var sock = new WebSocket(url);
  sock.binaryType = "arraybuffer";
  ws = sock;
  $("state").textContent = "connecting to " + path;
  log("* connecting to " + url, "info");
  sock.onopen = function () {
    if (ws !== sock) return;
    $("state").textContent = "open: " + path;
    log("* open", "info");
    setOpen(true);
    $("message").focus();
  };
  sock.onmessage = function (e) {
    if (typeof e.data === "string") log("< " + e.data, "in");
    else { var b = new Uint8Array(e.data); log("< [" + b.length + " bytes] " + hex(b), "in"); }
  };
  sock.onerror = function () { if (ws === sock) log("* error (the close code follows)", "err"); };
  sock.onclose = function (e) {
    log("* closed " + e.code + (e.reason ? " " + e.reason : ""), e.code === 1000 || e.code === 1005 ? "info" : "err");
    if (ws !== sock) return;
    ws = null;
    $("state").textContent = "closed (" + e.code + ")";
    setOpen(false);
  };
  setOpen(false);
}

function send() {
  var v = $("message").value;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  if ($("binary").checked) {
    var parts = v.trim() === "" ? [] : v.trim().split(/[\s,]+/);
    var bytes = new Uint8Array(parts.length);
    for (var i = 0; i < parts.length; i++) {
      var n = parseInt(parts[i], 16);
      if (!/^[0-9a-fA-F]{1,2}$/.test(parts[i]) || isNaN(n)) { log("* not hex bytes: " + parts[i], "err"); return false; }
      bytes[i] = n;
    }
    ws.send(bytes.buffer);
    log("> [" + bytes.length + " bytes] " + hex(bytes), "out");
  } else {
    ws.send(v);
    log("> " + v, "out");
  }
  $("message").value = "";
  return true;
}

function loadEndpoints() {
  return fetch("endpoints.json").then(function (r) { return r.json(); }).then(function (list) {
    list.forEach(function (ep) {
      var o = document.createElement("option");
      o.value = ep.path;
      o.textContent = ep.path + "  (" + ep.kind + ": " + ep.program + ")";
      $("endpoint").appendChild(o);
    });
    if (list.length > 0 && $("path").value === "") {
      $("endpoint").value = list[0].path;
      $("path").value = list[0].path;
    }
  }).catch(function (err) { log("* could not load the endpoint list: " + err, "err"); });
}

$("endpoint").onchange = function () { if ($("endpoint").value) $("path").value = $("endpoint").value; };
$("connect").onsubmit = function (ev) { ev.preventDefault(); connect(); };
$("close-btn").onclick = function () { if (ws) ws.close(1000, "closed in the console"); };
$("send").onsubmit = function (ev) { ev.preventDefault(); send(); };

// ---- Self-test: the page drives its own controls ----

function waitFor(pred, ms, what) {
  return new Promise(function (resolve, reject) {
    var end = Date.now() + ms;
    (function poll() {
      var v = pred();
      if (v) return resolve(v);
      if (Date.now() > end) return reject(new Error(what + ": timed out"));
      setTimeout(poll, 20);
    })();
  });
}

function logHas(cls, text, from) {
  var items = $("log").children;
  for (var i = from; i < items.length; i++) {
    if (items[i].className === cls && items[i].dataset.text === text) return true;
  }
  return false;
}

function testEndpoint(path) {
  var sel = $("endpoint");
  if (!Array.prototype.some.call(sel.options, function (o) { return o.value === path; })) {
    return Promise.reject(new Error("not in the endpoint list"));
  }
  sel.value = path;
  sel.onchange();
  var from = $("log").children.length;
  $("connect-btn").click();
  var msg = "console says hi \u2713 " + Math.floor(Math.random() * 1e9);
  return waitFor(function () { return !$("message").disabled; }, 10000, "open").then(function () {
    $("message").value = msg;
    $("send-btn").click();
    return waitFor(function () { return logHas("in", "< " + msg, from); }, 10000, "echo");
  }).then(function () {
    $("close-btn").click();
    return waitFor(function () { return ws === null; }, 10000, "close");
  }).then(function () { return "ok"; });
}

function selftest(paths) {
  var box = $("selftest");
  box.style.display = "block";
  box.textContent = "CONSOLE running";
  var results = [];
  var chain = loadEndpoints();
  paths.forEach(function (p) {
    chain = chain.then(function () {
      return testEndpoint(p).then(function (v) { results.push(p + "=" + v); },
        function (err) { results.push(p + "=FAIL(" + (err && err.message || err) + ")"); });
    });
  });
  chain.then(function () {
    var pass = results.length > 0 && results.every(function (r) { return /=ok$/.test(r); });
    var text = "CONSOLE " + (pass ? "PASS" : "FAIL") + " " + results.join(" ");
    box.textContent = text;
    box.className = pass ? "pass" : "fail";
    document.title = text;
    var report = new URLSearchParams(location.search).get("report");
    if (report && report.charAt(0) === "/") fetch(report + "?result=" + encodeURIComponent(text)).catch(function () {});
  });
}

var params = new URLSearchParams(location.search);
if (params.get("selftest")) selftest(params.get("selftest").split(","));
else loadEndpoints();
