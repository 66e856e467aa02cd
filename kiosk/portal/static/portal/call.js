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

  // VP8 first, and keep video/rtx: without RTX Chromium pads with empty frames (as kiosk.js).
  const CODEC_ORDER = ["video/vp8", "video/rtx"];
  function preferCodecs(pc) {
    if (!RTCRtpReceiver.getCapabilities) return;
    const codecs = RTCRtpReceiver.getCapabilities("video").codecs;
    const chosen = CODEC_ORDER.flatMap((m) => codecs.filter((c) => c.mimeType.toLowerCase() === m));
    if (!chosen.some((c) => c.mimeType.toLowerCase() === "video/vp8")) return;
    for (const t of pc.getTransceivers()) {
      if (t.receiver.track.kind === "video" && t.setCodecPreferences) t.setCodecPreferences(chosen);
    }
  }

  // A peer that sends `stream` and receives `extraVideo` more receive-only videos; every
  // candidate goes in the offer (the portal does not trickle).
  async function offer(iceServers, stream, extraVideo) {
    const pc = new RTCPeerConnection({ iceServers: iceServers || [] });
    if (stream) stream.getTracks().forEach((track) => pc.addTrack(track, stream));
    for (let i = 0; i < (extraVideo || 0); i += 1) pc.addTransceiver("video", { direction: "recvonly" });
    preferCodecs(pc);
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
