// The day's schedule as an SVG: one lane each for sleep hours, idle
// stretches, meetings, scheduler windows and the work that ran in them,
// over the local day (23 or 25 hours on daylight-saving days), with hour
// ticks and a "now" line. Layout is a pure function (tested); the SVG has a
// text alternative, and the page lists the same intervals as text.

import { svg } from '../dom';
import type { Timeline } from '../types';

export type Lane = 'sleep' | 'idle' | 'meeting' | 'window' | 'work';

export const LANES: [Lane, string][] = [
  ['sleep', 'Sleep hours'],
  ['idle', 'Idle'],
  ['meeting', 'Meetings'],
  ['window', 'Windows'],
  ['work', 'Work runs'],
];

export interface Bar {
  lane: Lane;
  startMs: number;
  endMs: number;
  /** Shown as the bar's tooltip. */
  label: string;
  /** A style variant: the worker for work runs, `open` for an open window. */
  variant?: string;
}

/** Every interval of the day as bars, clipped to the day; open ones end now. */
export function timelineBars(t: Timeline, nowMs: number, fmt: (ms: number) => string): Bar[] {
  const dayStart = Date.parse(t.start);
  const dayEnd = Date.parse(t.end);
  const bars: Bar[] = [];
  const push = (lane: Lane, startMs: number, endMs: number, what: string, variant?: string): void => {
    const a = Math.max(dayStart, startMs);
    const b = Math.min(dayEnd, endMs);
    if (!(b > a)) return;
    const bar: Bar = { lane, startMs: a, endMs: b, label: `${what}: ${fmt(startMs)}–${fmt(endMs)}` };
    if (variant !== undefined) bar.variant = variant;
    bars.push(bar);
  };
  for (const s of t.sleep) push('sleep', Date.parse(s.start), Date.parse(s.end), 'Sleep hours');
  for (const s of t.idle) push('idle', Date.parse(s.start), Date.parse(s.end), 'Idle');
  for (const m of t.meetings) push('meeting', Date.parse(m.start), Date.parse(m.end), m.summary ? `Meeting “${m.summary}”` : 'Busy in a calendar');
  for (const w of t.windows) {
    const open = w.closed_at_ms === null;
    const end = w.closed_at_ms ?? Math.max(nowMs, w.opened_at_ms);
    const why = w.triggers.length ? ` (${w.triggers.join(', ')})` : '';
    push('window', w.opened_at_ms, end, `Window${why}${open ? ', open now' : w.close_reason ? `, closed: ${w.close_reason}` : ''}`, open ? 'open' : undefined);
    for (const run of w.work) {
      const runEnd = run.ended_at_ms ?? Math.max(nowMs, run.started_at_ms);
      push('work', run.started_at_ms, runEnd, `${run.worker}${run.outcome ? ` (${run.outcome})` : ' (running)'}${run.summary ? `: ${run.summary}` : ''}`, run.worker);
    }
  }
  return bars;
}

const WIDTH = 1000;
const LABEL_W = 110;
const RIGHT_PAD = 12;
const LANE_H = 26;
const LANE_GAP = 8;
const TOP = 24;

/** The x coordinate of a time on a day drawn from LABEL_W to WIDTH - RIGHT_PAD. */
export function xOf(ms: number, dayStartMs: number, dayEndMs: number): number {
  const span = Math.max(1, dayEndMs - dayStartMs);
  const f = Math.min(1, Math.max(0, (ms - dayStartMs) / span));
  return LABEL_W + f * (WIDTH - LABEL_W - RIGHT_PAD);
}

/** Hour ticks every `stepHours` from the day's start (local midnight). */
export function ticks(dayStartMs: number, dayEndMs: number, stepHours = 3): number[] {
  const out: number[] = [];
  for (let t = dayStartMs; t <= dayEndMs; t += stepHours * 3_600_000) out.push(t);
  return out;
}

export function timelineSvg(t: Timeline, nowMs: number, fmt: (ms: number) => string, description: string): SVGSVGElement {
  const dayStart = Date.parse(t.start);
  const dayEnd = Date.parse(t.end);
  const height = TOP + LANES.length * (LANE_H + LANE_GAP) + 8;
  const laneY = (lane: Lane): number => TOP + LANES.findIndex(([l]) => l === lane) * (LANE_H + LANE_GAP);
  const bars = timelineBars(t, nowMs, fmt);

  const tickTimes = ticks(dayStart, dayEnd);
  const tickEls = tickTimes.map((ms, i) => {
    const x = xOf(ms, dayStart, dayEnd);
    // The last label would run off the right edge if centred.
    const anchor = i === tickTimes.length - 1 && ms >= dayEnd ? 'end' : 'middle';
    return svg(
      'g',
      { class: 'tl-tick' },
      svg('line', { x1: x, x2: x, y1: TOP - 6, y2: height - 8 }),
      svg('text', { x, y: TOP - 10, 'text-anchor': anchor }, fmt(ms)),
    );
  });
  const laneEls = LANES.map(([lane, name]) => {
    const y = laneY(lane);
    return svg(
      'g',
      { class: `tl-lane tl-lane-${lane}` },
      svg('rect', { class: 'tl-track', x: LABEL_W, y, width: WIDTH - LABEL_W - RIGHT_PAD, height: LANE_H, rx: 4 }),
      svg('text', { class: 'tl-label', x: 0, y: y + LANE_H / 2 + 5 }, name),
    );
  });
  const barEls = bars.map((b) => {
    const x1 = xOf(b.startMs, dayStart, dayEnd);
    const x2 = xOf(b.endMs, dayStart, dayEnd);
    return svg(
      'rect',
      {
        class: `tl-bar tl-${b.lane}${b.variant ? ` tl-${b.lane}-${b.variant.replace(/[^a-z0-9-]/gi, '')}` : ''}`,
        x: x1,
        y: laneY(b.lane) + 3,
        width: Math.max(2, x2 - x1),
        height: LANE_H - 6,
        rx: 3,
        dataset: { lane: b.lane },
      },
      svg('title', null, b.label),
    );
  });
  const nowEl =
    nowMs >= dayStart && nowMs <= dayEnd
      ? svg(
          'g',
          { class: 'tl-now' },
          svg('line', { x1: xOf(nowMs, dayStart, dayEnd), x2: xOf(nowMs, dayStart, dayEnd), y1: TOP - 4, y2: height - 6 }),
          svg('title', null, `Now, ${fmt(nowMs)}`),
        )
      : null;

  return svg(
    'svg',
    {
      class: 'timeline',
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: 'img',
      'aria-label': description,
      dataset: { bars: String(bars.length) },
    },
    laneEls,
    tickEls,
    barEls,
    nowEl,
  );
}
