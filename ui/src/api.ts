// Typed calls to the engine API over whichever transport the page runs
// with. An error answer (`{error: {code, message, fields}}`) becomes an
// `ApiError` the pages show as it is; a refused admin token is reported
// once to the app, which replaces the page with instructions.

import { TransportError, type Transport } from './transport/types';
import type {
  Overview,
  ScheduleStatus,
  SessionDetail,
  SessionSummary,
  Settings,
  SettingsApplied,
  SkillDetail,
  SkillList,
  Timeline,
  Training,
} from './types';

export class ApiError extends Error {
  constructor(
    /** The HTTP status; 0 when the engine could not be reached. */
    readonly status: number,
    readonly code: string,
    message: string,
    /** Per-field messages of a 422, keyed by the field (e.g. `upstream.model`). */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Reads an error body; tolerates bodies that are not the documented shape. */
export function toApiError(status: number, body: unknown): ApiError {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const error = (body as { error: unknown }).error;
    if (typeof error === 'object' && error !== null) {
      const e = error as { code?: unknown; message?: unknown; fields?: unknown };
      const fields: Record<string, string> = {};
      if (typeof e.fields === 'object' && e.fields !== null) {
        for (const [k, v] of Object.entries(e.fields)) fields[k] = String(v);
      }
      return new ApiError(
        status,
        typeof e.code === 'string' ? e.code : codeFor(status),
        typeof e.message === 'string' && e.message ? e.message : `the engine answered ${status}`,
        fields,
      );
    }
    if (typeof error === 'string') return new ApiError(status, codeFor(status), error);
  }
  const text = typeof body === 'string' && body.trim() ? body.trim().slice(0, 300) : `the engine answered ${status}`;
  return new ApiError(status, codeFor(status), text);
}

function codeFor(status: number): string {
  if (status === 401) return 'unauthorized';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 422) return 'invalid';
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'internal';
  return 'bad_request';
}

const seg = encodeURIComponent;

export class Api {
  /** Called once per refused request (401), so the app can show the gate. */
  onUnauthorized: ((error: ApiError) => void) | null = null;

  constructor(readonly transport: Transport) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let answer;
    try {
      answer = await this.transport.call(method, path, body);
    } catch (e) {
      if (e instanceof TransportError) throw new ApiError(0, 'unreachable', e.message);
      throw e;
    }
    if (answer.status >= 200 && answer.status < 300) return answer.body as T;
    const error = toApiError(answer.status, answer.body);
    if (answer.status === 401) this.onUnauthorized?.(error);
    throw error;
  }

  overview(): Promise<Overview> {
    return this.request('GET', '/api/overview');
  }

  skills(q: string, status: string): Promise<SkillList> {
    const params = new URLSearchParams();
    if (q) params.set('q', q);
    params.set('status', status || 'all');
    return this.request('GET', `/api/skills?${params}`);
  }

  skill(name: string): Promise<SkillDetail> {
    return this.request('GET', `/api/skills/${seg(name)}`);
  }

  saveSkill(name: string, markdown: string): Promise<SkillDetail> {
    return this.request('PUT', `/api/skills/${seg(name)}`, { markdown });
  }

  skillAction(name: string, action: 'enable' | 'disable' | 'approve' | 'reject', body: object = {}): Promise<SkillDetail> {
    return this.request('POST', `/api/skills/${seg(name)}/${action}`, body);
  }

  deleteSkill(name: string): Promise<{ deleted: string }> {
    return this.request('DELETE', `/api/skills/${seg(name)}`);
  }

  sessions(limit: number, beforeMs?: number): Promise<{ sessions: SessionSummary[] }> {
    const params = new URLSearchParams({ limit: String(limit) });
    if (beforeMs !== undefined) params.set('before', String(beforeMs));
    return this.request('GET', `/api/sessions?${params}`);
  }

  session(id: string): Promise<SessionDetail> {
    return this.request('GET', `/api/sessions/${seg(id)}`);
  }

  training(): Promise<Training> {
    return this.request('GET', '/api/training');
  }

  trainNow(): Promise<{ status: string }> {
    return this.request('POST', '/api/training/now', {});
  }

  schedule(): Promise<ScheduleStatus> {
    return this.request<ScheduleStatus | { status: ScheduleStatus }>('GET', '/api/schedule').then((body) =>
      // `schedule status --json` wraps the status; the API may too.
      'state' in body ? body : body.status,
    );
  }

  timeline(date?: string): Promise<Timeline> {
    return this.request('GET', `/api/schedule/timeline${date ? `?date=${seg(date)}` : ''}`);
  }

  pause(until: Date | null): Promise<unknown> {
    return this.request('POST', '/api/schedule/pause', { until: until ? until.toISOString() : null });
  }

  scheduleTrainNow(): Promise<unknown> {
    return this.request('POST', '/api/schedule/train-now', {});
  }

  settings(): Promise<Settings> {
    return this.request('GET', '/api/settings');
  }

  saveSettings(values: Record<string, unknown>, secrets: Record<string, string | null>): Promise<SettingsApplied> {
    return this.request('PUT', '/api/settings', { values, secrets });
  }
}
