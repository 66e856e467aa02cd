/* Sender-side encoded-frame transform (RTCRtpScriptTransform): tells the page when each
 * encoded camera frame leaves, keyed by its RTP timestamp. Frames pass through unchanged.
 * Times are timeOrigin + now() so that the page can convert them to its own clock. */
"use strict";

function rtpOf(frame) {
  try {
    const md = frame.getMetadata();
    if (md && md.rtpTimestamp !== undefined) return md.rtpTimestamp;
  } catch (e) {}
  return frame.timestamp;
}

self.onrtctransform = (event) => {
  const { readable, writable } = event.transformer;
  readable
    .pipeThrough(new TransformStream({
      transform(frame, controller) {
        self.postMessage({ rtp: rtpOf(frame), at: performance.timeOrigin + performance.now() });
        controller.enqueue(frame);
      },
    }))
    .pipeTo(writable)
    .catch(() => {});
};
