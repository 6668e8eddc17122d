// One conversation: its turns in order with what the user asked, what the
// model answered, which skills were injected, and the judge's score and
// reason. Turns are shown fifty at a time and the full request/response
// JSON is built only when its disclosure is opened, so sessions with
// thousands of turns stay light.

import { fact } from '../components/facts';
import { meanScore, scoreBadge } from '../components/badges';
import { h, replace, uniqueId } from '../dom';
import { count, duration, plural, shortId, when, words } from '../format';
import type { Page, PageContext } from '../page';
import { href, skillHref } from '../router';
import type { EngineEvent } from '../transport/types';
import type { SessionDetail, Turn } from '../types';

const PAGE_TURNS = 50;
const PREVIEW_CHARS = 600;

type Filter = 'all' | 'main' | 'bad' | 'unscored';
const FILTERS: [Filter, string, (t: Turn) => boolean][] = [
  ['all', 'All turns', () => true],
  ['main', 'Main turns only', (t) => t.turn_type === 'main'],
  ['bad', 'Scored −1 only', (t) => t.score === -1],
  ['unscored', 'Not scored yet', (t) => t.turn_type === 'main' && t.score === null],
];

export class SessionPage implements Page {
  readonly element: HTMLElement;
  private readonly heading: HTMLHeadingElement;
  private readonly facts = h('div', { class: 'session-facts' });
  private readonly list = h('div', { class: 'results' });
  private readonly filter: HTMLSelectElement;
  private data: SessionDetail | null = null;
  private shown = PAGE_TURNS;

  constructor(
    private readonly ctx: PageContext,
    private readonly id: string,
  ) {
    this.heading = h('h1', { id: 'page-title', tabindex: '-1' }, `Session ${shortId(id)}`);
    const filterId = uniqueId('turn-filter');
    this.filter = h(
      'select',
      {
        id: filterId,
        onchange: () => {
          this.shown = PAGE_TURNS;
          this.render();
        },
      },
      FILTERS.map(([v, label]) => h('option', { value: v }, label)),
    );
    this.element = h(
      'section',
      { class: 'page page-session', 'aria-labelledby': 'page-title' },
      h('p', { class: 'crumbs' }, h('a', { href: href({ page: 'sessions' }) }, '← All sessions')),
      this.heading,
      this.facts,
      h('div', { class: 'toolbar' }, h('div', { class: 'field' }, h('label', { for: filterId }, 'Show'), this.filter)),
      this.list,
    );
  }

  wants(event: EngineEvent): boolean {
    if (['reconnected', 'lagged'].includes(event.type)) return true;
    if (!['turn_recorded', 'turn_scored', 'session_ended'].includes(event.type)) return false;
    const sid = event.session_id ?? event.session;
    return typeof sid !== 'string' || sid === this.id;
  }

  busy(): boolean {
    // Re-rendering would close the disclosures the user opened.
    return this.list.querySelector('details[open]') !== null;
  }

  async load(): Promise<void> {
    this.data = await this.ctx.api.session(this.id);
    this.render();
  }

  private render(): void {
    const data = this.data;
    if (!data) return;
    const s = data.session;
    const turns = [...data.turns].sort((a, b) => a.turn_index - b.turn_index);
    this.ctx.setTitle(`Session ${shortId(s.id)} (${plural(turns.length, 'turn')})`);
    replace(
      this.facts,
      h(
        'dl',
        { class: 'facts inline' },
        fact('Started', when(s.started_at)),
        fact('Ended', s.ended_at ? `${when(s.ended_at)} (${words(s.end_reason ?? 'ended')})` : 'still open'),
        fact('Turns', `${count(s.main_turns)} main of ${count(s.turns)}`),
        fact('Mean score', meanScore(s.mean_score)),
        fact('Model', s.model ?? '—'),
        fact('Policy', s.policy_version === null || s.policy_version === undefined ? '—' : `v${s.policy_version}`),
        fact('Id', h('code', null, s.id)),
      ),
    );
    const predicate = FILTERS.find(([v]) => v === this.filter.value)?.[2] ?? (() => true);
    const visible = turns.filter(predicate);
    const shown = Math.min(visible.length, this.shown);
    const more =
      shown < visible.length
        ? h(
            'button',
            {
              type: 'button',
              class: 'button show-more',
              onclick: () => {
                this.shown += PAGE_TURNS;
                this.render();
                this.list.querySelectorAll<HTMLElement>('.turn')[shown]?.querySelector<HTMLElement>('summary, a')?.focus();
              },
            },
            `Show ${count(Math.min(PAGE_TURNS, visible.length - shown))} more of ${count(visible.length - shown)}`,
          )
        : null;
    replace(
      this.list,
      h('p', { class: 'summary', role: 'status' }, visible.length === turns.length ? plural(turns.length, 'turn') : `${count(visible.length)} of ${plural(turns.length, 'turn')}`),
      visible.length === 0
        ? h('p', { class: 'empty' }, 'No turns to show.')
        : h('ol', { class: 'turns' }, visible.slice(0, shown).map(turnItem)),
      more,
    );
  }
}


function turnItem(t: Turn): HTMLLIElement {
  const request = requestView(t.request);
  const answer = responseText(t.response);
  return h(
    'li',
    { class: `turn turn-${t.turn_type}`, dataset: { turn: String(t.turn_index) } },
    h(
      'div',
      { class: 'turn-head' },
      h('h2', { class: 'turn-title' }, `Turn ${t.turn_index + 1}`),
      h('span', { class: 'badge' }, t.turn_type),
      t.turn_type === 'main' ? scoreBadge(t.score) : null,
      t.status !== 'complete' ? h('span', { class: 'badge badge-disabled' }, words(t.status)) : null,
      h('span', { class: 'muted small' }, `${when(t.started_at)} · ${duration(t.latency_ms)} · ${t.model ?? 'model unknown'}${t.policy_version !== null && t.policy_version !== undefined ? ` · policy v${t.policy_version}` : ''}`),
    ),
    h(
      'div',
      { class: 'turn-grid' },
      h('h3', null, 'Request'),
      h('div', { class: 'bubble bubble-user' }, preview(request.lastUser || '(no user message)')),
      h('h3', null, 'Response'),
      h('div', { class: 'bubble bubble-assistant' }, preview(answer || (t.response ? '(no text; see the JSON)' : '(no response recorded)'))),
      h('h3', null, 'Injected skills'),
      h(
        'div',
        null,
        t.injected_skills.length
          ? h('ul', { class: 'chips' }, t.injected_skills.map((name) => h('li', null, h('a', { href: skillHref(name) }, name))))
          : h('span', { class: 'muted' }, 'none'),
      ),
      t.judge_reason ? [h('h3', null, 'Judge'), h('div', { class: 'judge' }, t.judge_reason)] : null,
      t.error ? [h('h3', null, 'Error'), h('div', { class: 'field-error' }, t.error)] : null,
    ),
    lazyDetails('Whole conversation sent', () => conversation(request.messages)),
    lazyDetails('Request JSON', () => h('pre', { class: 'json' }, pretty(t.request))),
    lazyDetails('Response JSON', () => h('pre', { class: 'json' }, pretty(t.response))),
  );
}

function preview(text: string): HTMLElement {
  if (text.length <= PREVIEW_CHARS) return h('p', { class: 'pre-wrap' }, text);
  const full = h('p', { class: 'pre-wrap' }, `${text.slice(0, PREVIEW_CHARS)}…`);
  const toggle = h('button', { type: 'button', class: 'link-button', 'aria-expanded': 'false' }, 'Show all');
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') === 'true';
    full.textContent = open ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
    toggle.setAttribute('aria-expanded', String(!open));
    toggle.textContent = open ? 'Show all' : 'Show less';
  });
  return h('div', null, full, toggle);
}

/** A <details> whose content is built when it is first opened. */
function lazyDetails(label: string, build: () => Node): HTMLDetailsElement {
  const details = h('details', { class: 'lazy' }, h('summary', null, label));
  details.addEventListener('toggle', () => {
    if (details.open && details.childElementCount === 1) details.append(build());
  });
  return details;
}

function pretty(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

interface Message {
  role: string;
  text: string;
}

/** Text of an OpenAI or Anthropic content value (a string or a list of parts). */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => {
      if (typeof part !== 'object' || part === null) return '';
      const p = part as Record<string, unknown>;
      if (typeof p.text === 'string') return p.text;
      if (p.type === 'tool_use') return `[tool call ${String(p.name)} ${JSON.stringify(p.input)}]`;
      if (p.type === 'tool_result') return `[tool result] ${contentText(p.content)}`;
      if (p.type === 'image_url' || p.type === 'image') return '[image]';
      return '';
    })
    .filter(Boolean)
    .join('\n');
}

/** The messages of a recorded request (either API) and the last user text. */
export function requestView(request: unknown): { messages: Message[]; lastUser: string } {
  const messages: Message[] = [];
  if (typeof request === 'object' && request !== null) {
    const r = request as Record<string, unknown>;
    const system = contentText(r.system);
    if (system) messages.push({ role: 'system', text: system });
    if (Array.isArray(r.messages)) {
      for (const m of r.messages as unknown[]) {
        if (typeof m !== 'object' || m === null) continue;
        const msg = m as Record<string, unknown>;
        let text = contentText(msg.content);
        if (Array.isArray(msg.tool_calls)) {
          const calls = (msg.tool_calls as Record<string, unknown>[]).map((c) => {
            const f = (c.function ?? {}) as Record<string, unknown>;
            return `[tool call ${String(f.name)} ${String(f.arguments ?? '')}]`;
          });
          text = [text, ...calls].filter(Boolean).join('\n');
        }
        messages.push({ role: String(msg.role ?? '?'), text });
      }
    }
  }
  const lastUser = [...messages].reverse().find((m) => m.role === 'user')?.text ?? '';
  return { messages, lastUser };
}

/** The assistant's text (and tool calls) in a recorded response, either API. */
export function responseText(response: unknown): string {
  if (typeof response !== 'object' || response === null) return '';
  const r = response as Record<string, unknown>;
  if (Array.isArray(r.choices)) {
    const message = ((r.choices[0] ?? {}) as Record<string, unknown>).message as Record<string, unknown> | undefined;
    if (!message) return '';
    const calls = Array.isArray(message.tool_calls)
      ? (message.tool_calls as Record<string, unknown>[]).map((c) => {
          const f = (c.function ?? {}) as Record<string, unknown>;
          return `[tool call ${String(f.name)} ${String(f.arguments ?? '')}]`;
        })
      : [];
    return [contentText(message.content), ...calls].filter(Boolean).join('\n');
  }
  if (Array.isArray(r.content)) return contentText(r.content);
  return '';
}

function conversation(messages: Message[]): HTMLElement {
  if (messages.length === 0) return h('p', { class: 'muted' }, 'No messages in this request.');
  return h(
    'ol',
    { class: 'conversation' },
    messages.map((m) => h('li', { class: `msg msg-${m.role}` }, h('strong', null, m.role), h('p', { class: 'pre-wrap' }, m.text || '(empty)'))),
  );
}
