// One skill: its Markdown rendered (sanitised), where it came from, how it
// has been used and with what effect, its history, and the actions: edit
// the whole SKILL.md, enable/disable, approve/reject while pending review,
// delete.

import { fact } from '../components/facts';
import { ApiError } from '../api';
import { meanScore, statusBadge } from '../components/badges';
import { confirmDialog, errorBox, errorText, setFieldError } from '../components/feedback';
import { h, replace, uniqueId } from '../dom';
import { count, relative, when, words } from '../format';
import type { Page, PageContext } from '../page';
import { href, sessionHref, skillHref } from '../router';
import type { EngineEvent } from '../transport/types';
import type { SkillDetail } from '../types';

type Action = 'enable' | 'disable' | 'approve' | 'reject';

const DONE: Record<Action, string> = {
  enable: 'enabled',
  disable: 'disabled',
  approve: 'approved',
  reject: 'rejected',
};

export class SkillPage implements Page {
  readonly element: HTMLElement;
  private readonly heading: HTMLHeadingElement;
  private readonly body = h('div', { class: 'skill-body' });
  private readonly actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Skill actions' });
  private readonly actionError = h('div', { class: 'action-error' });
  private skill: SkillDetail | null = null;
  private editing = false;
  private working = false;
  /** The Markdown renderer, loaded with the first skill page opened. */
  private renderMarkdown: ((markdown: string) => DocumentFragment) | null = null;

  constructor(
    private readonly ctx: PageContext,
    private readonly name: string,
  ) {
    this.heading = h('h1', { id: 'page-title', tabindex: '-1' }, name);
    this.element = h(
      'section',
      { class: 'page page-skill', 'aria-labelledby': 'page-title' },
      h('p', { class: 'crumbs' }, h('a', { href: href({ page: 'skills' }) }, '← All skills')),
      this.heading,
      this.actions,
      this.actionError,
      this.body,
    );
  }

  wants(event: EngineEvent): boolean {
    if (['reconnected', 'lagged'].includes(event.type)) return true;
    if (['skill_added', 'skill_merged', 'skill_disabled'].includes(event.type)) {
      const named = [event.name, event.skill, event.into, event.from].filter((v) => typeof v === 'string');
      return named.length === 0 || named.includes(this.name);
    }
    return event.type === 'turn_scored';
  }

  busy(): boolean {
    return this.editing || this.working;
  }

  async load(): Promise<void> {
    const [skill, markdown] = await Promise.all([this.ctx.api.skill(this.name), import('../markdown')]);
    this.renderMarkdown = markdown.renderMarkdown;
    this.skill = skill;
    this.ctx.setTitle(`Skill ${skill.name}`);
    if (!this.editing) this.renderView();
  }

  private renderHeading(skill: SkillDetail): void {
    replace(this.heading, skill.name, ' ', statusBadge(skill.status));
  }

  private renderActions(skill: SkillDetail): void {
    const button = (label: string, onclick: () => void, extra = ''): HTMLButtonElement =>
      h('button', { type: 'button', class: `button ${extra}`.trim(), onclick }, label);
    const buttons: HTMLButtonElement[] = [];
    if (skill.status === 'pending') {
      buttons.push(button('Approve', () => void this.act('approve'), 'button-primary'));
      buttons.push(button('Reject', () => void this.act('reject'), 'button-danger'));
    }
    buttons.push(button('Edit', () => this.startEditing()));
    if (skill.status === 'active') buttons.push(button('Disable', () => void this.act('disable')));
    if (skill.status === 'disabled') buttons.push(button('Enable', () => void this.act('enable')));
    buttons.push(button('Delete', () => void this.remove(), 'button-danger'));
    replace(this.actions, buttons);
  }

  private renderView(): void {
    const skill = this.skill;
    if (!skill) return;
    this.renderHeading(skill);
    this.renderActions(skill);
    const article = h('article', { class: 'markdown', 'aria-label': `The text of ${skill.name}` });
    if (this.renderMarkdown) article.append(this.renderMarkdown(skill.body));
    replace(
      this.body,
      skill.description ? h('p', { class: 'lead' }, skill.description) : null,
      skill.status === 'pending'
        ? h(
            'p',
            { class: 'alert alert-info' },
            'This skill waits for your review: it is not injected into requests until you approve it.',
          )
        : null,
      skill.status === 'disabled'
        ? h('p', { class: 'alert alert-warning' }, `Disabled${skill.disabled_reason ? `: ${skill.disabled_reason}` : ''}. It is not injected into requests.`)
        : null,
      h('div', { class: 'columns' }, h('div', { class: 'main-column' }, article), this.aside(skill)),
    );
  }

  private aside(skill: SkillDetail): HTMLElement {
    const usage = skill.usage;
    const provenance = skill.provenance ?? {};
    const extraFront = Object.entries(skill.front_matter ?? {}).filter(
      ([k]) => !['name', 'description'].includes(k),
    );
    return h(
      'aside',
      { class: 'side-column' },
      h('h2', null, 'Effect'),
      h(
        'dl',
        { class: 'facts' },
        fact('Used', `${count(usage.uses)} ${usage.uses === 1 ? 'time' : 'times'}`),
        fact('Last used', usage.last_used_at ? `${when(usage.last_used_at)} (${relative(usage.last_used_at)})` : 'never'),
        fact('Mean score where used', meanScore(usage.mean_score)),
        fact('Baseline without it', meanScore(usage.baseline)),
        fact('Effect', meanScore(usage.effect)),
      ),
      h('h2', null, 'Provenance'),
      h(
        'dl',
        { class: 'facts' },
        fact('Origin', words(skill.origin)),
        fact('File', h('code', { class: 'path' }, skill.path)),
        Object.entries(provenance)
          .filter(([, v]) => v !== null && v !== undefined && v !== '')
          .map(([k, v]) => fact(words(k), provenanceValue(k, v))),
      ),
      extraFront.length
        ? [
            h('h2', null, 'Front matter'),
            h('dl', { class: 'facts' }, extraFront.map(([k, v]) => fact(k, plainValue(v)))),
          ]
        : null,
      h('h2', null, 'History'),
      skill.history.length
        ? h(
            'ol',
            { class: 'history' },
            [...skill.history]
              .sort((a, b) => b.at.localeCompare(a.at))
              .map((e) =>
                h(
                  'li',
                  null,
                  h('time', { datetime: e.at }, when(e.at)),
                  ' ',
                  h('strong', null, words(e.kind)),
                  e.other_skill ? [' ', h('a', { href: skillHref(e.other_skill) }, e.other_skill)] : null,
                  e.by ? h('span', { class: 'muted' }, ` by ${e.by}`) : null,
                  e.skill_generation !== undefined && e.skill_generation !== null
                    ? h('span', { class: 'muted' }, ` (generation ${e.skill_generation})`)
                    : null,
                  e.detail ? h('div', { class: 'muted small' }, e.detail) : null,
                ),
              ),
          )
        : h('p', { class: 'muted' }, 'No changes recorded yet.'),
    );
  }

  private startEditing(): void {
    const skill = this.skill;
    if (!skill) return;
    this.editing = true;
    this.actionError.replaceChildren();
    const id = uniqueId('skill-markdown');
    const hintId = `${id}-hint`;
    const textarea = h('textarea', {
      id,
      name: 'markdown',
      class: 'editor',
      rows: '24',
      spellcheck: 'false',
      'aria-describedby': hintId,
    });
    textarea.value = skill.markdown;
    const formError = h('div', { class: 'form-error' });
    const save = h('button', { type: 'submit', class: 'button button-primary' }, 'Save');
    const form: HTMLFormElement = h(
      'form',
      {
        class: 'edit-form',
        onsubmit: (e: Event) => {
          e.preventDefault();
          void this.save(textarea, save, formError);
        },
      },
      h('label', { for: id }, 'SKILL.md'),
      h(
        'p',
        { class: 'hint', id: hintId },
        'The whole file: the front matter between the --- lines (name, description, other keys) and the Markdown body. Saving writes the file; the library picks it up at once.',
      ),
      textarea,
      formError,
      h(
        'div',
        { class: 'actions' },
        save,
        h('button', { type: 'button', class: 'button', onclick: () => this.stopEditing() }, 'Cancel'),
      ),
    );
    textarea.addEventListener('keydown', (e) => {
      // Ctrl/Cmd+S saves, Escape leaves the editor (Tab stays a focus move).
      if ((e.ctrlKey || e.metaKey) && e.key === 's') {
        e.preventDefault();
        form.requestSubmit();
      } else if (e.key === 'Escape') {
        e.preventDefault();
        this.stopEditing();
      }
    });
    this.actions.replaceChildren();
    replace(this.body, form);
    textarea.focus();
  }

  private stopEditing(): void {
    this.editing = false;
    this.renderView();
    this.heading.focus();
  }

  private async save(textarea: HTMLTextAreaElement, button: HTMLButtonElement, formError: HTMLElement): Promise<void> {
    button.disabled = true;
    setFieldError(textarea, null);
    formError.replaceChildren();
    try {
      this.skill = await this.ctx.api.saveSkill(this.name, textarea.value);
      this.editing = false;
      this.renderView();
      this.ctx.notify(`Saved ${this.name}.`);
      this.ctx.refreshOverview();
      this.heading.focus();
    } catch (e) {
      if (e instanceof ApiError && (e.code === 'invalid' || e.status === 422 || e.status === 400)) {
        const detail = Object.values(e.fields).join('; ');
        setFieldError(textarea, detail ? `${e.message} (${detail})` : e.message);
        textarea.focus();
      } else {
        replace(formError, errorBox(e));
      }
    } finally {
      button.disabled = false;
    }
  }

  private async act(action: Action): Promise<void> {
    if (action === 'reject') {
      const sure = await confirmDialog(
        `Reject ${this.name}?`,
        'The skill is removed from the library and its file deleted.',
        'Reject',
      );
      if (!sure) return;
    }
    await this.run(async () => {
      const skill = await this.ctx.api.skillAction(this.name, action);
      if (action === 'reject') {
        this.ctx.notify(`Rejected ${this.name}.`);
        this.ctx.navigate(href({ page: 'skills' }));
        return;
      }
      this.skill = skill;
      this.renderView();
      this.ctx.notify(`${this.name} ${DONE[action]}.`);
    });
  }

  private async remove(): Promise<void> {
    const sure = await confirmDialog(
      `Delete ${this.name}?`,
      'Its folder is removed from the skills folder. Its history and usage stay in the database.',
      'Delete',
    );
    if (!sure) return;
    await this.run(async () => {
      await this.ctx.api.deleteSkill(this.name);
      this.ctx.notify(`Deleted ${this.name}.`);
      this.ctx.navigate(href({ page: 'skills' }));
    });
  }

  private async run(work: () => Promise<void>): Promise<void> {
    this.working = true;
    this.actionError.replaceChildren();
    for (const b of Array.from(this.actions.querySelectorAll('button'))) b.disabled = true;
    try {
      await work();
      this.ctx.refreshOverview();
    } catch (e) {
      replace(this.actionError, errorBox(e));
      this.ctx.notify(errorText(e), 'error');
    } finally {
      this.working = false;
      for (const b of Array.from(this.actions.querySelectorAll('button'))) b.disabled = false;
    }
  }
}


function plainValue(v: unknown): string {
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function provenanceValue(key: string, v: unknown): Node | string {
  if (key === 'session_id' && typeof v === 'string') return h('a', { href: sessionHref(v) }, v);
  if (key.endsWith('_at') && typeof v === 'string') return h('time', { datetime: v }, when(v));
  if (Array.isArray(v)) return v.map(plainValue).join(', ');
  return plainValue(v);
}
