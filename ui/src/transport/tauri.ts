// The tray app's transport: the `api` command runs the engine's router
// in-process (the shell adds the admin token), and engine events arrive as
// the Tauri event `engine-event`, whose payload is an SSE `data:` object.
// The Tauri modules are imported on demand so the browser build never
// loads them.

import { TransportError, type ApiResponse, type EngineEvent, type StreamState, type Transport } from './types';

/** True inside the tray app's web view. */
export function inTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

export class TauriTransport implements Transport {
  readonly kind = 'tauri' as const;

  async call(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const { invoke } = await import('@tauri-apps/api/core');
    try {
      const answer = await invoke<ApiResponse>('api', { method, path, body: body ?? null });
      return { status: answer.status, body: answer.body };
    } catch (e) {
      // The command itself failed (not an API error, which comes back as a
      // status): the shell's message says why.
      throw new TransportError(`the app could not run \`${method} ${path}\`: ${describe(e)}`);
    }
  }

  subscribe(onEvent: (event: EngineEvent) => void, onState: (state: StreamState) => void): () => void {
    let stop: (() => void) | null = null;
    let stopped = false;
    onState({ kind: 'connecting' });
    void import('@tauri-apps/api/event')
      .then(({ listen }) =>
        listen<unknown>('engine-event', (e) => {
          const payload = e.payload;
          if (typeof payload === 'object' && payload !== null && typeof (payload as EngineEvent).type === 'string') {
            onEvent(payload as EngineEvent);
          }
        }),
      )
      .then((unlisten) => {
        if (stopped) unlisten();
        else {
          stop = unlisten;
          onState({ kind: 'live' });
        }
      })
      .catch((e: unknown) => onState({ kind: 'retrying', reason: `cannot listen for engine events: ${describe(e)}`, retryInMs: 0 }));
    return () => {
      stopped = true;
      stop?.();
    };
  }
}

function describe(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}
