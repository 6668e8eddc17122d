// The one interface the dashboard talks to the engine through. Two
// implementations: Tauri IPC inside the tray app (`tauri.ts`) and HTTP with
// the admin token in a browser (`http.ts`). Both answer `{status, body}`
// exactly as the engine's router produced it.

export interface ApiResponse {
  status: number;
  body: unknown;
}

/** An engine event: the JSON of an SSE `data:` line, with its `type`. */
export interface EngineEvent {
  type: string;
  [field: string]: unknown;
}

/**
 * The event stream's condition, for the header: `live` (events arrive),
 * `connecting`/`retrying` (with the reason and when the next attempt is),
 * `refused` (the admin token was rejected; retrying cannot help).
 */
export type StreamState =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'retrying'; reason: string; retryInMs: number }
  | { kind: 'refused'; reason: string };

export interface Transport {
  readonly kind: 'tauri' | 'http';
  call(method: string, path: string, body?: unknown): Promise<ApiResponse>;
  /** Starts delivering events; returns a function that stops it. */
  subscribe(onEvent: (event: EngineEvent) => void, onState: (state: StreamState) => void): () => void;
}

/** The transport could not reach the engine at all (no HTTP status). */
export class TransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransportError';
  }
}
