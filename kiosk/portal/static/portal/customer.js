// The customer's screen: consent -> queue (position) -> call with the agent's digital human.
"use strict";

(function () {
  const root = document.getElementById("portal-customer");
  if (!root) return;
  const P = window.PortalCall;
  const RESUME_KEY = "portal-call:" + root.dataset.socket;
  const v = { socket: null, pc: null, stream: null, ice: [], ended: false };

  function show(name) {
    for (const id of ["screen-consent", "screen-queue", "screen-call", "screen-ended"]) {
      document.getElementById(id).hidden = id !== name;
    }
    document.getElementById("call-actions").hidden = !(name === "screen-queue" || name === "screen-call");
  }

  function onMessage(msg) {
    switch (msg.type) {
      case "hello":
        v.ice = msg.ice_servers || [];
        v.ready = true;
        resume();
        break;
      case "queued":
        sessionStorage.setItem(RESUME_KEY, msg.call_id);
        document.getElementById("position").textContent = String(msg.position);
        show("screen-queue");
        P.say("排队中 · Waiting (" + msg.position + ")", "queued");
        break;
      case "accepted":
        P.say("服务人员已接听 · An agent is joining", "connecting");
        call();
        break;
      case "answer":
        v.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
        break;
      case "state":
        P.say(msg.state === "paused" ? "服务已暂停 · Service paused" : "通话中 · In a call", msg.state);
        break;
      case "ended":
        finish(msg.reason);
        break;
      case "error":
        if (msg.code === "not_in_call") sessionStorage.removeItem(RESUME_KEY);
        P.say("错误 · Error: " + msg.message, "error");
        break;
      default:
        break;
    }
  }

  function resume() {
    const callId = sessionStorage.getItem(RESUME_KEY);
    if (callId) P.send(v.socket, { type: "resume", call_id: callId });
  }

  function join(language) {
    const service = document.querySelector("input[name=service]:checked").value;
    const sha = language === "en" ? root.dataset.shaEn : root.dataset.shaZh;
    P.send(v.socket, {
      type: "join", service, language, text_sha256: sha,
      blur: document.getElementById("blur").checked,
    });
  }

  async function call() {
    // Camera, microphone and speaker only now: after consent, once an agent accepted.
    try {
      v.stream = await navigator.mediaDevices.getUserMedia(P.MEDIA);
    } catch (err) {
      P.say("无法使用摄像头或麦克风 · Camera or microphone unavailable", "error");
      P.send(v.socket, { type: "bye", reason: "no_media" });
      return;
    }
    document.getElementById("self-view").srcObject = v.stream;
    v.pc = await P.offer(v.ice, v.stream, 0);
    const remote = new MediaStream();
    v.pc.addEventListener("track", (event) => {
      remote.addTrack(event.track);
      document.getElementById("agent-video").srcObject = remote;
    });
    show("screen-call");
    P.send(v.socket, { type: "offer", sdp: v.pc.localDescription.sdp, sdp_type: "offer" });
  }

  function finish(reason) {
    if (v.ended) return;
    v.ended = true;
    sessionStorage.removeItem(RESUME_KEY);
    P.stop(v.pc, v.stream);
    show("screen-ended");
    P.say("通话已结束 · The call has ended (" + reason + ")", "ended");
  }

  document.getElementById("agree-zh")?.addEventListener("click", () => join("zh-hans"));
  document.getElementById("agree-en")?.addEventListener("click", () => join("en"));
  document.getElementById("end").addEventListener("click", () => P.send(v.socket, { type: "bye" }));
  document.getElementById("withdraw").addEventListener("click", () => P.send(v.socket, { type: "withdraw" }));
  v.socket = P.openSocket(root.dataset.socket, onMessage);
  window.portalCustomer = v; // for tests and the bench: the page's own call
})();
