// Recent conversations, newest first, fifty at a time ("Load older"
// pages back with the API's `before` cursor). New sessions and turns
// arrive live: the newest page is re-read and merged, older pages kept.

import { meanScore } from '../components/badges';
import { errorBox } from '../components/feedback';
import { h, replace } from '../dom';
import { count, duration, when, words } from '../format';
import type { Page, PageContext } from '../page';
import { sessionHref } from '../router';
import type { EngineEvent } from '../transport/types';
import type { SessionSummary } from '../types';

const PAGE_SIZE = 50;

export class SessionsPage implements Page {
  readonly element: HTMLElement;
  private readonly list = h('div', { class: 'results' });
  private readonly summary = h('p', { class: 'summary', role: 'status' });
  private sessions: SessionSummary[] = [];
  /** False once a page came back shorter than asked: nothing older. */
  private more = true;
  private loadingOlder = false;

  constructor(private readonly ctx: PageContext) {
    this.element = h(
      'section',
      { class: 'page page-sessions', 'aria-labelledby': 'page-title' },
      h('h1', { id: 'page-title', tabindex: '-1' }, 'Sessions'),
      h(
        'p',
        { class: 'muted' },
        'Conversations your agent had through the proxy. Each turn is recorded with the skills injected into it and, for main turns, the judge’s score.',
      ),
      this.summary,
      this.list,
    );
  }

  wants(event: EngineEvent): boolean {
    return ['session_started', 'session_ended', 'turn_recorded', 'turn_scored', 'reconnected', 'lagged'].includes(event.type);
  }

  async load(): Promise<void> {
    const { sessions } = await this.ctx.api.sessions(PAGE_SIZE);
    if (this.sessions.length === 0) {
      this.sessions = sessions;
      this.more = sessions.length === PAGE_SIZE;
    } else {
      // Keep the older pages the user loaded; the first page is fresh.
      const oldest = sessions.at(-1);
      const cutoff = oldest ? Date.parse(oldest.started_at) : Infinity;
      const fresh = new Set(sessions.map((s) => s.id));
      const older = this.sessions.filter((s) => !fresh.has(s.id) && Date.parse(s.started_at) < cutoff);
      this.sessions = [...sessions, ...older];
    }
    this.render();
  }

  private async loadOlder(button: HTMLButtonElement): Promise<void> {
    const last = this.sessions.at(-1);
    if (!last || this.loadingOlder) return;
    this.loadingOlder = true;
    button.disabled = true;
    try {
      const { sessions } = await this.ctx.api.sessions(PAGE_SIZE, last.started_at_ms ?? Date.parse(last.started_at));
      const known = new Set(this.sessions.map((s) => s.id));
      const firstNew = this.sessions.length;
      this.sessions.push(...sessions.filter((s) => !known.has(s.id)));
      this.more = sessions.length === PAGE_SIZE;
      this.render();
      // Keep the keyboard where the new rows start.
      this.list.querySelectorAll<HTMLAnchorElement>('tbody a')[firstNew]?.focus();
    } catch (e) {
      this.list.append(errorBox(e));
    } finally {
      this.loadingOlder = false;
      button.disabled = false;
    }
  }

  private render(): void {
    const n = this.sessions.length;
    this.ctx.setTitle(`Sessions (${count(n)}${this.more ? '+' : ''})`);
    if (n === 0) {
      this.summary.textContent = 'No sessions yet.';
      replace(
        this.list,
        h(
          'div',
          { class: 'empty' },
          h(
            'p',
            null,
            'Point your agent at the proxy (Settings shows its address; `metaclaw setup` wires up OpenClaw and others). Every conversation then appears here within a second.',
          ),
        ),
      );
      return;
    }
    this.summary.textContent = `${count(n)} most recent sessions${this.more ? '' : ' (all of them)'}.`;
    const older = this.more
      ? h('button', { type: 'button', class: 'button show-more' }, 'Load older sessions')
      : null;
    older?.addEventListener('click', () => void this.loadOlder(older));
    replace(
      this.list,
      h(
        'table',
        { class: 'table sessions-table' },
        h('caption', { class: 'visually-hidden' }, 'Sessions, newest first'),
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            h('th', { scope: 'col' }, 'Started'),
            h('th', { scope: 'col', class: 'num' }, 'Turns'),
            h('th', { scope: 'col', class: 'num' }, 'Mean score'),
            h('th', { scope: 'col' }, 'Model'),
            h('th', { scope: 'col', class: 'num' }, 'Policy'),
            h('th', { scope: 'col' }, 'Ended'),
          ),
        ),
        h('tbody', null, this.sessions.map(row)),
      ),
      older,
    );
  }
}

function row(s: SessionSummary): HTMLTableRowElement {
  const ended = s.ended_at
    ? `${words(s.end_reason ?? 'ended')} after ${duration(Date.parse(s.ended_at) - Date.parse(s.started_at))}`
    : 'open';
  return h(
    'tr',
    { dataset: { session: s.id } },
    h('td', null, h('a', { href: sessionHref(s.id) }, when(s.started_at))),
    h('td', { class: 'num', title: `${s.main_turns} main, ${s.turns - s.main_turns} side` }, `${count(s.main_turns)} / ${count(s.turns)}`),
    h('td', { class: 'num' }, meanScore(s.mean_score)),
    h('td', null, s.model ?? '—'),
    h('td', { class: 'num' }, s.policy_version === null || s.policy_version === undefined ? '—' : `v${s.policy_version}`),
    h('td', null, ended),
  );
}
