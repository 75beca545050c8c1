// Audio thread: float samples at the AudioContext's rate -> 16-bit PCM chunks at the
// model's rate, posted to the page every ~100 ms. When the context already runs at the
// model's rate (the page asks for that; the browser then resamples the microphone with
// its own filter) this only converts; otherwise it resamples by linear interpolation.
class PcmProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.targetRate = options.processorOptions.targetRate;
    this.step = sampleRate / this.targetRate; // input samples per output sample
    this.pos = 0; // position of the next output sample, in input samples
    this.last = 0; // the previous block's last sample (for interpolation)
    this.chunk = new Int16Array(Math.round(this.targetRate / 10));
    this.filled = 0;
    this.port.onmessage = (event) => {
      if (event.data === 'flush') {
        this.post();
        this.port.postMessage({ flushed: true });
      }
    };
  }

  post() {
    if (this.filled > 0) {
      const out = this.chunk.slice(0, this.filled);
      this.port.postMessage(out.buffer, [out.buffer]);
      this.filled = 0;
    }
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.chunk[this.filled++] = Math.round(clipped * 32767);
    if (this.filled === this.chunk.length) this.post();
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const samples = input[0]; // mono: the first channel
    if (this.step === 1) {
      for (let i = 0; i < samples.length; i++) this.push(samples[i]);
      return true;
    }
    // x(-1) is this.last; output samples at positions pos, pos + step, ...
    while (this.pos < samples.length - 1) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i < 0 ? this.last : samples[i];
      const b = samples[i + 1];
      this.push(a + (b - a) * frac);
      this.pos += this.step;
    }
    this.pos -= samples.length;
    this.last = samples[samples.length - 1];
    return true;
  }
}

registerProcessor('pcm-processor', PcmProcessor);
