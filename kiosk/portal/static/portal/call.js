// Shared by the portal pages: the socket and the peer connection (docs/portal.md).
"use strict";

window.PortalCall = (function () {
  const GATHER_MS = 1500;
  // Microphone with echo cancellation and noise suppression on: the portal is a conversation.
  const MEDIA = {
    video: { width: 640, height: 480, frameRate: 30 },
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  };

  function openSocket(path, onMessage) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + path);
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    return socket;
  }

  function send(socket, message) {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function gatheringComplete(pc) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const timer = setTimeout(resolve, GATHER_MS);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  // A peer that sends `stream` and receives `extraVideo` more receive-only videos; every
  // candidate goes in the offer (the portal does not trickle).
  async function offer(iceServers, stream, extraVideo) {
    const pc = new RTCPeerConnection({ iceServers: iceServers || [] });
    if (stream) stream.getTracks().forEach((track) => pc.addTrack(track, stream));
    for (let i = 0; i < (extraVideo || 0); i += 1) pc.addTransceiver("video", { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc);
    return pc;
  }

  function say(text, state) {
    const status = document.getElementById("status");
    if (!status) return;
    status.textContent = text;
    if (state) status.dataset.state = state;
  }

  function stop(pc, stream) {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    if (pc) pc.close();
  }

  return { MEDIA, openSocket, send, offer, say, stop };
})();
