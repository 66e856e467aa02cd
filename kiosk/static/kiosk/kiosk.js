/* The kiosk screen: consent, camera, one WebRTC call to the media engine, its own loop figure.
 *
 * Protocol: docs/signaling.md. One WebSocket is one visit: hello -> consent -> offer ->
 * answer -> live -> bye. The camera is asked for only after "I agree".
 *
 * The loop figure: an encoded-frame transform on the sender notes performance.now() for each
 * frame's RTP timestamp as it leaves; the media engine sends each fused frame with the RTP
 * timestamp of the camera frame it was made from; requestVideoFrameCallback on the remote
 * video gives the shown frame's rtpTimestamp and expectedDisplayTime. loop_ms is the median
 * over the last second of (expectedDisplayTime - sent time), reported to the server in a
 * "stats" message once a second.
 */
(() => {
  "use strict";

  const root = document.getElementById("kiosk");
  if (!root) return;
  const slug = root.dataset.slug;
  const $ = (id) => document.getElementById(id);
  const statusEl = $("status");
  const loopEl = $("loop");
  const remote = $("remote");
  const stage = remote.parentElement;
  const screens = { consent: $("screen-consent"), live: $("screen-live"), without: $("screen-without") };

  const ICE_GATHER_TIMEOUT_MS = 1500;
  const REPLY_TIMEOUT_MS = 10000;
  const STATS_EVERY_MS = 1000;
  const CODEC_ORDER = ["video/vp8", "video/rtx"];

  const TEXT = {
    "zh-hans": {
      ready: "请阅读上方说明，然后选择。",
      opening: "正在连接服务器…",
      consent: "正在记录您的选择…",
      camera: "正在开启摄像头…",
      connecting: "正在连接数字人…",
      live: "进行中 · 您看到的画面为 AI 合成",
      paused: "已暂停：数字人功能已关闭。",
      stopped: "已停止。摄像头已关闭。",
      busy: "服务器繁忙，请稍后再试。",
      disabled: "数字人功能已关闭。您可以不使用数字人继续办理。",
      failed: "出错：{r}",
      error: "出错：{r}",
      camera_denied: "无法开启摄像头：{r}",
      closed: "与服务器的连接已断开。",
      without: "不使用数字人继续办理，摄像头未开启。",
      operator: "工作人员已结束本次服务。摄像头已关闭。",
      withdrawn: "您已撤回同意，处理已停止。",
      expired: "同意已过期，处理已停止。",
      revoked: "所用形象的授权已撤回，服务已停止。",
      loop: "环路延迟 {ms} ms · {fps} 帧/秒",
      codes: {
        busy: "服务器繁忙，请稍后再试",
        disabled: "数字人功能已关闭",
        worker_lost: "媒体服务器无响应，会话已结束",
        engine_unavailable: "媒体引擎不可用",
        no_video: "没有视频",
        internal: "服务器内部错误",
        ice_failed: "网络连接失败",
        error: "服务器错误",
      },
    },
    en: {
      ready: "Please read the text above, then choose.",
      opening: "Connecting to the server…",
      consent: "Recording your choice…",
      camera: "Starting the camera…",
      connecting: "Connecting to the digital human…",
      live: "Live · the video you see is AI-generated",
      paused: "Paused: {r}",
      stopped: "Stopped. The camera is off.",
      busy: "The server is busy. Please try again in a moment.",
      disabled: "The digital human is switched off. You can continue without it.",
      failed: "Error: {r}",
      error: "Error: {r}",
      camera_denied: "The camera could not be started: {r}",
      closed: "The connection to the server was lost.",
      without: "Continuing without the digital human; the camera is off.",
      operator: "A member of staff ended the session. The camera is off.",
      withdrawn: "You withdrew your consent; processing has stopped.",
      expired: "The consent expired; processing has stopped.",
      revoked: "The presenter's consent was withdrawn; the session has stopped.",
      loop: "loop {ms} ms · {fps} fps",
      codes: { ice_failed: "the network path failed", error: "server error" },
    },
  };

  let lang = "zh-hans";
  let shown = { state: "idle", key: "ready", reason: "" };

  // What the page measured, readable by tests and by staff in the console.
  const metrics = (window.kioskMetrics = {
    loopMs: null, loopSamples: [], fps: null, framesDecoded: 0, server: null,
    transform: "none", state: "idle", timeline: {}, jitterBufferMs: null,
  });

  function mark(step) {
    metrics.timeline[step] = Math.round(performance.now() - (metrics.timeline.t0 || 0));
  }

  function say(state, key, reason = "") {
    shown = { state, key, reason };
    metrics.state = state;
    const t = TEXT[lang];
    const r = (t.codes && t.codes[reason]) || TEXT.en.codes[reason] || reason;
    statusEl.textContent = (t[key] || key).replace("{r}", r);
    statusEl.dataset.state = state;
  }

  function setLanguage(code) {
    lang = code;
    document.body.classList.toggle("lang-zh", code === "zh-hans");
    document.body.classList.toggle("lang-en", code === "en");
    document.documentElement.lang = code === "en" ? "en" : "zh-Hans";
    for (const b of document.querySelectorAll("[data-set-lang]")) {
      b.setAttribute("aria-pressed", String(b.dataset.setLang === code));
    }
    say(shown.state, shown.key, shown.reason);
    showLoop();
  }

  function show(name) {
    for (const [key, el] of Object.entries(screens)) if (el) el.hidden = key !== name;
  }

  // --- the signaling socket ------------------------------------------------------------------

  let visit = null; // the current visit: { ws, hello, waiters, pc, stream, ... }

  function newVisit() {
    const v = {
      ws: null, hello: null, waiters: [], pc: null, stream: null, sessionId: null,
      over: false, offerSent: false, sentAt: new Map(), statsTimer: null,
      lastDecoded: null, lastStatsAt: 0, firstFrame: false, lastJitter: null,
    };
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    v.ws = new WebSocket(`${proto}//${location.host}/ws/kiosk/${encodeURIComponent(slug)}/`);
    v.ws.onmessage = (event) => onServerMessage(v, event);
    v.ws.onclose = (event) => {
      // 4401: this device's credential was revoked (or never valid): the page reloads and
      // shows "this device is not enrolled" (docs/signaling.md, "Enrolment").
      if (event.code === 4401) setTimeout(() => location.reload(), 1500);
      const wasCurrent = v === visit;
      if (wasCurrent && !v.over && (v.sessionId || v.pc)) {
        finish(v, "failed", "closed");
      }
      for (const w of v.waiters) w.reject(new Error("connection closed"));
      v.waiters = [];
      if (wasCurrent && !v.closedByUs && event.code !== 4401) reconnectLater();
    };
    return v;
  }

  // The server went away (daphne or Redis restarted): open a new socket by ourselves, with
  // a growing pause (1 s .. 15 s), so that the consent screen works again once it is back.
  let reconnectDelay = 1000;
  let reconnectTimer = null;
  function reconnectLater() {
    if (reconnectTimer) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      if (visit && !visit.over && visit.ws.readyState === WebSocket.OPEN) return;
      if (visit && !visit.over) visit.closedByUs = true;
      visit = null;
      openVisit()
        .then(() => { reconnectDelay = 1000; })
        .catch(() => { reconnectDelay = Math.min(reconnectDelay * 2, 15000); reconnectLater(); });
    }, reconnectDelay);
  }

  function send(v, message) {
    if (v.ws && v.ws.readyState === WebSocket.OPEN) v.ws.send(JSON.stringify(message));
  }

  function waitFor(v, type) {
    return new Promise((resolve, reject) => {
      const waiter = { type, resolve, reject };
      v.waiters.push(waiter);
      setTimeout(() => {
        const i = v.waiters.indexOf(waiter);
        if (i >= 0) { v.waiters.splice(i, 1); reject(new Error(`no ${type} from the server`)); }
      }, REPLY_TIMEOUT_MS);
    });
  }

  function onServerMessage(v, event) {
    let msg;
    try { msg = JSON.parse(event.data); } catch { return; }
    for (const w of v.waiters.filter((w) => w.type === msg.type)) {
      v.waiters.splice(v.waiters.indexOf(w), 1);
      w.resolve(msg);
    }
    switch (msg.type) {
      case "hello": v.hello = msg; break;
      case "answer": onAnswer(v, msg); break;
      case "candidate":
        if (v.pc && msg.candidate) v.pc.addIceCandidate(msg.candidate).catch(() => {});
        break;
      case "state": onState(v, msg); break;
      case "stats": metrics.server = msg.stats; break;
      case "error":
        console.warn("kiosk signaling error", msg.code, msg.message);
        // A new version of the consent text was published: show it and ask again.
        if (msg.code === "consent_outdated") { window.location.reload(); return; }
        if (v.waiters.length) {
          // An awaited step (hello, consent_ok) failed: it reports the error.
          for (const w of v.waiters.splice(0)) w.reject(new Error(msg.message || msg.code));
          break;
        }
        if (v.sessionId && !v.over) say("error", "error", msg.code in TEXT[lang].codes ? msg.code : msg.message);
        break;
      case "ended": finish(v, stateAfterEnd(msg.reason), msg.reason, msg.detail); break;
      case "reoffer": reoffer(v, msg); break;
    }
  }

  // The media worker died and the consent still holds: a new peer connection and a new
  // offer on the same socket, under the new session id (docs/signaling.md, "reoffer").
  async function reoffer(v, msg) {
    if (v.over || !v.stream) return;
    v.sessionId = msg.session_id;
    clearInterval(v.statsTimer);
    if (v.pc) { try { v.pc.close(); } catch {} }
    v.pc = null;
    v.offerSent = false;
    v.firstFrame = false;
    try {
      await call(v);
    } catch (err) {
      send(v, { type: "bye", reason: "call setup failed" });
      finish(v, "failed", "failed", err.message || String(err));
    }
  }

  function stateAfterEnd(reason) {
    if (reason === "busy") return "busy";
    if (reason === "error" || reason === "ice_failed") return "failed";
    return "stopped";
  }

  function onState(v, msg) {
    if (v.over) return;
    switch (msg.state) {
      case "connecting": if (!v.firstFrame) say("connecting", "connecting"); break;
      case "live": say("live", "live"); break;
      case "paused": say("paused", "paused", msg.message || msg.reason); break;
      case "busy": say("busy", "busy"); break;
      case "stopped": say("stopped", msg.reason === "disabled" ? "disabled" : "stopped"); break;
      case "failed": say("failed", "failed", msg.reason || msg.message); break;
    }
  }

  async function openVisit() {
    if (visit && !visit.over && visit.ws.readyState <= WebSocket.OPEN && !visit.sessionId) {
      if (!visit.hello) await waitFor(visit, "hello");
      return visit;
    }
    visit = newVisit();
    await waitFor(visit, "hello");
    return visit;
  }

  // --- the two choices -----------------------------------------------------------------------

  function consentSha() {
    return (lang === "en" ? root.dataset.shaEn : root.dataset.shaZh) || undefined;
  }

  function setChoiceButtons(enabled) {
    for (const id of ["agree", "without"]) { const b = $(id); if (b) b.disabled = !enabled; }
  }

  async function agree() {
    metrics.timeline = { t0: performance.now() };
    setChoiceButtons(false);
    let v;
    try {
      say("connecting", "opening");
      v = await openVisit();
      say("connecting", "consent");
      send(v, { type: "consent", given: true, language: lang, text_sha256: consentSha() });
      const ok = await waitFor(v, "consent_ok");
      v.sessionId = ok.session_id;
      mark("consent_ok");
    } catch (err) {
      setChoiceButtons(true);
      say("error", "error", err.message);
      return;
    }
    show("live");
    $("stop").hidden = false;
    $("withdraw").hidden = false;
    $("again").hidden = true;
    say("connecting", "camera");
    try {
      // The camera only now, after "I agree".
      // 1280x720 as an ideal, not a requirement: a camera that cannot do it still opens (at
      // its nearest size), and the 720p rung of the processing ladder gets real pixels.
      v.stream = await navigator.mediaDevices.getUserMedia({
        video: {
          width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 },
        },
        audio: false,
      });
    } catch (err) {
      send(v, { type: "bye", reason: "camera unavailable" });
      finish(v, "failed", "camera_denied", err.name || String(err));
      return;
    }
    mark("camera");
    if (v.over) { stopCamera(v); return; }
    try {
      await call(v);
    } catch (err) {
      send(v, { type: "bye", reason: "call setup failed" });
      finish(v, "failed", "failed", err.message || String(err));
    }
  }

  async function continueWithout() {
    setChoiceButtons(false);
    try {
      const v = await openVisit();
      send(v, { type: "consent", given: false, language: lang });
      const ok = await waitFor(v, "consent_ok");
      v.sessionId = ok.session_id;
      show("without");
      say("stopped", "without");
    } catch (err) {
      setChoiceButtons(true);
      say("error", "error", err.message);
    }
  }

  // --- the call ------------------------------------------------------------------------------

  async function call(v) {
    const useScript = "RTCRtpScriptTransform" in window;
    const useStreams = !useScript && "createEncodedStreams" in RTCRtpSender.prototype;
    const config = { iceServers: (v.hello && v.hello.ice_servers) || [] };
    if (useStreams) config.encodedInsertableStreams = true;
    const pc = (v.pc = new RTCPeerConnection(config));
    const track = v.stream.getVideoTracks()[0];
    const transceiver = pc.addTransceiver(track, { direction: "sendrecv", streams: [v.stream] });
    preferCodecs(transceiver);
    metrics.transform = tapSender(v, transceiver.sender, useScript, useStreams);

    pc.ontrack = (event) => {
      const receiver = event.receiver;
      // Ask for the least playout delay the browser allows.
      try { receiver.playoutDelayHint = 0; } catch {}
      try { receiver.jitterBufferTarget = 0; } catch {}
      if (useStreams) passThrough(receiver);
      remote.srcObject = event.streams[0] || new MediaStream([event.track]);
      remote.play().catch(() => {});
      watchRemote(v);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed" && !v.over) say("failed", "failed", "ice_failed");
    };
    pc.onicecandidate = (event) => {
      if (v.offerSent && !v.over) {
        send(v, { type: "candidate", candidate: event.candidate ? event.candidate.toJSON() : null });
      }
    };

    say("connecting", "connecting");
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc, ICE_GATHER_TIMEOUT_MS);
    if (v.over) return;
    mark("offer_sent");
    send(v, { type: "offer", sdp: pc.localDescription.sdp, sdp_type: "offer" });
    v.offerSent = true;
    v.statsTimer = setInterval(() => reportStats(v), STATS_EVERY_MS);
  }

  function preferCodecs(transceiver) {
    if (!transceiver.setCodecPreferences || !RTCRtpReceiver.getCapabilities) return;
    const codecs = RTCRtpReceiver.getCapabilities("video").codecs;
    // VP8 first, and keep video/rtx: without RTX Chromium pads with empty frames.
    const chosen = CODEC_ORDER.flatMap((m) => codecs.filter((c) => c.mimeType.toLowerCase() === m));
    if (chosen.some((c) => c.mimeType.toLowerCase() === "video/vp8")) {
      transceiver.setCodecPreferences(chosen);
    }
  }

  function gatheringComplete(pc, timeoutMs) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve(true);
      const timer = setTimeout(() => resolve(false), timeoutMs);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(true); }
      });
    });
  }

  async function onAnswer(v, msg) {
    if (!v.pc || v.over) return;
    mark("answer");
    try {
      await v.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
    } catch (err) {
      send(v, { type: "bye", reason: "bad answer" });
      finish(v, "failed", "failed", err.message || String(err));
    }
  }

  // --- measuring the loop --------------------------------------------------------------------

  function noteSent(v, rtpTimestamp, at) {
    if (rtpTimestamp === undefined || rtpTimestamp === null) return;
    v.sentAt.set(rtpTimestamp >>> 0, at);
    if (v.sentAt.size > 300) {
      const oldest = v.sentAt.keys().next().value;
      v.sentAt.delete(oldest);
    }
  }

  function rtpOf(frame) {
    try {
      const md = frame.getMetadata ? frame.getMetadata() : {};
      if (md && md.rtpTimestamp !== undefined) return md.rtpTimestamp;
    } catch {}
    return frame.timestamp;
  }

  function tapSender(v, sender, useScript, useStreams) {
    if (useScript) {
      const worker = new Worker(root.dataset.loopWorker || "/static/kiosk/loop-worker.js");
      worker.onmessage = (event) => {
        // The worker's clock has another origin: both sides speak timeOrigin + now().
        noteSent(v, event.data.rtp, event.data.at - performance.timeOrigin);
      };
      sender.transform = new RTCRtpScriptTransform(worker, { side: "send" });
      v.loopWorker = worker;
      return "RTCRtpScriptTransform";
    }
    if (useStreams) {
      const { readable, writable } = sender.createEncodedStreams();
      readable
        .pipeThrough(new TransformStream({
          transform(frame, controller) {
            noteSent(v, rtpOf(frame), performance.now());
            controller.enqueue(frame);
          },
        }))
        .pipeTo(writable)
        .catch(() => {});
      return "createEncodedStreams";
    }
    return "none";
  }

  function passThrough(receiver) {
    // With encodedInsertableStreams every receiver must be piped too, or frames stall.
    const { readable, writable } = receiver.createEncodedStreams();
    readable.pipeTo(writable).catch(() => {});
  }

  function watchRemote(v) {
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
    const onFrame = (now, md) => {
      if (v.over || visit !== v) return;
      if (!v.firstFrame && remote.videoWidth > 0) {
        v.firstFrame = true;
        mark("first_frame");
        stage.classList.add("playing");
        if (metrics.state === "connecting") say("live", "live"); // not over "paused"
      }
      if (md.rtpTimestamp !== undefined) {
        const sent = v.sentAt.get(md.rtpTimestamp >>> 0);
        if (sent !== undefined) {
          const shownAt = md.expectedDisplayTime || now;
          metrics.loopSamples.push([now, shownAt - sent]);
          if (metrics.loopSamples.length > 600) metrics.loopSamples.splice(0, 300);
        }
      }
      remote.requestVideoFrameCallback(onFrame);
    };
    remote.requestVideoFrameCallback(onFrame);
  }

  function median(values) {
    if (!values.length) return null;
    const s = [...values].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  }

  async function reportStats(v) {
    if (v.over || !v.pc) return;
    const now = performance.now();
    const recent = metrics.loopSamples.filter(([at]) => now - at <= 1000).map(([, ms]) => ms);
    const loop = median(recent);
    metrics.loopMs = loop === null ? null : Math.max(0, Math.round(loop * 10) / 10);
    let decoded = null;
    let jitter = null;
    try {
      const report = await v.pc.getStats();
      report.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") {
          decoded = s.framesDecoded || 0;
          jitter = [s.jitterBufferDelay || 0, s.jitterBufferEmittedCount || 0];
        }
      });
    } catch {}
    // The receiver's own jitter-buffer wait per frame over the last second (part of loop_ms).
    if (jitter && v.lastJitter && jitter[1] > v.lastJitter[1]) {
      metrics.jitterBufferMs =
        Math.round(((jitter[0] - v.lastJitter[0]) / (jitter[1] - v.lastJitter[1])) * 10000) / 10;
    }
    if (jitter) v.lastJitter = jitter;
    if (decoded !== null) {
      if (v.lastDecoded !== null && v.lastStatsAt) {
        metrics.fps = Math.round(((decoded - v.lastDecoded) * 1000) / (now - v.lastStatsAt));
      }
      v.lastDecoded = decoded;
      v.lastStatsAt = now;
      metrics.framesDecoded = decoded;
    }
    const stats = { type: "stats", loop_ms: metrics.loopMs, frames_decoded: metrics.framesDecoded };
    if (metrics.fps !== null) stats.fps = metrics.fps;
    if (metrics.jitterBufferMs !== null) stats.jitter_buffer_ms = metrics.jitterBufferMs;
    send(v, stats);
    showLoop();
  }

  function showLoop() {
    if (metrics.loopMs === null && metrics.fps === null) { loopEl.textContent = ""; return; }
    loopEl.textContent = TEXT[lang].loop
      .replace("{ms}", metrics.loopMs === null ? "–" : String(Math.round(metrics.loopMs)))
      .replace("{fps}", metrics.fps === null ? "–" : String(metrics.fps));
  }

  // --- ending --------------------------------------------------------------------------------

  function stopCamera(v) {
    if (v.stream) for (const t of v.stream.getTracks()) t.stop();
    v.stream = null;
  }

  function finish(v, state, key, reason) {
    if (v.over) return;
    v.over = true;
    clearInterval(v.statsTimer);
    stopCamera(v);
    if (v.pc) { try { v.pc.close(); } catch {} }
    if (v.loopWorker) v.loopWorker.terminate();
    remote.srcObject = null;
    stage.classList.remove("playing");
    const known = [
      "stopped", "busy", "disabled", "closed", "camera_denied",
      "operator", "withdrawn", "expired", "revoked",
    ];
    if (known.includes(key)) say(state, key, reason);
    else if (state === "stopped") say(state, "stopped");
    else say(state, state === "busy" ? "busy" : "failed", reason || key);
    $("stop").hidden = true;
    $("withdraw").hidden = true;
    $("again").hidden = false;
    setTimeout(() => {
      v.closedByUs = true;
      if (v.ws.readyState === WebSocket.OPEN) v.ws.close(1000);
    }, 1500);
  }

  function stop() {
    const v = visit;
    if (!v || v.over) return;
    send(v, { type: "bye" });
    finish(v, "stopped", "stopped");
  }

  // Withdrawal is as easy as giving: one button, processing stops at once.
  function withdraw() {
    const v = visit;
    if (!v || v.over) return;
    send(v, { type: "withdraw" });
    finish(v, "stopped", "withdrawn");
  }

  function backToStart() {
    show("consent");
    setChoiceButtons(true);
    metrics.loopMs = null; metrics.fps = null; metrics.loopSamples = []; metrics.jitterBufferMs = null;
    showLoop();
    say("idle", "ready");
    visit = null;
    openVisit().catch(() => {});
  }

  // --- wiring --------------------------------------------------------------------------------

  for (const b of document.querySelectorAll("[data-set-lang]")) {
    b.addEventListener("click", () => setLanguage(b.dataset.setLang));
  }
  const agreeButton = $("agree");
  if (agreeButton) agreeButton.addEventListener("click", agree);
  const withoutButton = $("without");
  if (withoutButton) withoutButton.addEventListener("click", continueWithout);
  $("stop").addEventListener("click", stop);
  $("withdraw").addEventListener("click", withdraw);
  $("again").addEventListener("click", backToStart);
  $("without-done").addEventListener("click", () => {
    if (visit) {
      send(visit, { type: "bye" });
      visit.over = visit.closedByUs = true;
      visit.ws.close(1000);
    }
    backToStart();
  });
  // Closing the page ends the session at once: the server ends it on the socket's close
  // (recorded as "disconnect"); close the socket and camera here without waiting for that.
  window.addEventListener("pagehide", () => {
    if (!visit) return;
    visit.over = visit.closedByUs = true;
    stopCamera(visit);
    if (visit.pc) { try { visit.pc.close(); } catch {} }
    if (visit.ws.readyState <= WebSocket.OPEN) visit.ws.close(1000);
  });

  setLanguage(lang);
  say("idle", "ready");
  openVisit().catch(() => {});
})();
