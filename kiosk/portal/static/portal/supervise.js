// A supervisor's view of one call: receive-only, only while the agent allows it.
"use strict";

(function () {
  const root = document.getElementById("portal-supervise");
  if (!root) return;
  const P = window.PortalCall;
  const v = { socket: null, pc: null, ice: [] };

  async function watch() {
    v.pc = new RTCPeerConnection({ iceServers: v.ice });
    for (const kind of ["video", "audio", "video", "audio"]) v.pc.addTransceiver(kind, { direction: "recvonly" });
    const streams = [new MediaStream(), new MediaStream()];
    let videos = 0;
    v.pc.addEventListener("track", (event) => {
      const index = event.track.kind === "video" ? videos++ : (streams[0].getAudioTracks().length ? 1 : 0);
      streams[Math.min(index, 1)].addTrack(event.track);
      document.getElementById("v" + Math.min(index, 1)).srcObject = streams[Math.min(index, 1)];
    });
    await v.pc.setLocalDescription(await v.pc.createOffer());
    P.send(v.socket, { type: "offer", sdp: v.pc.localDescription.sdp, sdp_type: "offer" });
  }

  function onMessage(msg) {
    if (msg.type === "hello") v.ice = msg.ice_servers || [];
    else if (msg.type === "answer") v.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
    else if (msg.type === "ended") { P.stop(v.pc); P.say("已结束 · Ended (" + msg.reason + ")"); }
    else if (msg.type === "error") P.say("错误 · Error: " + msg.message);
  }

  document.getElementById("watch").addEventListener("click", watch);
  v.socket = P.openSocket(root.dataset.socket, onMessage);
})();
