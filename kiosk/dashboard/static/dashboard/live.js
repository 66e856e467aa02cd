(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("live-config").textContent);
  const WINDOW_MS = config.window_s * 1000;
  const STALE_MS = 5000;
  const sessions = new Map();  // session_id -> {info, stats, seen, points: [{t, fps, latency}]}
  const workers = new Map();   // worker -> [{t, fps, latency}]
  const tbody = document.querySelector("#sessions tbody");
  const statusEl = document.getElementById("live-status");
  const palette = ["#2453a6", "#c2410c", "#15803d", "#7c3aed", "#b45309", "#0e7490", "#be185d", "#4d7c0f"];

  function num(value) { return typeof value === "number" && isFinite(value) ? value : null; }
  function pick(stats, names) {
    for (const name of names) { const v = num(stats[name]); if (v !== null) return v; }
    return null;
  }
  function fpsOf(stats) { return pick(stats, ["fps_out", "fps"]); }
  // The kiosk's own loop figure (camera to screen) when the page reports it, else the time
  // the worker's pipeline spends on a frame (sum of the stages' medians).
  function latencyOf(stats) {
    const loop = pick(stats, ["loop_ms", "latency_ms"]);
    if (loop !== null) return loop;
    const stages = stats.stage_ms;
    if (!stages || typeof stages !== "object") return null;
    let total = 0, any = false;
    for (const stage of Object.values(stages)) {
      const p50 = stage && num(stage.p50);
      if (p50 !== null) { total += p50; any = true; }
    }
    return any ? total : null;
  }
  function rungOf(stats) {
    const rung = stats.rung ?? stats.processing_size;
    if (rung === undefined || rung === null) return null;
    if (Array.isArray(rung)) return rung.join("×");
    return String(rung);
  }

  function cell(row, field) { return row.querySelector('[data-field="' + field + '"]'); }
  function rowFor(id) { return tbody.querySelector('tr[data-session="' + id + '"]'); }

  function buildRow(info) {
    const tr = document.createElement("tr");
    tr.dataset.session = info.session_id;
    const cols = [
      ["kiosk", info.kiosk_name || info.kiosk], ["worker", info.worker], ["engine", info.engine],
      ["identity", info.identity], ["state", "–"], ["rung", "–"], ["fps", "–"], ["latency", "–"],
      ["consent", info.consent_reference], ["started", (info.started_at || "").slice(0, 19)],
    ];
    for (const [field, text] of cols) {
      const td = document.createElement("td");
      td.dataset.field = field;
      if (field === "fps" || field === "latency") td.className = "num";
      td.textContent = text || "";
      tr.appendChild(td);
    }
    if (config.end_url_template) {
      const td = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = config.strings.end;
      button.dataset.switchUrl = config.end_url_template.replace("00000000-0000-0000-0000-000000000000", info.session_id);
      button.dataset.switchAction = "end";
      button.dataset.switchTitle = config.strings.end_title;
      td.appendChild(button);
      tr.appendChild(td);
    }
    return tr;
  }

  function ensureSession(id, info) {
    let s = sessions.get(id);
    if (!s) {
      s = { info: info || { session_id: id }, stats: {}, seen: 0, points: [] };
      sessions.set(id, s);
    } else if (info) {
      s.info = Object.assign(s.info, info);
    }
    if (!rowFor(id)) {
      const empty = tbody.querySelector("tr.empty");
      if (empty) empty.remove();
      tbody.prepend(buildRow(s.info));
    }
    return s;
  }

  function onStats(message) {
    const id = message.session_id;
    if (!id) return;
    const s = ensureSession(id, { session_id: id, kiosk: message.kiosk, worker: message.worker });
    const now = Date.now();
    s.stats = message.stats || {};
    s.seen = now;
    const fps = fpsOf(s.stats), latency = latencyOf(s.stats), rung = rungOf(s.stats);
    s.points.push({ t: now, fps: fps, latency: latency });
    const worker = message.worker || s.info.worker || "?";
    s.info.worker = worker;
    const row = rowFor(id);
    if (row) {
      row.classList.remove("stale");
      cell(row, "worker").textContent = worker;
      if (s.stats.engine) cell(row, "engine").textContent = s.stats.engine;
      const state = cell(row, "state");
      state.textContent = config.strings.states[s.stats.state] || s.stats.state || "–";
      state.dataset.state = s.stats.state || "";
      cell(row, "rung").textContent = rung === null ? "–" : rung;
      cell(row, "fps").textContent = fps === null ? "–" : fps.toFixed(1);
      cell(row, "latency").textContent = latency === null ? "–" : latency.toFixed(0);
    }
    if (!s.info.started_at) scheduleRefresh();
  }

  function onEnded(message) {
    const s = sessions.get(message.session_id);
    if (s) s.ended = Date.now();
    const row = rowFor(message.session_id);
    if (row) { row.classList.add("stale"); setTimeout(function () { row.remove(); }, 3000); }
  }

  // Per worker: each second, the sum of its sessions' fps and the mean of their latency.
  function workerSeries() {
    const buckets = new Map();  // worker -> Map(second -> {fps, latencies})
    for (const s of sessions.values()) {
      const worker = s.info.worker || "?";
      if (!buckets.has(worker)) buckets.set(worker, new Map());
      const perSecond = buckets.get(worker);
      for (const p of s.points) {
        const second = Math.floor(p.t / 1000);
        const b = perSecond.get(second) || { fps: 0, latencies: [] };
        if (p.fps !== null) b.fps += p.fps;
        if (p.latency !== null) b.latencies.push(p.latency);
        perSecond.set(second, b);
      }
    }
    const fps = [], latency = [];
    for (const [worker, perSecond] of buckets) {
      const seconds = Array.from(perSecond.keys()).sort();
      fps.push({ label: worker, points: seconds.map(function (sec) { return { t: sec * 1000, v: perSecond.get(sec).fps }; }) });
      latency.push({ label: worker, points: seconds.filter(function (sec) { return perSecond.get(sec).latencies.length; }).map(function (sec) {
        const l = perSecond.get(sec).latencies;
        return { t: sec * 1000, v: l.reduce(function (a, b) { return a + b; }, 0) / l.length };
      }) });
    }
    return { fps: fps, latency: latency };
  }

  function sessionSeries(key) {
    const out = [];
    for (const [id, s] of sessions) {
      out.push({ label: (s.info.kiosk || "") + " " + id.slice(0, 8),
        points: s.points.filter(function (p) { return p[key] !== null; }).map(function (p) { return { t: p.t, v: p[key] }; }) });
    }
    return out;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function draw(svgId, legendId, series) {
    const svg = document.getElementById(svgId), legend = document.getElementById(legendId);
    const width = svg.clientWidth || 400, height = svg.clientHeight || 160, pad = 28;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    legend.textContent = "";
    const now = Date.now(), from = now - WINDOW_MS;
    let max = 1;
    for (const s of series) for (const p of s.points) if (p.t >= from && p.v > max) max = p.v;
    max = Math.ceil(max * 1.1);
    const x = function (t) { return pad + (t - from) / WINDOW_MS * (width - pad - 4); };
    const y = function (v) { return height - 16 - v / max * (height - 24); };
    for (const frac of [0, 0.5, 1]) {
      const line = document.createElementNS(SVG, "line");
      line.setAttribute("x1", pad); line.setAttribute("x2", width - 4);
      line.setAttribute("y1", y(max * frac)); line.setAttribute("y2", y(max * frac));
      line.setAttribute("stroke", "#e5e7eb");
      svg.appendChild(line);
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", 2); label.setAttribute("y", y(max * frac) + 4);
      label.setAttribute("font-size", "10"); label.setAttribute("fill", "#5d6678");
      label.textContent = Math.round(max * frac);
      svg.appendChild(label);
    }
    const axis = document.createElementNS(SVG, "text");
    axis.setAttribute("x", pad); axis.setAttribute("y", height - 2);
    axis.setAttribute("font-size", "10"); axis.setAttribute("fill", "#5d6678");
    axis.textContent = "−" + Math.round(WINDOW_MS / 60000) + " min";
    svg.appendChild(axis);
    series.forEach(function (s, i) {
      const color = palette[i % palette.length];
      const points = s.points.filter(function (p) { return p.t >= from; });
      if (points.length) {
        const path = document.createElementNS(SVG, "polyline");
        path.setAttribute("fill", "none"); path.setAttribute("stroke", color); path.setAttribute("stroke-width", "1.5");
        path.setAttribute("points", points.map(function (p) { return x(p.t).toFixed(1) + "," + y(p.v).toFixed(1); }).join(" "));
        svg.appendChild(path);
      }
      const key = document.createElement("span");
      key.style.color = color;
      key.textContent = "■ " + s.label;
      legend.appendChild(key);
    });
  }

  function prune() {
    const from = Date.now() - WINDOW_MS;
    for (const [id, s] of sessions) {
      s.points = s.points.filter(function (p) { return p.t >= from; });
      if (s.ended && !s.points.length) sessions.delete(id);
      const row = rowFor(id);
      if (row && s.seen && Date.now() - s.seen > STALE_MS) row.classList.add("stale");
    }
  }

  function redraw() {
    prune();
    draw("chart-session-fps", "legend-session-fps", sessionSeries("fps"));
    draw("chart-session-latency", "legend-session-latency", sessionSeries("latency"));
    const w = workerSeries();
    draw("chart-worker-fps", "legend-worker-fps", w.fps);
    draw("chart-worker-latency", "legend-worker-latency", w.latency);
  }

  function applySwitch(state) {
    const banner = document.getElementById("global-switch");
    const label = document.getElementById("global-switch-state");
    banner.classList.toggle("on", state.enabled);
    banner.classList.toggle("off", !state.enabled);
    banner.dataset.enabled = state.enabled ? "true" : "false";
    label.textContent = state.enabled ? label.dataset.on : label.dataset.off;
  }

  let refreshTimer = null;
  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, 300);
  }
  function refresh() {
    return fetch(config.json_url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        applySwitch(data.switch);
        const live = new Set();
        for (const info of data.sessions) { live.add(info.session_id); ensureSession(info.session_id, info); }
        for (const [id, s] of sessions) {
          if (!live.has(id) && !s.ended && (!s.seen || Date.now() - s.seen > STALE_MS)) onEnded({ session_id: id });
        }
      })
      .catch(function () {});
  }

  // Portal calls: the socket sends the whole table (from the database) on every change of a
  // call and right after connecting; the rows are rebuilt as portal/dashboard_calls.html
  // draws them.
  const callsBody = document.querySelector("#portal-calls tbody");
  function callCell(tr, field, text) {
    const td = document.createElement("td");
    td.dataset.field = field;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function callRow(call) {
    const words = config.strings.calls;
    const tr = document.createElement("tr");
    tr.dataset.call = call.call_id;
    tr.dataset.session = call.session_id;
    callCell(tr, "service", call.service);
    callCell(tr, "status", call.status);
    callCell(tr, "customer", (call.from_home ? "🏠 " : "") + call.kiosk + (call.blurred ? " (" + words.blurred + ")" : ""));
    callCell(tr, "agent", call.agent || "–");
    callCell(tr, "worker", call.worker || "–");
    callCell(tr, "joined", call.joined_at);
    callCell(tr, "supervisor", call.supervisor_allowed ? words.yes : words.no);
    const watch = callCell(tr, "watch", "");
    if (call.watch_url) {
      const link = document.createElement("a");
      link.href = call.watch_url;
      link.textContent = words.watch;
      watch.appendChild(link);
    }
    return tr;
  }
  function onCalls(message) {
    if (!callsBody || !Array.isArray(message.calls)) return;
    const rows = message.calls.map(callRow);
    if (!rows.length) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = document.createElement("td");
      td.colSpan = 8;
      td.className = "muted";
      td.textContent = config.strings.calls.none;
      tr.appendChild(td);
      rows.push(tr);
    }
    callsBody.replaceChildren.apply(callsBody, rows);
  }

  let retry = 1000;
  // Media workers: one row per heartbeat sender; the age counts up between heartbeats and
  // a worker silent for a minute is dropped (its row goes grey after WORKER_LOST_S).
  const workersBody = document.querySelector("#workers tbody");
  const workerBeats = new Map();
  const WORKER_LOST_S = 2;
  function onHeartbeat(message) {
    workerBeats.set(message.worker, { beat: message, at: Date.now() });
    drawWorkers();
  }
  function drawWorkers() {
    if (!workersBody) return;
    const now = Date.now();
    const rows = [];
    for (const [name, w] of workerBeats) {
      const age = (now - w.at) / 1000;
      if (age > 60) { workerBeats.delete(name); continue; }
      const b = w.beat;
      const pct = function (v) { return typeof v === "number" ? Math.round(v * 100) + " %" : "–"; };
      const tr = document.createElement("tr");
      tr.dataset.worker = name;
      if (age > WORKER_LOST_S) tr.classList.add("stale");
      const cells = [name, b.sessions + " / " + b.max_sessions, b.frame_ms, pct(b.cpu), pct(b.load),
        pct(b.headroom), b.draining ? "draining" : (b.accepting ? "yes" : "no"), age.toFixed(1)];
      for (const [i, value] of cells.entries()) {
        const td = document.createElement("td");
        td.textContent = String(value);
        td.dataset.field = ["worker", "sessions", "frame_ms", "cpu", "load", "headroom", "accepting", "age"][i];
        tr.appendChild(td);
      }
      rows.push(tr);
    }
    if (rows.length) workersBody.replaceChildren.apply(workersBody, rows);
  }
  setInterval(drawWorkers, 500);

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + config.ws_path);
    socket.onopen = function () {
      retry = 1000;
      statusEl.textContent = config.strings.live;
      statusEl.dataset.connected = "true";
      refresh();
    };
    socket.onmessage = function (event) {
      const message = JSON.parse(event.data);
      if (message.type === "stats") onStats(message);
      else if (message.type === "ended") onEnded(message);
      else if (message.type === "switch") refresh();
      else if (message.type === "worker") onHeartbeat(message);
      else if (message.type === "calls") onCalls(message);
    };
    socket.onclose = function () {
      statusEl.textContent = config.strings.reconnecting;
      statusEl.dataset.connected = "false";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }

  // The charts' last minutes survive a reload of the page (this tab only).
  const STORE = "dashboard-live-v1";
  function save() {
    try {
      const kept = [];
      for (const [id, s] of sessions) kept.push([id, s.info, s.points, s.ended || 0]);
      sessionStorage.setItem(STORE, JSON.stringify(kept));
    } catch (e) { /* storage full or disabled: the charts start empty next time */ }
  }
  function restore() {
    let kept = [];
    try { kept = JSON.parse(sessionStorage.getItem(STORE) || "[]"); } catch (e) { kept = []; }
    const live = new Set(config.sessions.map(function (info) { return info.session_id; }));
    const from = Date.now() - WINDOW_MS;
    for (const [id, info, points, ended] of kept) {
      const recent = (points || []).filter(function (p) { return p.t >= from; });
      if (!recent.length) continue;
      // Ended sessions keep their lines (no table row); live ones come back in the table.
      sessions.set(id, { info: info, stats: {}, seen: 0, points: recent, ended: live.has(id) ? 0 : (ended || Date.now()) });
    }
  }

  restore();
  for (const info of config.sessions) ensureSession(info.session_id, info);
  for (const row of tbody.querySelectorAll("tr[data-session]")) ensureSession(row.dataset.session, null);
  connect();
  redraw();
  setInterval(function () { redraw(); save(); }, 1000);
  setInterval(refresh, 10000);
})();
