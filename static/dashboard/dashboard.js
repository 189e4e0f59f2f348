// StockPulse live dashboard: a snapshot over REST plus events over WebSocket, reconciled by per-SKU version.
// A row is one product at one location (its version counts per product and location); the page shows the
// locations chosen in its picker (kept in ?locations=), and asks the socket and the snapshot for those only.
//
// Rules that keep the screen right: events that arrive while a snapshot is loading are buffered and
// applied afterwards if newer; an event applies only when its version is newer than the row's; a
// version gap (an event was lost) refetches that SKU; every (re)connection reloads the snapshot. When
// the server says its stream was "interrupted" (events may be lost) the page is not live until the
// "resync" that follows, which reloads the snapshot as a reconnection does.
// The table sorts by any column (its header), the feed starts from the server's last events, and the
// chart draws a SKU's ledger and projection on a date/time axis.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("dashboard-config").textContent);
  var S = config.strings;
  var rows = new Map();        // "code@location" -> {data, tr}
  var selected = config.selected.slice();  // the locations shown
  var buffer = null;           // events held while a snapshot loads
  // Identities of the feed's lines: a batch already on its way when a socket subscribes may still reach
  // it, so an event the server's history already showed (or a live one met twice) is not shown again.
  // A line's identities leave with the line, so the set stays as small as the feed.
  var feedShown = new Set();
  var pastLoaded = false;      // the server's last events are asked for once the first socket is subscribed
  var interrupted = false;     // the server said events may be lost; "resync" (or a new socket) ends it
  var ws = null;
  var attempt = 0;
  var lastMessageAt = 0;
  var reservationTimes = [];
  var selectedKey = null;     // the row whose chart is drawn
  var chartPoints = [];
  var chartProjection = null;
  var searchRanks = null;      // while searching: code -> rank (0 = best) from the server's search
  var searchSeq = 0;
  var searchTimer = null;
  var sortCol = null;          // the column header last clicked, or null: by code (or search rank)
  var sortDir = 1;             // 1 ascending, -1 descending (a second click on the same header)
  var projectionCodes = new Set();  // SKUs whose projection columns are refetched soon
  var projectionTimer = null;
  var COLUMNS = ["code", "name", "location", "on_hand", "reserved", "available", "threshold", "stockout_date", "min_balance_7d"];
  var RIGHT_ALIGNED = ["on_hand", "reserved", "available", "threshold", "stockout_date", "min_balance_7d"];

  var els = {
    tbody: document.getElementById("stock-rows"),
    thead: document.querySelector("#stock-table thead"),
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
    table: document.getElementById("stock-table"),
    locations: document.getElementById("locations"),
  };

  // Events and snapshot rows name their location; one without is at the default location.
  function locationOf(d) { return d.location || config.defaultLocation; }
  function keyOf(d) { return d.code + "@" + locationOf(d); }
  function shown(d) { return selected.indexOf(locationOf(d)) >= 0; }
  function several() { return selected.length > 1; }
  function locationsQuery() { return "locations=" + encodeURIComponent(selected.join(",")); }

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

  // A projection column is empty ("—") while the product has no computed projection summary.
  function dateCell(tr, name, iso) {
    var td = tr.querySelector('[data-col="' + name + '"]');
    if (td.dataset.value === (iso || "")) return;
    td.dataset.value = iso || "";
    td.textContent = "";
    if (!iso) { td.textContent = S.no_value; return; }
    var time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = new Date(iso + "T12:00:00").toLocaleDateString(undefined, { day: "2-digit", month: "2-digit", year: "numeric" });
    td.appendChild(time);
  }

  function renderRow(entry, flash) {
    var d = entry.data, tr = entry.tr;
    cell(tr, "code", d.code);
    cell(tr, "name", d.name);
    cell(tr, "location", locationOf(d));
    cell(tr, "on_hand", d.on_hand);
    cell(tr, "reserved", d.reserved);
    cell(tr, "available", d.available);
    cell(tr, "threshold", d.threshold);
    dateCell(tr, "stockout_date", d.stockout_date);
    cell(tr, "min_balance_7d", d.min_balance_7d === null || d.min_balance_7d === undefined ? S.no_value : d.min_balance_7d);
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
    tr.dataset.location = locationOf(d);
    tr.dataset.key = keyOf(d);
    COLUMNS.forEach(function (name) {
      var td = document.createElement("td");
      td.dataset.col = name;
      if (RIGHT_ALIGNED.indexOf(name) >= 0) td.className = "num";
      tr.appendChild(td);
    });
    tr.addEventListener("click", function () { selectSku(tr.dataset.key); });
    return tr;
  }

  // ---- order: the clicked column (numbers numerically, dates by day, empty last), else search rank, else code ----
  function compareValues(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    if (typeof a === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" });
  }

  function compareEntries(a, b) {
    var ka = a.data.code + "\u0000" + locationOf(a.data), kb = b.data.code + "\u0000" + locationOf(b.data);
    var byCode = ka < kb ? -1 : (ka > kb ? 1 : 0);  // by code, then location
    if (sortCol) {
      var va = a.data[sortCol], vb = b.data[sortCol];
      var empty = (va === null || va === undefined) - (vb === null || vb === undefined);
      if (empty) return empty;  // rows without a value stay last in both directions
      return sortDir * compareValues(va, vb) || byCode;
    }
    if (searchRanks) {
      var ra = searchRanks.has(a.data.code) ? searchRanks.get(a.data.code) : 1e9;
      var rb = searchRanks.has(b.data.code) ? searchRanks.get(b.data.code) : 1e9;
      return ra - rb || byCode;
    }
    return byCode;
  }

  function entryOf(tr) { return rows.get(tr.dataset.key); }

  // Keeps the body in order as rows arrive and change: a row still between its neighbours stays put,
  // otherwise it moves to its place by binary search over the (sorted) rows.
  function place(entry) {
    var tr = entry.tr, prev = tr.previousElementSibling, next = tr.nextElementSibling;
    if (tr.parentNode === els.tbody && (!prev || compareEntries(entryOf(prev), entry) <= 0) &&
        (!next || compareEntries(entry, entryOf(next)) <= 0)) return;
    if (tr.parentNode) tr.parentNode.removeChild(tr);
    var last = els.tbody.lastElementChild;
    // A snapshot arrives in order: each new row goes last, without a search.
    if (!last || compareEntries(entryOf(last), entry) <= 0) { els.tbody.appendChild(tr); return; }
    var kids = els.tbody.children, lo = 0, hi = kids.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (compareEntries(entryOf(kids[mid]), entry) <= 0) lo = mid + 1; else hi = mid;
    }
    els.tbody.insertBefore(tr, kids[lo] || null);
  }

  function upsert(d, flash) {
    var entry = rows.get(keyOf(d));
    if (!entry) {
      entry = { data: d, tr: newRow(d) };
      rows.set(keyOf(d), entry);
    } else {
      entry.data = Object.assign({}, entry.data, d);
    }
    renderRow(entry, flash);
    place(entry);
  }

  function sortBy(col) {
    sortDir = sortCol === col ? -sortDir : 1;
    sortCol = col;
    els.thead.querySelectorAll("th[data-col]").forEach(function (th) {
      th.setAttribute("aria-sort", th.dataset.col !== col ? "none" : (sortDir > 0 ? "ascending" : "descending"));
    });
    orderRows();
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
  // A column chosen by its header wins over the search rank.
  function orderRows() {
    var entries = Array.from(rows.values());
    entries.sort(compareEntries);
    entries.forEach(function (e) { els.tbody.appendChild(e.tr); });
  }

  function search() {
    var q = els.search.value.trim();
    var seq = ++searchSeq;
    if (!q) { searchRanks = null; orderRows(); refilter(); return; }
    fetchJson(config.snapshotUrl + "?" + locationsQuery() + "&search=" + encodeURIComponent(q)).then(function (body) {
      if (seq !== searchSeq) return;  // a later keystroke already asked again
      searchRanks = new Map();
      body.items.forEach(function (item, index) { if (!searchRanks.has(item.code)) searchRanks.set(item.code, index); });
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
  // The rows of the shown locations (of ``codes`` only, when given), one per product and location.
  function loadSnapshot(codes) {
    var url = config.snapshotUrl + "?fields=projection&" + locationsQuery() +
      (codes ? "&codes=" + encodeURIComponent(codes.join(",")) : "");
    return fetchJson(url).then(function (body) {
      var seen = new Set();
      body.items.forEach(function (item) {
        seen.add(keyOf(item));
        var current = rows.get(keyOf(item));
        // A snapshot row may be older than an event already applied: keep the newer one.
        if (!current || item.version >= current.data.version) upsert(item, !!current && item.version > current.data.version);
      });
      if (!codes) {
        rows.forEach(function (e, key) { if (!seen.has(key)) { e.tr.remove(); rows.delete(key); } });
      }
      updateCounters();
    });
  }

  // Versions count per product and location: a gap at one location reloads that product there and at
  // the other shown locations (one small request), never the whole table.
  function applyStock(ev) {
    var entry = rows.get(keyOf(ev));
    if (!entry) { upsert(ev, true); updateCounters(); return; }
    var have = entry.data.version;
    if (ev.version <= have) return; // stale or duplicate
    var gap = ev.version > have + 1;
    upsert(ev, true);
    updateCounters();
    if (selectedKey === keyOf(ev)) { chartPoints.push({ t: new Date(ev.at), v: ev.on_hand }); drawChart(); }
    if (gap) loadSnapshot([ev.code]).catch(function () {});
  }

  // A feed line, newest on top; ``past`` lines (the server's last events after a reload) go below the live ones.
  function feedItem(ev, past) {
    var keys = [];
    if (ev.id) keys.push("id:" + ev.id);
    if (ev.reservation_id) keys.push(ev.type + ":" + ev.reservation_id);
    if (keys.some(function (key) { return feedShown.has(key); })) return;
    keys.forEach(function (key) { feedShown.add(key); });
    var li = document.createElement("li");
    li.dataset.keys = keys.join(" ");
    li.className = "feed-" + ev.type.split(".")[0] + " feed-" + ev.type.replace(".", "-") + (past ? " feed-past" : "");
    li.dataset.type = ev.type;
    var at = new Date(ev.at || Date.now());
    var time = at.toDateString() === new Date().toDateString() ? at.toLocaleTimeString() : at.toLocaleString();
    var label = S[ev.type] || ev.type;
    var detail = "";
    // With several locations shown, each line says where.
    var where = function (loc) { return several() && loc ? " @ " + loc : ""; };
    if (ev.lines) detail = ev.lines.map(function (l) { return l.code + " ×" + l.quantity + where(l.location); }).join(", ");
    else if (ev.code) detail = ev.code + where(ev.location) + (ev.name ? " · " + ev.name : "") + (ev.available !== undefined ? " (" + ev.available + ")" : "");
    if (ev.quantity !== undefined && !ev.lines) detail += " " + (ev.quantity > 0 ? "+" : "") + ev.quantity + " → " + ev.on_hand;
    if (ev.stockout_date) detail += " → " + ev.stockout_date;
    li.innerHTML = "<time></time> <strong></strong> <span></span>";
    li.children[0].textContent = time;
    li.children[0].dateTime = at.toISOString();
    li.children[1].textContent = label;
    li.children[2].textContent = detail;
    if (past) els.feed.appendChild(li); else els.feed.insertBefore(li, els.feed.firstChild);
    while (els.feed.children.length > 100) {
      els.feed.lastChild.dataset.keys.split(" ").forEach(function (key) { feedShown.delete(key); });
      els.feed.removeChild(els.feed.lastChild);
    }
  }

  // After a reload the feed is not empty: the server's last movements and reservation events, newest first.
  function loadPastEvents() {
    fetchJson(config.eventsUrl + "&" + locationsQuery()).then(function (body) {
      body.items.forEach(function (ev) { feedItem(ev, true); });
    }).catch(function () { /* the live feed still fills as events arrive */ });
  }

  // A stock change moves the projection; its columns are refetched once the recompute has had time to run.
  // At most one refetch every 3 s whatever the event rate (a steady stream never postpones it), in
  // requests of at most 200 codes.
  function projectionRefreshSoon(code) {
    projectionCodes.add(code);
    if (projectionTimer) return;
    projectionTimer = setTimeout(function () {
      var codes = Array.from(projectionCodes);
      projectionCodes.clear();
      projectionTimer = null;
      for (var i = 0; i < codes.length; i += 200) loadSnapshot(codes.slice(i, i + 200)).catch(function () {});
    }, 3000);
  }

  // A change of on-hand units is a ledger movement: the feed shows it as the server's history does.
  function feedMovement(ev) {
    var entry = rows.get(keyOf(ev));
    if (!entry || ev.version <= entry.data.version || ev.on_hand === entry.data.on_hand) return;
    feedItem({ type: "movement", code: ev.code, location: ev.location, name: ev.name,
               quantity: ev.on_hand - entry.data.on_hand, on_hand: ev.on_hand, at: ev.at });
  }

  function handleEvent(ev) {
    if (ev.type === "stock.changed") {
      if (!shown(ev)) return;  // the socket follows the shown locations only; a late event of a former choice
      feedMovement(ev); applyStock(ev); projectionRefreshSoon(ev.code); return;
    }
    if (ev.type.indexOf("projection.") === 0 && ev.code) projectionRefreshSoon(ev.code);
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
    // Asked for only now: what happens from here on reaches the socket, so the feed has no gap between
    // the history and the live lines (an overlap is shown once, see feedItem).
    if (!pastLoaded) { pastLoaded = true; loadPastEvents(); }
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
    var socket = new WebSocket(scheme + location.host + config.wsPath + "?" + locationsQuery(), ["stockpulse.v1"]);
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
  function selectSku(key) {
    var row = rows.get(key);
    if (!row) return;
    var code = row.data.code, place = locationOf(row.data);
    selectedKey = key;
    els.chartCode.textContent = code + (several() ? " @ " + place : "");
    rows.forEach(function (e, k) { e.tr.classList.toggle("selected", k === key); });
    chartPoints = []; chartProjection = null;
    var url = config.movementsUrl.replace("__CODE__", encodeURIComponent(code));
    fetchJson(url + "?page_size=200&location=" + encodeURIComponent(place)).then(function (body) {
      if (selectedKey !== key) return;
      var items = body.results || body.items || [];
      chartPoints = items.map(function (m) { return { t: new Date(m.created_at), v: m.on_hand_after }; })
        .sort(function (a, b) { return a.t - b.t; });
      var now = rows.get(key);
      if (now) chartPoints.push({ t: new Date(), v: now.data.on_hand });
      drawChart();
    }).catch(function () { drawChart(); });
    if (place !== config.defaultLocation) return;  // projections follow the default location's stock
    fetchJson(config.projectionUrl.replace("__CODE__", encodeURIComponent(code))).then(function (body) {
      if (selectedKey !== key) return;
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

  // Ticks on a date/time axis: the smallest round step that gives at most ``most`` ticks, on local time.
  var STEPS = [60e3, 5 * 60e3, 15 * 60e3, 30 * 60e3, 36e5, 3 * 36e5, 6 * 36e5, 12 * 36e5,
               864e5, 2 * 864e5, 7 * 864e5, 14 * 864e5, 30 * 864e5];
  function timeTicks(t0, t1, most) {
    var step = STEPS.filter(function (s) { return (t1 - t0) / s <= most; })[0] || STEPS[STEPS.length - 1];
    var offset = new Date(t0).getTimezoneOffset() * 60e3;
    var ticks = [];
    for (var t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) ticks.push(t);
    return { ticks: ticks, step: step };
  }

  function drawChart() {
    var W = 460, H = 220, P = 30, BOTTOM = 44;
    var all = chartPoints.concat(chartProjection || []);
    els.chart.textContent = "";
    if (!all.length) { var p = document.createElement("p"); p.className = "muted"; p.textContent = S.chart_empty; els.chart.appendChild(p); return; }
    var t0 = Math.min.apply(null, all.map(function (p) { return +p.t; }));
    var t1 = Math.max.apply(null, all.map(function (p) { return +p.t; }));
    if (t1 - t0 < 36e5) { t0 -= 18e5; t1 += 18e5; }  // one instant still gets an hour of axis around it
    var vmin = Math.min(0, Math.min.apply(null, all.map(function (p) { return p.v; })));
    var vmax = Math.max(1, Math.max.apply(null, all.map(function (p) { return p.v; })));
    var x = function (t) { return P + (t - t0) / (t1 - t0) * (W - 2 * P); };
    var y = function (v) { return H - BOTTOM - (v - vmin) / (vmax - vmin) * (H - BOTTOM - P / 2); };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": S.history });
    root.appendChild(svg("line", { x1: P, y1: y(0), x2: W - P, y2: y(0), class: "axis" }));
    root.appendChild(svg("text", { x: 2, y: y(vmax) + 4, class: "tick" })).textContent = vmax;
    root.appendChild(svg("text", { x: 2, y: y(0) + 4, class: "tick" })).textContent = 0;
    if (vmin < 0) root.appendChild(svg("text", { x: 2, y: y(vmin) + 4, class: "tick" })).textContent = vmin;
    // The date/time axis: a time under each tick within a day, the date under the first tick of each day.
    var axis = svg("g", { class: "time-axis" });
    var base = H - BOTTOM + 6;
    axis.appendChild(svg("line", { x1: P, y1: base, x2: W - P, y2: base, class: "baseline" }));
    var scale = timeTicks(t0, t1, 6), lastDay = null;
    scale.ticks.forEach(function (t) {
      var at = new Date(t), day = at.toDateString(), tx = x(t).toFixed(1);
      var dateText = at.toLocaleDateString(undefined, { day: "2-digit", month: "2-digit" });
      axis.appendChild(svg("line", { x1: tx, y1: base, x2: tx, y2: base + 4, class: "tick-mark" }));
      var label = axis.appendChild(svg("text", { x: tx, y: base + 16, class: "xtick", "text-anchor": "middle" }));
      label.textContent = scale.step >= 864e5 ? dateText : at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
      if (scale.step < 864e5 && day !== lastDay) {
        axis.appendChild(svg("text", { x: tx, y: base + 30, class: "xtick xdate", "text-anchor": "middle" })).textContent = dateText;
      }
      label.setAttribute("data-time", at.toISOString());
      lastDay = day;
    });
    root.appendChild(axis);
    var now = Date.now();
    if (now > t0 && now < t1) {
      root.appendChild(svg("line", { x1: x(now).toFixed(1), y1: P / 2, x2: x(now).toFixed(1), y2: base, class: "now" }));
    }
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

  els.thead.addEventListener("click", function (e) {
    var th = e.target.closest("th[data-col]");
    if (th) sortBy(th.dataset.col);
  });
  els.search.addEventListener("input", searchSoon);
  els.category.addEventListener("change", refilter);
  els.onlyLow.addEventListener("change", refilter);
  // ---- locations ----
  // A new choice is kept in the URL (a reload or a shared link shows the same), then the page starts
  // over for it: a socket for those locations, their snapshot and their last events.
  function chooseLocations() {
    var checked = Array.prototype.filter.call(els.locations.querySelectorAll("input[type=checkbox]"),
      function (box) { return box.checked; }).map(function (box) { return box.value; });
    if (!checked.length) {  // at least one location stays shown
      els.locations.querySelector('input[value="' + selected[0] + '"]').checked = true;
      return;
    }
    selected = checked;
    var params = new URLSearchParams(location.search);
    params.set("locations", selected.join(","));
    history.replaceState(null, "", location.pathname + "?" + params.toString());
    els.table.classList.toggle("multi", several());
    var old = ws;
    ws = null;  // its close must not schedule a reconnection
    if (old) old.close();
    buffer = null; interrupted = false; attempt = 0;
    rows.forEach(function (e) { e.tr.remove(); });
    rows.clear();
    selectedKey = null; chartPoints = []; chartProjection = null; els.chartCode.textContent = ""; drawChart();
    els.feed.textContent = "";
    feedShown.clear(); pastLoaded = false;
    if (els.search.value.trim()) search();
    connect();
  }

  if (els.locations) els.locations.addEventListener("change", chooseLocations);
  setInterval(watchdog, Math.max(1000, config.heartbeatSeconds * 1000 / 3));
  // For operators and tests: drop the socket as a network failure would.
  window.stockpulse = { dropSocket: function () { if (ws) ws.close(); }, rows: rows, feedShown: feedShown };
  if (!selected.length) { setConnection("offline", S.no_locations); return; }
  connect();
})();
