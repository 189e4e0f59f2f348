// StockPulse live dashboard: a snapshot over REST plus events over WebSocket, reconciled by per-SKU version.
//
// Rules that keep the screen right: events that arrive while a snapshot is loading are buffered and
// applied afterwards if newer; an event applies only when its version is newer than the row's; a
// version gap (an event was lost) refetches that SKU; every (re)connection reloads the snapshot. When
// the server says its stream was "interrupted" (events may be lost) the page is not live until the
// "resync" that follows, which reloads the snapshot as a reconnection does.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("dashboard-config").textContent);
  var S = config.strings;
  var rows = new Map();        // code -> {data, tr}
  var buffer = null;           // events held while a snapshot loads
  var interrupted = false;     // the server said events may be lost; "resync" (or a new socket) ends it
  var ws = null;
  var attempt = 0;
  var lastMessageAt = 0;
  var reservationTimes = [];
  var selectedCode = null;
  var chartPoints = [];
  var chartProjection = null;
  var searchRanks = null;      // while searching: code -> rank (0 = best) from the server's search
  var searchSeq = 0;
  var searchTimer = null;

  var els = {
    tbody: document.getElementById("stock-rows"),
    noRows: document.getElementById("no-rows"),
    conn: document.getElementById("conn"),
    connText: document.getElementById("conn-text"),
    search: document.getElementById("search"),
    category: document.getElementById("category"),
    onlyLow: document.getElementById("only-low"),
    feed: document.getElementById("feed"),
    rpm: document.getElementById("count-rpm"),
    out: document.getElementById("count-out"),
    low: document.getElementById("count-low"),
    chart: document.getElementById("chart"),
    chartCode: document.getElementById("chart-code"),
  };

  function setConnection(state, text) {
    els.conn.className = "conn conn-" + state;
    els.conn.dataset.state = state;
    els.connText.textContent = text;
  }

  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { var e = new Error("HTTP " + r.status); e.status = r.status; throw e; }
      return r.json();
    });
  }

  // ---- table ----
  function stateOf(d) {
    if (d.available <= 0) return "out";
    if (d.available < d.threshold) return "low";
    return "ok";
  }

  function cell(tr, name, value) {
    var td = tr.querySelector('[data-col="' + name + '"]');
    var text = String(value);
    if (td.textContent !== text) td.textContent = text;
  }

  function renderRow(entry, flash) {
    var d = entry.data, tr = entry.tr;
    cell(tr, "code", d.code);
    cell(tr, "name", d.name);
    cell(tr, "on_hand", d.on_hand);
    cell(tr, "reserved", d.reserved);
    cell(tr, "available", d.available);
    cell(tr, "threshold", d.threshold);
    tr.dataset.version = d.version;
    tr.dataset.state = stateOf(d);
    tr.title = d.available <= 0 ? S.out : (d.available < d.threshold ? S.low : "");
    applyFilter(entry);
    if (flash) {
      tr.classList.remove("flash");
      void tr.offsetWidth; // restart the animation
      tr.classList.add("flash");
    }
  }

  function newRow(d) {
    var tr = document.createElement("tr");
    tr.dataset.code = d.code;
    ["code", "name", "on_hand", "reserved", "available", "threshold"].forEach(function (name) {
      var td = document.createElement("td");
      td.dataset.col = name;
      if (name !== "code" && name !== "name") td.className = "num";
      tr.appendChild(td);
    });
    tr.addEventListener("click", function () { selectSku(d.code); });
    return tr;
  }

  function insertSorted(tr, code) {
    var next = null;
    rows.forEach(function (e, c) { if (c > code && (!next || c < next.dataset.code)) next = e.tr; });
    els.tbody.insertBefore(tr, next);
  }

  function upsert(d, flash) {
    var entry = rows.get(d.code);
    if (!entry) {
      entry = { data: d, tr: newRow(d) };
      insertSorted(entry.tr, d.code);
      rows.set(d.code, entry);
    } else {
      entry.data = Object.assign({}, entry.data, d);
    }
    renderRow(entry, flash);
  }

  function applyFilter(entry) {
    var cat = els.category.value.toLowerCase();
    var d = entry.data;
    var visible = (!searchRanks || searchRanks.has(d.code)) &&
      (!cat || (d.category || "").toLowerCase() === cat) &&
      (!els.onlyLow.checked || stateOf(d) !== "ok");
    entry.tr.hidden = !visible;
  }

  function refilter() {
    rows.forEach(applyFilter);
    updateCounters();
  }

  // The search box asks the server, which finds names without accents or with typos ("cafe" finds
  // "Café"), codes and unified codes (barcodes), best match first; matching rows are shown in that order.
  function orderRows() {
    var entries = Array.from(rows.values());
    entries.sort(searchRanks
      ? function (a, b) { return (searchRanks.has(a.data.code) ? searchRanks.get(a.data.code) : 1e9) -
                                 (searchRanks.has(b.data.code) ? searchRanks.get(b.data.code) : 1e9) ||
                                 (a.data.code < b.data.code ? -1 : 1); }
      : function (a, b) { return a.data.code < b.data.code ? -1 : 1; });
    entries.forEach(function (e) { els.tbody.appendChild(e.tr); });
  }

  function search() {
    var q = els.search.value.trim();
    var seq = ++searchSeq;
    if (!q) { searchRanks = null; orderRows(); refilter(); return; }
    fetchJson(config.snapshotUrl + "?search=" + encodeURIComponent(q)).then(function (body) {
      if (seq !== searchSeq) return;  // a later keystroke already asked again
      searchRanks = new Map(body.items.map(function (item, index) { return [item.code, index]; }));
      orderRows();
      refilter();
    }).catch(function () { /* the filter stays as it was; the next keystroke asks again */ });
  }

  function searchSoon() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 200);
  }

  function updateCounters() {
    var out = 0, low = 0, shown = 0;
    rows.forEach(function (e) {
      var s = stateOf(e.data);
      if (s === "out") out++; else if (s === "low") low++;
      if (!e.tr.hidden) shown++;
    });
    els.out.textContent = out;
    els.low.textContent = low;
    els.noRows.hidden = shown > 0 || rows.size === 0;
    var cutoff = Date.now() - 60000;
    reservationTimes = reservationTimes.filter(function (t) { return t >= cutoff; });
    els.rpm.textContent = reservationTimes.length;
  }

  // ---- snapshot and events ----
  function loadSnapshot(codes) {
    var url = config.snapshotUrl + (codes ? "?codes=" + encodeURIComponent(codes.join(",")) : "");
    return fetchJson(url).then(function (body) {
      var seen = new Set();
      body.items.forEach(function (item) {
        seen.add(item.code);
        var current = rows.get(item.code);
        // A snapshot row may be older than an event already applied: keep the newer one.
        if (!current || item.version >= current.data.version) upsert(item, !!current && item.version > current.data.version);
      });
      if (!codes) {
        rows.forEach(function (e, code) { if (!seen.has(code)) { e.tr.remove(); rows.delete(code); } });
      }
      updateCounters();
    });
  }

  function applyStock(ev) {
    var entry = rows.get(ev.code);
    if (!entry) { upsert(ev, true); updateCounters(); return; }
    var have = entry.data.version;
    if (ev.version <= have) return; // stale or duplicate
    var gap = ev.version > have + 1;
    upsert(ev, true);
    updateCounters();
    if (selectedCode === ev.code) { chartPoints.push({ t: new Date(ev.at), v: ev.on_hand }); drawChart(); }
    if (gap) loadSnapshot([ev.code]).catch(function () {});
  }

  function feedItem(ev) {
    var li = document.createElement("li");
    li.className = "feed-" + ev.type.split(".")[0] + " feed-" + ev.type.replace(".", "-");
    var time = new Date(ev.at || Date.now()).toLocaleTimeString();
    var label = S[ev.type] || ev.type;
    var detail = "";
    if (ev.lines) detail = ev.lines.map(function (l) { return l.code + " ×" + l.quantity; }).join(", ");
    else if (ev.code) detail = ev.code + (ev.name ? " · " + ev.name : "") + (ev.available !== undefined ? " (" + ev.available + ")" : "");
    if (ev.stockout_date) detail += " → " + ev.stockout_date;
    li.innerHTML = "<time></time> <strong></strong> <span></span>";
    li.children[0].textContent = time;
    li.children[1].textContent = label;
    li.children[2].textContent = detail;
    els.feed.insertBefore(li, els.feed.firstChild);
    while (els.feed.children.length > 100) els.feed.removeChild(els.feed.lastChild);
  }

  function handleEvent(ev) {
    if (ev.type === "stock.changed") { applyStock(ev); return; }
    if (ev.type === "reservation.created") { reservationTimes.push(Date.now()); updateCounters(); }
    feedItem(ev);
  }

  function onMessage(msg) {
    lastMessageAt = Date.now();
    var ev;
    try { ev = JSON.parse(msg.data); } catch (e) { return; }
    if (ev.type === "hello" || ev.type === "resync") { interrupted = false; synchronise(); return; }
    if (ev.type === "interrupted") { interrupted = true; setConnection("offline", S.interrupted); return; }
    if (ev.type === "heartbeat" || ev.type === "pong" || ev.type === "subscribed" || ev.type === "error") return;
    if (buffer) { buffer.push(ev); return; }
    handleEvent(ev);
  }

  function synchronise() {
    // The socket is subscribed before "hello" arrives, so nothing between here and the snapshot is lost.
    buffer = [];
    setConnection("syncing", S.syncing);
    var socket = ws;
    loadSnapshot(null).then(function () {
      if (socket !== ws) return;
      var held = buffer; buffer = null;
      held.forEach(handleEvent);
      attempt = 0;
      if (interrupted) return; // not live until the "resync" that follows
      setConnection("live", S.live);
      document.body.dataset.synced = String(Date.now());
    }).catch(function () {
      buffer = null;
      if (socket === ws) socket.close(); // reconnect and try again
    });
  }

  // ---- connection ----
  function connect() {
    setConnection("connecting", S.connecting);
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + config.wsPath, ["stockpulse.v1"]);
    ws = socket;
    lastMessageAt = Date.now();
    socket.onmessage = function (msg) { if (socket === ws) onMessage(msg); };
    socket.onclose = function () {
      if (socket === ws) { ws = null; buffer = null; interrupted = false; scheduleReconnect(); }
    };
  }

  function scheduleReconnect() {
    // Exponential backoff with full jitter, so many dashboards do not reconnect in step after a restart.
    var ceiling = Math.min(30000, 500 * Math.pow(2, attempt));
    var delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    attempt++;
    setConnection("offline", S.reconnecting.replace("%(seconds)s", (delay / 1000).toFixed(1)));
    setTimeout(connect, delay);
  }

  function watchdog() {
    var limit = config.heartbeatSeconds * 2500;
    if (ws && ws.readyState === WebSocket.OPEN) {
      if (Date.now() - lastMessageAt > limit) { ws.close(); return; }
      ws.send(JSON.stringify({ action: "ping" }));
    }
    updateCounters();
  }

  // ---- chart ----
  function selectSku(code) {
    selectedCode = code;
    els.chartCode.textContent = code;
    rows.forEach(function (e, c) { e.tr.classList.toggle("selected", c === code); });
    chartPoints = []; chartProjection = null;
    var url = config.movementsUrl.replace("__CODE__", encodeURIComponent(code));
    fetchJson(url + "?page_size=200").then(function (body) {
      if (selectedCode !== code) return;
      var items = body.results || body.items || [];
      chartPoints = items.map(function (m) { return { t: new Date(m.created_at), v: m.on_hand_after }; })
        .sort(function (a, b) { return a.t - b.t; });
      var row = rows.get(code);
      if (row) chartPoints.push({ t: new Date(), v: row.data.on_hand });
      drawChart();
    }).catch(function () { drawChart(); });
    fetchJson(config.projectionUrl.replace("__CODE__", encodeURIComponent(code))).then(function (body) {
      if (selectedCode !== code) return;
      var items = Array.isArray(body) ? body : (body.days || body.items || body.results || []);
      chartProjection = items.map(function (p) { return { t: new Date(p.date + "T12:00:00"), v: p.balance }; });
      drawChart();
    }).catch(function () { /* no projection for this SKU (yet): draw history only */ });
  }

  function svg(name, attrs) {
    var el = document.createElementNS("http://www.w3.org/2000/svg", name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    return el;
  }

  function drawChart() {
    var W = 460, H = 200, P = 30;
    var all = chartPoints.concat(chartProjection || []);
    els.chart.textContent = "";
    if (!all.length) { var p = document.createElement("p"); p.className = "muted"; p.textContent = S.chart_empty; els.chart.appendChild(p); return; }
    var t0 = Math.min.apply(null, all.map(function (p) { return +p.t; }));
    var t1 = Math.max.apply(null, all.map(function (p) { return +p.t; }));
    var vmin = Math.min(0, Math.min.apply(null, all.map(function (p) { return p.v; })));
    var vmax = Math.max(1, Math.max.apply(null, all.map(function (p) { return p.v; })));
    var x = function (t) { return P + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - 2 * P); };
    var y = function (v) { return H - P - (v - vmin) / (vmax - vmin) * (H - 2 * P); };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": S.history });
    root.appendChild(svg("line", { x1: P, y1: y(0), x2: W - P, y2: y(0), class: "axis" }));
    root.appendChild(svg("text", { x: 2, y: y(vmax) + 4, class: "tick" })).textContent = vmax;
    root.appendChild(svg("text", { x: 2, y: y(0) + 4, class: "tick" })).textContent = 0;
    function line(points, cls) {
      if (!points.length) return;
      // Stock is a step function: it holds its value until the next movement.
      var d = "M" + x(+points[0].t).toFixed(1) + " " + y(points[0].v).toFixed(1);
      points.slice(1).forEach(function (p) { d += " H" + x(+p.t).toFixed(1) + " V" + y(p.v).toFixed(1); });
      root.appendChild(svg("path", { d: d, class: cls }));
    }
    line(chartPoints, "history");
    if (chartProjection && chartProjection.length) line(chartProjection, "projection");
    els.chart.appendChild(root);
    var legend = document.createElement("p");
    legend.className = "legend";
    legend.innerHTML = '<span class="key history"></span> ' + S.history +
      (chartProjection && chartProjection.length ? ' <span class="key projection"></span> ' + S.projection : "");
    els.chart.appendChild(legend);
  }

  els.search.addEventListener("input", searchSoon);
  els.category.addEventListener("change", refilter);
  els.onlyLow.addEventListener("change", refilter);
  setInterval(watchdog, Math.max(1000, config.heartbeatSeconds * 1000 / 3));
  // For operators and tests: drop the socket as a network failure would.
  window.stockpulse = { dropSocket: function () { if (ws) ws.close(); }, rows: rows };
  connect();
})();
