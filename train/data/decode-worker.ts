// Worker thread of BatchLoader: decodes and augments one sample per request.
import { parentPort } from 'node:worker_threads';
import { loadSample } from './image.js';
import type { DecodeReply, DecodeRequest } from './loader.js';

const port = parentPort!;
port.on('message', async ({ id, path, augment, seed }: DecodeRequest) => {
  try {
    const pixels = await loadSample(path, augment, seed);
    // Transferred, not copied: the buffer is fresh per sample.
    port.postMessage({ id, pixels } satisfies DecodeReply, [pixels.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ id, error: (e as Error).message } satisfies DecodeReply);
  }
});
