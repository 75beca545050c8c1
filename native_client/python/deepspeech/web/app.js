// The DeepSpeech page: microphone -> AudioWorklet (16-bit PCM at the model's rate)
// -> WebSocket /ws (partial and final transcripts), and file drop -> POST /stt.
'use strict';

const page = {
  rate: 16000,
  socket: null,
  context: null,
  media: null,
  node: null,
  partials: [], // every partial transcript received (read by the browser test)
  finals: [],
};
window.deepspeechPage = page;

const $ = (id) => document.getElementById(id);

function setStatus(text) {
  $('status').textContent = text;
}

function showResult(result) {
  $('transcript').textContent = result.transcript;
  $('words').textContent = (result.words || [])
    .map((w) => `${w.word} ${w.start.toFixed(2)}–${w.end.toFixed(2)} s`)
    .join(' · ');
}

async function init() {
  try {
    const health = await (await fetch('health')).json();
    page.rate = health.sample_rate;
    const kind = health.streaming ? 'streaming' : 'whole-utterance';
    setStatus(`Ready: ${health.sample_rate} Hz ${kind} model.`);
    $('record').disabled = false;
  } catch (err) {
    setStatus(`Cannot reach the server: ${err}`);
  }
}

async function openContext(media) {
  // Ask for the model's rate so that the browser resamples with its own filter;
  // browsers that cannot (e.g. Firefox with a 48 kHz microphone) get the default rate
  // and the worklet resamples (?resample=worklet forces that path).
  const workletOnly = new URLSearchParams(window.location.search).get('resample') === 'worklet';
  try {
    if (workletOnly) throw new Error('resampling in the worklet');
    const context = new AudioContext({ sampleRate: page.rate });
    return [context, context.createMediaStreamSource(media)];
  } catch (err) {
    const context = new AudioContext();
    return [context, context.createMediaStreamSource(media)];
  }
}

function socketUrl() {
  const url = new URL('ws', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

function onMessage(event) {
  const message = JSON.parse(event.data);
  if (message.type === 'partial') {
    if (message.transcript !== null) {
      page.partials.push(message.transcript);
      $('partial').textContent = message.transcript;
    }
  } else if (message.type === 'final') {
    page.finals.push(message.transcript);
    $('partial').textContent = '';
    showResult(message);
    setStatus(`Done: ${message.audio_s.toFixed(1)} s of audio.`);
  } else if (message.type === 'error') {
    setStatus(`Server error: ${message.error}`);
  }
}

async function start() {
  $('record').disabled = true;
  page.media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
      autoGainControl: false },
  });
  const [context, source] = await openContext(page.media);
  page.context = context;
  await context.audioWorklet.addModule('static/pcm-worklet.js');
  page.node = new AudioWorkletNode(context, 'pcm-processor', {
    processorOptions: { targetRate: page.rate },
  });
  const socket = new WebSocket(socketUrl());
  socket.binaryType = 'arraybuffer';
  socket.onmessage = onMessage;
  socket.onclose = (event) => {
    if (event.code !== 1000) setStatus(`Connection closed (${event.code}) ${event.reason}`);
  };
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  socket.send(JSON.stringify({ type: 'start', sample_rate: page.rate, format: 's16le' }));
  page.socket = socket;
  page.node.port.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer) {
      if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
    } else if (event.data.flushed) {
      socket.send(JSON.stringify({ type: 'end' }));
    }
  };
  source.connect(page.node);
  $('record').textContent = 'Stop';
  $('record').classList.add('recording');
  $('record').disabled = false;
  setStatus(`Listening (${context.sampleRate} Hz → ${page.rate} Hz)…`);
}

async function stop() {
  $('record').disabled = true;
  page.node.port.postMessage('flush'); // the worklet sends the rest, then 'end' goes
  page.media.getTracks().forEach((track) => track.stop());
  setStatus('Finishing…');
  await new Promise((resolve) => setTimeout(resolve, 200));
  await page.context.close();
  page.context = null;
  $('record').textContent = 'Start microphone';
  $('record').classList.remove('recording');
  $('record').disabled = false;
}

async function upload(file) {
  setStatus(`Transcribing ${file.name}…`);
  const response = await fetch('stt', { method: 'POST', body: file });
  const result = await response.json();
  if (!response.ok) {
    setStatus(`Server error: ${result.error}`);
    return;
  }
  page.finals.push(result.transcript);
  showResult(result);
  setStatus(`Done: ${file.name}, ${result.duration.toFixed(1)} s of audio.`);
}

$('record').addEventListener('click', () => (page.context ? stop() : start()).catch(
  (err) => setStatus(`Microphone error: ${err}`)));
const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
});
$('file').addEventListener('change', (event) => {
  if (event.target.files.length) upload(event.target.files[0]);
});
init();
