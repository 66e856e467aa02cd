// The agent's desk: the queue, accept, the call (customer + own digital-human preview).
"use strict";

(function () {
  const root = document.getElementById("portal-agent");
  if (!root) return;
  const P = window.PortalCall;
  const v = { socket: null, pc: null, stream: null, ice: [], callId: null, supervisor: false };

  function row(service, item, index) {
    const tr = document.createElement("tr");
    const cells = [String(index + 1), item.waited_s + " s", item.from_home ? "🏠 " + item.kiosk : item.kiosk, item.language];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary accept";
    button.dataset.callId = item.call_id;
    button.textContent = "接听 · Accept";
    button.setAttribute("aria-label", "接听 Accept " + service + " #" + (index + 1));
    button.addEventListener("click", () => accept({ call_id: item.call_id }));
    td.appendChild(button);
    tr.appendChild(td);
    return tr;
  }

  function showQueue(queue) {
    for (const box of root.querySelectorAll(".queue")) {
      const service = box.dataset.service;
      const body = box.querySelector("tbody");
      body.replaceChildren(...(queue[service] || []).map((item, i) => row(service, item, i)));
      box.querySelector(".take-next").disabled = !(queue[service] || []).length || v.callId !== null;
    }
  }

  async function accept(which) {
    if (v.callId) return;
    P.send(v.socket, Object.assign({ type: "accept" }, which));
  }

  async function startCall(msg) {
    v.callId = msg.call_id;
    document.getElementById("call").hidden = false;
    document.getElementById("blurred").hidden = !msg.blur;
    P.say("客户接入中 · Connecting the customer", "connecting");
    v.stream = await navigator.mediaDevices.getUserMedia(P.MEDIA);
    v.pc = await P.offer(v.ice, v.stream, 0);
    const customer = new MediaStream();
    v.pc.addEventListener("track", (event) => {
      customer.addTrack(event.track);
      document.getElementById("customer-video").srcObject = customer;
    });
    P.send(v.socket, { type: "offer", sdp: v.pc.localDescription.sdp, sdp_type: "offer" });
  }

  // The preview of my own digital human: a receive-only peer of its own (docs/portal.md).
  async function preview() {
    v.preview = await P.offer(v.ice, null, 1);
    v.preview.addEventListener("track", (event) => {
      document.getElementById("preview").srcObject = new MediaStream([event.track]);
    });
    P.send(v.socket, { type: "preview_offer", sdp: v.preview.localDescription.sdp });
  }

  function endCall(reason) {
    P.stop(v.preview, null);
    v.preview = null;
    P.stop(v.pc, v.stream);
    v.pc = v.stream = v.callId = null;
    v.supervisor = false;
    document.getElementById("supervisor").setAttribute("aria-pressed", "false");
    document.getElementById("call").hidden = true;
    P.say("通话已结束 · Call ended (" + reason + ")", "ended");
  }

  function onMessage(msg) {
    switch (msg.type) {
      case "hello": v.ice = msg.ice_servers || []; showQueue(msg.queue); P.say("就绪 · Ready", "ready"); break;
      case "queue": showQueue(msg.queue); break;
      case "accepted": startCall(msg); break;
      case "customer_connected": P.say("客户已连接 · Customer connected", "connecting"); break;
      case "answer": v.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp }).then(preview); break;
      case "preview_answer": v.preview.setRemoteDescription({ type: "answer", sdp: msg.sdp }); break;
      case "state": P.say(msg.state === "paused" ? "服务已暂停（数字人静止）· Service paused" : "通话中 · In a call", msg.state); break;
      case "ended": endCall(msg.reason); break;
      case "supervisor":
        v.supervisor = msg.allowed;
        document.getElementById("supervisor").setAttribute("aria-pressed", String(msg.allowed));
        break;
      case "home_link":
        document.getElementById("link").textContent = location.origin + msg.path;
        break;
      case "error": P.say("错误 · Error: " + msg.message, "error"); break;
      default: break;
    }
  }

  for (const button of root.querySelectorAll(".take-next")) {
    button.addEventListener("click", () => accept({ service: button.dataset.service }));
  }
  document.getElementById("end").addEventListener("click", () => P.send(v.socket, { type: "bye" }));
  document.getElementById("supervisor").addEventListener("click", () => P.send(v.socket, { type: "supervisor", allowed: !v.supervisor }));
  document.getElementById("make-link").addEventListener("click", () => P.send(v.socket, { type: "home_link", service: document.getElementById("link-service").value }));
  v.socket = P.openSocket(root.dataset.socket, onMessage);
  window.portalAgent = v;
})();
