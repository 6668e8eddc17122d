// The scheduler: what it is doing now and why, the controls (pause for an
// hour or until tomorrow, resume, train now), and a day's timeline of sleep
// hours, idle stretches, meetings, windows and what ran in them.

import { fact } from '../components/facts';
import { stateBadge } from '../components/badges';
import { errorBox, errorText } from '../components/feedback';
import { LANES, timelineBars, timelineSvg } from '../components/timeline';
import { h, replace, uniqueId } from '../dom';
import { plural, relative, when, words } from '../format';
import type { Page, PageContext } from '../page';
import type { EngineEvent } from '../transport/types';
import type { ScheduleStatus, Timeline } from '../types';

const HOUR_MS = 3_600_000;

export class SchedulePage implements Page {
  readonly element: HTMLElement;
  private readonly statusBox = h('div', { class: 'panel status-panel' });
  private readonly controls = h('div', { class: 'actions', role: 'group', 'aria-label': 'Scheduler controls' });
  private readonly actionError = h('div');
  private readonly day = h('div', { class: 'day' });
  private readonly dateInput: HTMLInputElement;
  private status: ScheduleStatus | null = null;
  private timeline: Timeline | null = null;
  private date: string | null;
  private working = false;

  constructor(private readonly ctx: PageContext) {
    this.date = validDate(ctx.params.get('date'));
    const dateId = uniqueId('schedule-date');
    this.dateInput = h('input', {
      id: dateId,
      type: 'date',
      value: this.date ?? '',
      onchange: () => this.goTo(validDate(this.dateInput.value)),
    });
    const nav = h(
      'div',
      { class: 'toolbar day-nav', role: 'group', 'aria-label': 'Day' },
      h('button', { type: 'button', class: 'button', onclick: () => this.shift(-1) }, '← Previous day'),
      h('div', { class: 'field' }, h('label', { for: dateId }, 'Day'), this.dateInput),
      h('button', { type: 'button', class: 'button', onclick: () => this.shift(1) }, 'Next day →'),
      h('button', { type: 'button', class: 'button', onclick: () => this.goTo(null) }, 'Today'),
    );
    this.element = h(
      'section',
      { class: 'page page-schedule', 'aria-labelledby': 'page-title' },
      h('h1', { id: 'page-title', tabindex: '-1' }, 'Schedule'),
      this.statusBox,
      this.controls,
      this.actionError,
      h('h2', null, 'Timeline'),
      nav,
      this.day,
    );
  }

  wants(event: EngineEvent): boolean {
    return ['schedule_changed', 'training_step', 'training_finished', 'settings_changed', 'reconnected', 'lagged'].includes(event.type);
  }

  busy(): boolean {
    return this.working;
  }

  async load(): Promise<void> {
    const [status, timeline] = await Promise.all([this.ctx.api.schedule(), this.ctx.api.timeline(this.date ?? undefined)]);
    this.status = status;
    this.timeline = timeline;
    this.render();
  }

  private goTo(date: string | null): void {
    this.date = date;
    const params = new URLSearchParams();
    if (date) params.set('date', date);
    this.ctx.replaceParams(params);
    this.ctx.api
      .timeline(date ?? undefined)
      .then((t) => {
        this.timeline = t;
        this.render();
      })
      .catch((e: unknown) => replace(this.day, errorBox(e)));
  }

  private shift(days: number): void {
    const base = this.timeline?.date ?? this.date;
    if (!base) return;
    const d = new Date(`${base}T12:00:00Z`);
    d.setUTCDate(d.getUTCDate() + days);
    this.goTo(d.toISOString().slice(0, 10));
  }

  private render(): void {
    if (this.status) this.renderStatus(this.status);
    if (this.timeline) this.renderDay(this.timeline);
    const t = this.timeline;
    this.ctx.setTitle(t ? `Schedule (${t.date === todayIn(t.timezone) ? 'today' : t.date})` : 'Schedule');
  }

  private renderStatus(s: ScheduleStatus): void {
    const reason = s.reason ?? s.explanation ?? '';
    const paused = s.paused_until && Date.parse(s.paused_until) > Date.now() ? s.paused_until : null;
    const triggers = (s.triggers ?? s.assessment?.triggers ?? []).map(describe).filter(Boolean);
    const blockers = (s.blockers ?? (s.assessment?.blocker ? [s.assessment.blocker] : [])).map(describe).filter(Boolean);
    replace(
      this.statusBox,
      h('p', { class: 'state-line' }, h('span', { class: 'muted' }, 'Now: '), stateBadge(s.state), s.since ? h('span', { class: 'muted small' }, ` since ${when(s.since)}`) : null),
      reason ? h('p', { class: 'reason' }, reason) : null,
      h(
        'dl',
        { class: 'facts inline' },
        paused ? fact('Paused until', `${when(paused)} (${relative(paused)})`) : null,
        s.window ? fact('Window', `open since ${when(s.window.opened_at)}${s.window.expected_end ? `, expected to end ${when(s.window.expected_end)}` : ''}`) : null,
        s.work ? fact('Running', `${s.work.worker} since ${when(s.work.started_at)}`) : null,
        triggers.length ? fact('Triggers that hold', triggers.join(', ')) : fact('Triggers that hold', 'none'),
        blockers.length ? fact('Held back by', blockers.join(', ')) : null,
        s.sleep_hours ? fact('Sleep hours', s.sleep_hours) : null,
        s.idle_threshold_seconds !== undefined ? fact('Idle after', `${Math.round(s.idle_threshold_seconds / 60)} min without input`) : null,
      ),
    );
    const button = (label: string, run: () => Promise<unknown>, done: string, cls = ''): HTMLButtonElement =>
      h('button', { type: 'button', class: `button ${cls}`.trim(), onclick: () => void this.act(run, done) }, label);
    const tomorrow = tomorrowMorning(s.sleep_hours ?? null);
    replace(
      this.controls,
      paused
        ? button('Resume now', () => this.ctx.api.pause(null), 'Learning resumed.', 'button-primary')
        : null,
      button('Pause for 1 hour', () => this.ctx.api.pause(new Date(Date.now() + HOUR_MS)), 'Paused for an hour.'),
      h(
        'button',
        {
          type: 'button',
          class: 'button',
          title: `Until ${when(tomorrow.toISOString())}`,
          onclick: () => void this.act(() => this.ctx.api.pause(tomorrowMorning(s.sleep_hours ?? null)), 'Paused until tomorrow.'),
        },
        'Pause until tomorrow',
      ),
      button('Train now', () => this.ctx.api.scheduleTrainNow(), 'A window was opened: background work runs now.'),
    );
  }

  private async act(run: () => Promise<unknown>, done: string): Promise<void> {
    this.working = true;
    this.actionError.replaceChildren();
    for (const b of Array.from(this.controls.querySelectorAll('button'))) b.disabled = true;
    try {
      await run();
      this.ctx.notify(done);
      this.ctx.refreshOverview();
      this.status = await this.ctx.api.schedule();
      this.renderStatus(this.status);
    } catch (e) {
      replace(this.actionError, errorBox(e));
      this.ctx.notify(errorText(e), 'error');
    } finally {
      this.working = false;
      for (const b of Array.from(this.controls.querySelectorAll('button'))) b.disabled = false;
    }
  }

  private renderDay(t: Timeline): void {
    this.dateInput.value = t.date;
    const fmt = clockIn(t.timezone);
    const now = Date.now();
    const bars = timelineBars(t, now, fmt);
    const counts = LANES.map(([lane, name]) => `${name.toLowerCase()}: ${bars.filter((b) => b.lane === lane).length}`).join(', ');
    const description = `Timeline of ${t.date} (${t.timezone}): ${counts}.`;
    const legend = h(
      'ul',
      { class: 'legend' },
      LANES.map(([lane, name]) => h('li', null, h('span', { class: `swatch tl-${lane}`, 'aria-hidden': 'true' }), name)),
    );
    const list = (title: string, items: (string | Node)[]): HTMLElement =>
      h('section', { class: 'day-list' }, h('h3', null, title), items.length ? h('ul', null, items.map((i) => h('li', null, i))) : h('p', { class: 'muted' }, 'None.'));
    const span = (a: string | number, b: string | number | null): string => `${fmt(typeof a === 'number' ? a : Date.parse(a))}–${b === null ? 'now' : fmt(typeof b === 'number' ? b : Date.parse(b))}`;
    replace(
      this.day,
      h('figure', { class: 'timeline-figure', dataset: { date: t.date } }, timelineSvg(t, now, fmt, description), h('figcaption', null, `${t.date}, times in ${t.timezone}`), legend),
      h(
        'div',
        { class: 'day-lists' },
        list(
          `Windows (${t.windows.length})`,
          t.windows.map((w) =>
            h(
              'div',
              null,
              h('strong', null, span(w.opened_at_ms, w.closed_at_ms)),
              ` — ${w.triggers.length ? w.triggers.map(words).join(', ') : 'no trigger recorded'}`,
              w.close_reason ? h('span', { class: 'muted' }, `; closed: ${w.close_reason}`) : w.closed_at_ms === null ? h('span', { class: 'muted' }, '; open now') : null,
              w.work.length
                ? h(
                    'ul',
                    null,
                    w.work.map((r) => h('li', null, `${words(r.worker)} ${span(r.started_at_ms, r.ended_at_ms)}: ${r.outcome ? words(r.outcome) : 'running'}${r.summary ? ` — ${r.summary}` : ''}`)),
                  )
                : h('p', { class: 'muted small' }, 'Nothing ran in it.'),
            ),
          ),
        ),
        list(`Meetings (${t.meetings.length})`, t.meetings.map((m) => `${span(m.start, m.end)} ${m.summary ?? 'busy'}`)),
        list('Sleep hours', t.sleep.map((s) => span(s.start, s.end))),
        list(`Idle stretches (${t.idle.length})`, t.idle.map((s) => span(s.start, s.end))),
      ),
      t.windows.length === 0
        ? h('p', { class: 'muted' }, `No window on this day. ${plural(t.meetings.length, 'meeting')} and ${t.sleep.length ? 'sleep hours' : 'no sleep hours'} were known; a window opens when one of them, idle time or a locked screen says you are away.`)
        : null,
    );
  }
}


function describe(x: unknown): string {
  if (typeof x === 'string') return words(x);
  if (typeof x === 'object' && x !== null) {
    const o = x as Record<string, unknown>;
    const kind = typeof o.kind === 'string' ? words(o.kind) : '';
    const rest = Object.entries(o)
      .filter(([k]) => k !== 'kind')
      .map(([k, v]) => `${words(k)} ${typeof v === 'string' && !Number.isNaN(Date.parse(v)) && v.includes('T') ? when(v) : String(v)}`);
    return [kind, ...rest].filter(Boolean).join(' ');
  }
  return '';
}

function validDate(text: string | null): string | null {
  return text && /^\d{4}-\d{2}-\d{2}$/.test(text) ? text : null;
}

function clockIn(timezone: string): (ms: number) => string {
  let f: Intl.DateTimeFormat;
  try {
    f = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: timezone });
  } catch {
    f = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }
  return (ms) => f.format(new Date(ms));
}

function todayIn(timezone: string): string {
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
  } catch {
    return new Date().toISOString().slice(0, 10);
  }
}

/** Tomorrow when the sleep hours end ("23:00-07:00" → 07:00), else 08:00, local time. */
export function tomorrowMorning(sleepHours: string | null, now = new Date()): Date {
  const m = sleepHours ? /(\d{1,2}):(\d{2})\D+(\d{1,2}):(\d{2})/.exec(sleepHours) : null;
  const hour = m ? Number(m[3]) : 8;
  const minute = m ? Number(m[4]) : 0;
  const d = new Date(now);
  d.setDate(d.getDate() + 1);
  d.setHours(hour, minute, 0, 0);
  return d;
}
