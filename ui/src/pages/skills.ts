// The skill library: search (name, description and body, on the engine),
// a status filter, a sort, and a table shown a hundred rows at a time, so a
// library of thousands stays quick to open and to tab through.

import { meanScore, statusBadge } from '../components/badges';
import { errorText } from '../components/feedback';
import { h, replace, uniqueId } from '../dom';
import { count, plural, relative, score, words } from '../format';
import type { Page, PageContext } from '../page';
import { href, skillHref } from '../router';
import type { EngineEvent } from '../transport/types';
import type { SkillList, SkillSummary } from '../types';

const PAGE_ROWS = 100;
const SEARCH_DELAY_MS = 250;

const STATUSES: [string, string][] = [
  ['all', 'All'],
  ['active', 'Active'],
  ['pending', 'Pending review'],
  ['disabled', 'Disabled'],
];

const SORTS: [string, string, (a: SkillSummary, b: SkillSummary) => number][] = [
  ['name', 'Name', (a, b) => a.name.localeCompare(b.name)],
  ['uses', 'Most used', (a, b) => b.uses - a.uses || a.name.localeCompare(b.name)],
  ['effect', 'Best effect', (a, b) => (b.effect ?? -Infinity) - (a.effect ?? -Infinity) || a.name.localeCompare(b.name)],
  ['updated', 'Recently changed', (a, b) => (b.updated_at ?? '').localeCompare(a.updated_at ?? '') || a.name.localeCompare(b.name)],
];

export class SkillsPage implements Page {
  readonly element: HTMLElement;
  private readonly results = h('div', { class: 'results' });
  private readonly summary = h('p', { class: 'summary', role: 'status' });
  private readonly search: HTMLInputElement;
  private readonly status: HTMLSelectElement;
  private readonly sort: HTMLSelectElement;
  private data: SkillList | null = null;
  private shown = PAGE_ROWS;
  private generation = 0;
  private searchTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ctx: PageContext) {
    const searchId = uniqueId('skill-search');
    const statusId = uniqueId('skill-status');
    const sortId = uniqueId('skill-sort');
    this.search = h('input', {
      id: searchId,
      type: 'search',
      name: 'q',
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder: 'name, description or text',
      value: ctx.params.get('q') ?? '',
      oninput: () => this.searchSoon(),
    });
    this.status = h(
      'select',
      { id: statusId, name: 'status', onchange: () => this.filterChanged() },
      STATUSES.map(([value, label]) => h('option', { value }, label)),
    );
    this.status.value = STATUSES.some(([v]) => v === ctx.params.get('status')) ? (ctx.params.get('status') as string) : 'all';
    this.sort = h(
      'select',
      { id: sortId, name: 'sort', onchange: () => this.sortChanged() },
      SORTS.map(([value, label]) => h('option', { value }, label)),
    );
    this.sort.value = SORTS.some(([v]) => v === ctx.params.get('sort')) ? (ctx.params.get('sort') as string) : 'name';

    const form = h(
      'form',
      {
        class: 'toolbar',
        role: 'search',
        onsubmit: (e: Event) => {
          e.preventDefault();
          this.filterChanged();
        },
      },
      h('div', { class: 'field grow' }, h('label', { for: searchId }, 'Search skills'), this.search),
      h('div', { class: 'field' }, h('label', { for: statusId }, 'Status'), this.status),
      h('div', { class: 'field' }, h('label', { for: sortId }, 'Sort by'), this.sort),
    );
    this.element = h(
      'section',
      { class: 'page page-skills', 'aria-labelledby': 'page-title' },
      h('h1', { id: 'page-title', tabindex: '-1' }, 'Skills'),
      form,
      this.summary,
      this.results,
    );
  }

  wants(event: EngineEvent): boolean {
    // Not on every scored turn: with thousands of skills a busy agent would
    // have the list re-read constantly for usage counts; they refresh with
    // the next library change or visit.
    return ['skill_added', 'skill_merged', 'skill_disabled', 'settings_changed', 'reconnected', 'lagged'].includes(event.type);
  }

  dispose(): void {
    clearTimeout(this.searchTimer);
  }

  private searchSoon(): void {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => this.filterChanged(), SEARCH_DELAY_MS);
  }

  private syncParams(): void {
    const params = new URLSearchParams();
    const q = this.search.value.trim();
    if (q) params.set('q', q);
    if (this.status.value !== 'all') params.set('status', this.status.value);
    if (this.sort.value !== 'name') params.set('sort', this.sort.value);
    this.ctx.replaceParams(params);
  }

  private filterChanged(): void {
    clearTimeout(this.searchTimer);
    this.syncParams();
    this.shown = PAGE_ROWS;
    this.load().catch((e: unknown) => {
      replace(this.results, h('div', { class: 'alert alert-error', role: 'alert' }, errorText(e)));
    });
  }

  private sortChanged(): void {
    this.syncParams();
    this.render();
  }

  async load(): Promise<void> {
    const generation = ++this.generation;
    this.element.setAttribute('aria-busy', 'true');
    try {
      const data = await this.ctx.api.skills(this.search.value.trim(), this.status.value);
      // A newer search was started while this one ran: its answer wins.
      if (generation !== this.generation) return;
      this.data = data;
      this.render();
    } finally {
      if (generation === this.generation) this.element.removeAttribute('aria-busy');
    }
  }

  private render(): void {
    const data = this.data;
    if (!data) return;
    const q = this.search.value.trim();
    const sorter = SORTS.find(([v]) => v === this.sort.value)?.[2] ?? SORTS[0]![2];
    const skills = [...data.skills].sort(sorter);
    const total = skills.length;
    this.ctx.setTitle(`Skills (${count(total)})`);

    const shown = Math.min(total, this.shown);
    const label = STATUSES.find(([v]) => v === this.status.value)?.[1].toLowerCase() ?? 'all';
    const kind = label === 'all' ? 'skill' : `${label} skill`;
    const matching = q ? ` ${total === 1 ? 'matches' : 'match'} “${q}”` : '';
    this.summary.textContent =
      total === 0
        ? q
          ? `No ${kind} matches “${q}”.`
          : `No ${kind}s.`
        : `${plural(total, kind)}${matching}${shown < total ? `; showing the first ${count(shown)}` : ''}.`;

    const pending = data.skills.filter((s) => s.status === 'pending').length;
    const callout =
      pending > 0 && this.status.value !== 'pending'
        ? h(
            'p',
            { class: 'alert alert-info' },
            `${plural(pending, 'skill')} ${pending === 1 ? 'waits' : 'wait'} for your review. `,
            h('a', { href: href({ page: 'skills' }, { status: 'pending' }) }, 'Review pending skills'),
          )
        : null;

    const problems =
      data.problems.length > 0
        ? h(
            'details',
            { class: 'alert alert-warning' },
            h('summary', null, `${plural(data.problems.length, 'skill file')} could not be read`),
            h(
              'ul',
              null,
              data.problems.map((p) => h('li', null, h('code', null, p.path), ': ', p.reason)),
            ),
          )
        : null;

    const table =
      total === 0
        ? this.emptyState(q)
        : h(
            'table',
            { class: 'table skills-table' },
            h('caption', { class: 'visually-hidden' }, 'Skills'),
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                h('th', { scope: 'col' }, 'Skill'),
                h('th', { scope: 'col' }, 'Status'),
                h('th', { scope: 'col' }, 'Origin'),
                h('th', { scope: 'col', class: 'num' }, 'Uses'),
                h('th', { scope: 'col', class: 'num' }, 'Effect'),
                h('th', { scope: 'col' }, 'Last used'),
              ),
            ),
            h('tbody', null, skills.slice(0, shown).map((s) => row(s))),
          );

    const more =
      shown < total
        ? h(
            'button',
            {
              type: 'button',
              class: 'button show-more',
              onclick: () => {
                this.shown += PAGE_ROWS;
                this.render();
              },
            },
            `Show ${count(Math.min(PAGE_ROWS, total - shown))} more`,
          )
        : null;

    replace(this.results, callout, problems, table, more);
  }

  private emptyState(q: string): HTMLElement {
    if (q || this.status.value !== 'all') {
      return h('p', { class: 'empty' }, 'Try other words, or choose “All” statuses.');
    }
    return h(
      'div',
      { class: 'empty' },
      h('p', null, 'The library is empty.'),
      h(
        'p',
        null,
        'Skills are folders with a SKILL.md file in the skills folder (see Settings). Add your own, copy a bank such as metaclaw-skills, or let the evolver write them from conversations that went wrong.',
      ),
    );
  }
}

function row(s: SkillSummary): HTMLTableRowElement {
  const effectTitle =
    s.effect === null
      ? s.uses === 0
        ? 'not used yet'
        : 'not enough scored turns yet'
      : `mean score ${score(s.mean_score)} where injected, against ${score(s.baseline)} without`;
  return h(
    'tr',
    { dataset: { skill: s.name, status: s.status } },
    h(
      'td',
      null,
      h('a', { href: skillHref(s.name), class: 'skill-link' }, s.name),
      s.description ? h('div', { class: 'muted small clamp' }, s.description) : null,
    ),
    h('td', null, statusBadge(s.status)),
    h('td', null, words(s.origin)),
    h('td', { class: 'num' }, count(s.uses)),
    h('td', { class: 'num', title: effectTitle }, meanScore(s.effect)),
    h('td', { class: 'nowrap' }, s.last_used_at ? relative(s.last_used_at) : 'never'),
  );
}
