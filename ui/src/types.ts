// The shapes of the engine API's answers, as documented in
// src-tauri/crates/engine/API.md. Fields the dashboard only displays when
// present are optional, so an older or newer engine still renders.

export type Status = 'active' | 'pending' | 'disabled';
export type Score = -1 | 0 | 1;

export interface Overview {
  version?: string;
  mode: string;
  state: string;
  state_reason: string;
  paused_until: string | null;
  skills: { active: number; pending: number; disabled: number; problems: number };
  live_sessions?: number;
  upstream?: { api: string; base_url: string; model: string | null } | null;
  last_event?: { type: string; at: string; text: string } | null;
  training?: { policy_version: number; steps: number; pending_turns: number } | null;
}

export interface Usage {
  uses: number;
  last_used_at: string | null;
  mean_score: number | null;
  baseline: number | null;
  effect: number | null;
}

export interface SkillSummary extends Usage {
  name: string;
  description: string;
  status: Status;
  origin: string;
  category: string | null;
  updated_at: string | null;
  disabled_reason?: string | null;
}

export interface SkillProblem {
  path: string;
  reason: string;
}

export interface SkillList {
  skills: SkillSummary[];
  problems: SkillProblem[];
}

export interface SkillHistoryEntry {
  at: string;
  /** `created`, `edited`, `disabled`, `approved`, `merged_into`, … */
  kind: string;
  /** `evolver`, `curator` or `user`. */
  by?: string;
  detail?: string | null;
  other_skill?: string;
  evolution_id?: string;
  skill_generation?: number;
}

export interface SkillDetail {
  name: string;
  description: string;
  disabled_reason?: string | null;
  status: Status;
  origin: string;
  path: string;
  markdown: string;
  body: string;
  front_matter: Record<string, unknown>;
  provenance: Record<string, unknown> | null;
  history: SkillHistoryEntry[];
  usage: Usage;
}

export interface SessionSummary {
  id: string;
  started_at: string;
  started_at_ms?: number;
  ended_at: string | null;
  end_reason: string | null;
  turns: number;
  main_turns: number;
  mean_score: number | null;
  model: string | null;
  policy_version: number | null;
}

export interface Turn {
  id: string | number;
  turn_index: number;
  turn_type: 'main' | 'side';
  started_at: string;
  status: string;
  client_dialect: string;
  model: string | null;
  latency_ms: number | null;
  request: unknown;
  response: unknown;
  injected_skills: string[];
  score: Score | null;
  judge_reason: string | null;
  policy_version: number | null;
  error?: string | null;
}

export interface SessionDetail {
  session: SessionSummary;
  turns: Turn[];
}

export interface TrainingStep {
  step: number;
  at: string;
  /** `trained`, or why the step did not train (`failed`, …). */
  outcome?: string;
  error?: string | null;
  duration_ms: number | null;
  reward_mean: number | null;
  reward_std: number | null;
  turns: number;
  loss: string | number | null;
  metrics?: Record<string, unknown>;
  window_id: string | null;
  policy_version: number | null;
}

export interface Checkpoint {
  name: string;
  path: string;
  kind: string;
  step: number | string | null;
  at: string;
}

export interface Training {
  mode: string;
  trains: boolean;
  summary: {
    steps: number;
    policy_version: number;
    /** A count, or the pending turns' ids. */
    pending_turns: number | unknown[];
    batch_size: number;
    last_step_at: string | null;
  };
  steps: TrainingStep[];
  checkpoints: Checkpoint[];
}

export interface Interval {
  start: string;
  end: string;
}

export interface Meeting extends Interval {
  summary: string | null;
  uid?: string | null;
}

export interface WorkRun {
  id: string;
  worker: string;
  started_at_ms: number;
  ended_at_ms: number | null;
  outcome: string | null;
  summary: string | null;
}

export interface WindowRow {
  id: string;
  opened_at_ms: number;
  triggers: string[];
  expected_end_ms: number | null;
  closed_at_ms: number | null;
  close_reason: string | null;
  work: WorkRun[];
}

export interface Timeline {
  date: string;
  timezone: string;
  start: string;
  end: string;
  sleep: Interval[];
  idle: Interval[];
  meetings: Meeting[];
  windows: WindowRow[];
}

/** `GET /api/schedule`: the scheduler's status. Rendered defensively. */
export interface ScheduleStatus {
  state: string;
  reason?: string;
  explanation?: string;
  since?: string;
  paused_until?: string | null;
  enabled?: boolean;
  triggers?: unknown[];
  blockers?: unknown[];
  window?: { id: string; opened_at: string; triggers: unknown[]; expected_end: string | null } | null;
  work?: { worker: string; started_at: string } | null;
  assessment?: { triggers?: unknown[]; blocker?: unknown; expected_end?: string | null; next_change?: string | null };
  sleep_hours?: string | null;
  idle_threshold_seconds?: number;
  timezone?: string;
  [field: string]: unknown;
}

export interface SecretState {
  set: boolean;
  masked: string | null;
  store: string | null;
}

export interface Preset {
  id: string;
  name: string;
  api: string;
  base_url: string;
  model: string | null;
}

export interface CalendarState {
  source: string;
  status: string;
  detail: string | null;
}

export interface Settings {
  values: Record<string, unknown>;
  secrets: Record<string, SecretState>;
  presets: Preset[];
  calendars: CalendarState[];
  restart_required: string[];
}

export interface SettingsApplied {
  applied: string[];
  restart_required: string[];
}
