// The page of `asr serve`: microphone -> AudioWorklet (100-ms blocks at the context's own
// rate, declared to the server, which resamples) -> WebSocket /asr -> partial and final results.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
let session = null;  // {ws, context, media} while streaming

function setStatus(text, state, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
  document.body.dataset.state = state;
}

function seconds(t) {
  return t.toFixed(2);
}

function addUtterance(result) {
  const item = document.createElement("li");
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = `${seconds(result.start_time)}–${seconds(result.end_time)} s`;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = result.text;
  item.append(time, text);
  $("utterances").append(item);
  $("partial").textContent = "";
}

function onMessage(event) {
  const message = JSON.parse(event.data);
  if (message.type === "ready") {
    setStatus(`Listening (model: ${message.chunk_ms} ms chunks + ${message.lookahead_ms} ms lookahead).`, "streaming");
  } else if (message.type === "partial") {
    $("partial").textContent = message.text;
  } else if (message.type === "final") {
    if (message.text) addUtterance(message);
  } else if (message.type === "done") {
    setStatus(`Done: ${message.duration.toFixed(1)} s of audio, ${message.segments} utterance(s).`, "done");
  } else if (message.type === "error") {
    setStatus(`Server: ${message.message}`, "error", true);
  }
}

function showLevel(samples) {
  let peak = 0;
  for (const x of samples) peak = Math.max(peak, Math.abs(x));
  $("level").firstElementChild.style.width = `${Math.min(100, peak * 100)}%`;
}

async function start() {
  $("start").disabled = true;
  try {
    const media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const context = new AudioContext();
    await context.audioWorklet.addModule("/static/capture-worklet.js");
    const capture = new AudioWorkletNode(context, "capture", {
      processorOptions: { blockSize: Math.round(context.sampleRate / 10) },
    });
    context.createMediaStreamSource(media).connect(capture);
    capture.connect(context.destination);  // pulled by the graph; it outputs silence
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = token ? `?token=${encodeURIComponent(token)}` : "";
    const ws = new WebSocket(`${scheme}://${location.host}/asr${query}`);
    ws.binaryType = "arraybuffer";
    session = { ws, context, media, started: false };
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "start", sample_rate: context.sampleRate, format: "f32le" }));
      session.started = true;
      setStatus("Connected.", "connected");
    };
    ws.onmessage = onMessage;
    ws.onclose = (event) => {
      if (document.body.dataset.state !== "done" && document.body.dataset.state !== "error") {
        setStatus(`Connection closed (${event.code}${event.reason ? ": " + event.reason : ""}).`, "closed", event.code !== 1000);
      }
      release();
    };
    capture.port.onmessage = (event) => {
      showLevel(new Float32Array(event.data));
      if (session && session.started && ws.readyState === WebSocket.OPEN) ws.send(event.data);
    };
    $("stop").disabled = false;
  } catch (error) {
    setStatus(`Cannot start: ${error.message}`, "error", true);
    release();
  }
}

function stop() {
  $("stop").disabled = true;
  if (session && session.ws.readyState === WebSocket.OPEN) {
    session.ws.send(JSON.stringify({ type: "end" }));
    setStatus("Finishing the last utterance…", "finishing");
  }
  stopCapture();
}

function stopCapture() {
  if (!session) return;
  session.media.getTracks().forEach((track) => track.stop());
  if (session.context.state !== "closed") session.context.close();
}

function release() {
  stopCapture();
  session = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
