import { describe, expect, it } from 'vitest';
import type { Timeline } from '../types';
import { ticks, timelineBars, timelineSvg, xOf } from './timeline';

const DAY = '2026-03-16';
const start = Date.parse(`${DAY}T00:00:00Z`);
const at = (hhmm: string): string => `${DAY}T${hhmm}:00Z`;
const ms = (hhmm: string): number => Date.parse(at(hhmm));
const fmt = (t: number): string => new Date(t).toISOString().slice(11, 16);

const timeline: Timeline = {
  date: DAY,
  timezone: 'UTC',
  start: at('00:00'),
  end: '2026-03-17T00:00:00Z',
  sleep: [
    { start: '2026-03-15T23:00:00Z', end: at('07:00') },
    { start: at('23:00'), end: '2026-03-17T07:00:00Z' },
  ],
  idle: [{ start: at('12:00'), end: at('12:40') }],
  meetings: [{ start: at('10:00'), end: at('11:00'), summary: 'Standup', uid: 'u1' }],
  windows: [
    {
      id: 'w1',
      opened_at_ms: ms('10:00'),
      triggers: ['calendar'],
      expected_end_ms: ms('11:00'),
      closed_at_ms: ms('10:55'),
      close_reason: 'user returned',
      work: [{ id: 'r1', worker: 'trainer', started_at_ms: ms('10:01'), ended_at_ms: ms('10:20'), outcome: 'finished', summary: 'step 1' }],
    },
    { id: 'w2', opened_at_ms: ms('15:00'), triggers: ['idle'], expected_end_ms: null, closed_at_ms: null, close_reason: null, work: [] },
  ],
};

describe('timelineBars', () => {
  it('clips sleep to the day and ends open windows now', () => {
    const bars = timelineBars(timeline, ms('16:00'), fmt);
    const sleep = bars.filter((b) => b.lane === 'sleep');
    expect(sleep.map((b) => [fmt(b.startMs), fmt(b.endMs)])).toEqual([
      ['00:00', '07:00'],
      ['23:00', '00:00'],
    ]);
    const open = bars.find((b) => b.lane === 'window' && b.variant === 'open');
    expect(open && fmt(open.endMs)).toBe('16:00');
    expect(bars.find((b) => b.lane === 'meeting')?.label).toBe('Meeting “Standup”: 10:00–11:00');
    expect(bars.find((b) => b.lane === 'work')?.label).toBe('trainer (finished): step 1: 10:01–10:20');
    expect(bars).toHaveLength(7);
  });
});

describe('layout', () => {
  it('maps the day onto the drawing width', () => {
    const end = start + 24 * 3_600_000;
    expect(xOf(start, start, end)).toBe(110);
    expect(xOf(end, start, end)).toBe(988);
    expect(xOf(start + 12 * 3_600_000, start, end)).toBe(549);
    expect(xOf(start - 1000, start, end)).toBe(110);
  });

  it('ticks every three hours, 9 on a 24-hour day and 9 on a 25-hour one', () => {
    expect(ticks(start, start + 24 * 3_600_000)).toHaveLength(9);
    expect(ticks(start, start + 25 * 3_600_000)).toHaveLength(9);
  });

  it('draws one rect per bar with its tooltip', () => {
    const el = timelineSvg(timeline, ms('16:00'), fmt, 'test day');
    expect(el.getAttribute('aria-label')).toBe('test day');
    expect(el.querySelectorAll('rect.tl-bar')).toHaveLength(7);
    expect(el.querySelector('rect.tl-meeting title')?.textContent).toContain('Standup');
    expect(el.querySelector('.tl-now')).not.toBeNull();
  });
});
