// A job's server-sent events read with fetch(), because EventSource cannot send the
// Authorization header (and the key must never go into a URL). A dropped stream, or the
// server's `timeout` event, is resumed with Last-Event-ID, so no change is missed or repeated.

import { apiFetch, jobPath } from './api.js';

export const FINAL_EVENTS = new Set(['succeeded', 'failed', 'canceled', 'deleted']);
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 5000];

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** One SSE message block -> {id, event, data} (null for comments and keep-alives). */
export function parseEvent(block) {
  const message = { id: null, event: 'message', data: [] };
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') message.id = value;
    else if (field === 'event') message.event = value;
    else if (field === 'data') message.data.push(value);
  }
  if (!message.data.length) return null;
  return { id: message.id, event: message.event, data: message.data.join('\n') };
}

async function readStream(response, onMessage, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const stop = () => reader.cancel().catch(() => {});
  signal.addEventListener('abort', stop, { once: true });
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer = (buffer + value).replace(/\r\n/g, '\n');
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const message = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (message) onMessage(message);
        end = buffer.indexOf('\n\n');
      }
    }
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/**
 * Follow job `id` until its final event: `onEvent(name, job)` for each event with the job's
 * public view. Resolves after the final event or when `signal` aborts; rejects with the API's
 * error when the stream is refused (unknown job, bad key).
 */
export async function followJob(id, onEvent, signal) {
  let lastEventId = null;
  let final = false;
  let failures = 0;
  while (!final && !signal.aborted) {
    const headers = lastEventId ? { 'Last-Event-ID': lastEventId } : {};
    try {
      const response = await apiFetch(jobPath(id, '/events'), { headers, signal });
      await readStream(response, (message) => {
        if (message.id) lastEventId = message.id;
        failures = 0;
        if (FINAL_EVENTS.has(message.event)) final = true;
        onEvent(message.event, JSON.parse(message.data));
      }, signal);
    } catch (exc) {
      if (signal.aborted || (exc && exc.name === 'AbortError')) return;
      if (exc && exc.status) throw exc; // the API refused: reconnecting would not help
      failures += 1;
    }
    if (!final) {
      await sleep(RECONNECT_DELAYS_MS[Math.min(failures, RECONNECT_DELAYS_MS.length - 1)], signal);
    }
  }
}
