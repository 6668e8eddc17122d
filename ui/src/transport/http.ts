// The browser transport: `fetch` with `Authorization: Bearer <admin token>`
// against the API on the same origin as the page (`metaclaw serve` serves
// the dashboard at /ui/ and the API at /api/), and the event stream read
// from `/api/events` with fetch streaming, reconnecting with back-off.

import { SseParser } from './sse';
import { TransportError, type ApiResponse, type EngineEvent, type StreamState, type Transport } from './types';

/** Reconnect delays: 1 s doubling to 30 s; reset once a stream opens. */
export function backoffMs(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, attempt));
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return null;
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

export class HttpTransport implements Transport {
  readonly kind = 'http' as const;

  constructor(
    private readonly token: string,
    private readonly base: string = '',
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  async call(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const init: RequestInit = { method, headers: this.headers({ Accept: 'application/json' }), cache: 'no-store' };
    if (body !== undefined) {
      init.headers = this.headers({ Accept: 'application/json', 'Content-Type': 'application/json' });
      init.body = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await fetch(this.base + path, init);
    } catch (e) {
      throw new TransportError(
        `cannot reach MetaClaw at ${location.origin}: is \`metaclaw serve\` (or the tray app) still running? (${String(e)})`,
      );
    }
    return { status: response.status, body: await readBody(response) };
  }

  subscribe(onEvent: (event: EngineEvent) => void, onState: (state: StreamState) => void): () => void {
    const abort = new AbortController();
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;

    const run = async (attempt: number): Promise<void> => {
      if (stopped) return;
      onState({ kind: 'connecting' });
      let opened = false;
      let reason = 'the event stream ended';
      try {
        const response = await fetch(`${this.base}/api/events`, {
          headers: this.headers({ Accept: 'text/event-stream' }),
          cache: 'no-store',
          signal: abort.signal,
        });
        if (response.status === 401) {
          const body = await readBody(response).catch(() => null);
          onState({ kind: 'refused', reason: errorMessage(body) ?? 'the admin token was refused' });
          return;
        }
        if (!response.ok || !response.body) {
          reason = `the event stream answered ${response.status}`;
        } else {
          opened = true;
          onState({ kind: 'live' });
          // Events may have been missed while disconnected.
          if (attempt > 0) onEvent({ type: 'reconnected' });
          const parser = new SseParser();
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            for (const message of parser.push(value)) {
              const event = parseEvent(message.event, message.data);
              if (event) onEvent(event);
            }
          }
        }
      } catch (e) {
        if (stopped) return;
        reason = `the event stream broke (${String(e)})`;
      }
      if (stopped) return;
      // A stream that was open is retried at once-ish; failed attempts back off.
      const wait = backoffMs(opened ? 0 : attempt);
      onState({ kind: 'retrying', reason, retryInMs: wait });
      timer = setTimeout(() => void run(opened ? 1 : attempt + 1), wait);
    };

    void run(0);
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      abort.abort();
    };
  }
}

/** An SSE message as an engine event; `null` for anything unreadable. */
export function parseEvent(name: string, data: string): EngineEvent | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const event = parsed as Record<string, unknown>;
  const type = typeof event.type === 'string' ? event.type : name;
  return { ...event, type };
}

function errorMessage(body: unknown): string | null {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const error = (body as { error: unknown }).error;
    if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') {
      return (error as { message: string }).message;
    }
  }
  return null;
}
