// Collects the microphone's 128-sample render quanta into blocks of `blockSize` samples
// (100 ms at the context's rate: one endpoint block for the server) and posts each block's
// Float32 samples to the page, which sends them as one WebSocket frame.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = options.processorOptions.blockSize;
    this.block = new Float32Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;  // no input connected yet
    let offset = 0;
    while (offset < channel.length) {
      const n = Math.min(channel.length - offset, this.size - this.filled);
      this.block.set(channel.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === this.size) {
        this.port.postMessage(this.block.buffer, [this.block.buffer]);  // transferred: this.block is now empty
        this.block = new Float32Array(this.size);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("capture", CaptureProcessor);
