// Settings over GET/PUT /api/settings: the upstream provider (presets, the
// API key write-only, shown masked with where it is stored), the model, the
// mode, the proxy, skills, review, sleep hours, idle threshold, calendars
// with each one's status, notifications, and every other key under
// "Advanced". Only changed values are sent; the engine validates them all
// before writing any, and field errors appear on their fields. The tray's
// settings window shows this page alone.

import { ApiError } from '../api';
import { errorBox, errorText, setFieldError } from '../components/feedback';
import { h, replace, uniqueId } from '../dom';
import { words } from '../format';
import type { Page, PageContext } from '../page';
import type { EngineEvent } from '../transport/types';
import type { Preset, SecretState, Settings } from '../types';

type Kind = 'text' | 'url' | 'path' | 'number' | 'checkbox' | 'select' | 'time';

interface FieldDef {
  key: string;
  label: string;
  hint?: string;
  kind?: Kind;
  options?: [string, string][];
}

interface SectionDef {
  id: string;
  title: string;
  intro?: string;
  fields: FieldDef[];
  /** Also every key with this prefix not listed above (notifications). */
  prefix?: string;
}

const CALENDARS_KEY = 'scheduler.calendars';

const SECTIONS: SectionDef[] = [
  {
    id: 'provider',
    title: 'Model provider',
    intro: 'Where the proxy sends your agent’s requests.',
    fields: [
      { key: 'upstream.api', label: 'API', kind: 'select', options: [['openai', 'OpenAI-compatible'], ['anthropic', 'Anthropic Messages']] },
      { key: 'upstream.base_url', label: 'Base URL', kind: 'url', hint: 'e.g. https://api.openai.com/v1' },
      { key: 'upstream.api_key', label: 'API key' },
      { key: 'upstream.model', label: 'Model', hint: 'Leave empty to use the model your agent asks for.' },
    ],
  },
  {
    id: 'learning',
    title: 'Learning',
    fields: [
      {
        key: 'mode',
        label: 'Mode',
        kind: 'select',
        options: [
          ['skills_only', 'Skills only: learn skills, never change the model'],
          ['rl', 'RL: also train the model as soon as a batch is ready'],
          ['auto', 'Auto: skills now, training only while you are away'],
        ],
        hint: 'rl needs the training service settings (Advanced: rl.*); auto trains once they are set.',
      },
      {
        key: 'skills.review',
        label: 'New skills',
        kind: 'select',
        options: [
          ['auto', 'Use new skills at once'],
          ['manual', 'Wait for my review (pending until approved)'],
        ],
      },
      { key: 'skills.enabled', label: 'Inject skills into requests', kind: 'checkbox' },
      { key: 'skills.dir', label: 'Skills folder', kind: 'path', hint: 'A folder of skill folders, each with a SKILL.md. Edits to it are picked up live.' },
      { key: 'skills.top_k', label: 'Skills per request', kind: 'number', hint: 'How many of the most relevant skills are injected.' },
    ],
  },
  {
    id: 'proxy',
    title: 'Proxy',
    intro: 'The address your agent talks to.',
    fields: [
      { key: 'proxy.host', label: 'Host', hint: 'Keep 127.0.0.1 unless other machines must reach the proxy.' },
      { key: 'proxy.port', label: 'Port', kind: 'number' },
      { key: 'proxy.api_key', label: 'Client key', hint: 'Optional: clients must send it as their API key.' },
    ],
  },
  {
    id: 'schedule',
    title: 'When to train',
    intro: 'Training runs only while you are away: in your sleep hours, after some idle time, with the screen locked, or during meetings in your calendars.',
    fields: [
      { key: 'scheduler.enabled', label: 'Run background work in windows', kind: 'checkbox' },
      { key: 'scheduler.sleep_start', label: 'Sleep hours start', kind: 'time', hint: 'Empty: no sleep hours.' },
      { key: 'scheduler.sleep_end', label: 'Sleep hours end', kind: 'time' },
      { key: 'scheduler.idle_threshold_minutes', label: 'Idle after (minutes without keyboard or mouse)', kind: 'number' },
      { key: 'scheduler.min_window_minutes', label: 'Shortest useful window (minutes)', kind: 'number' },
      { key: 'scheduler.timezone', label: 'Time zone', hint: 'IANA name such as Europe/Paris; empty: the system’s.' },
    ],
  },
  {
    id: 'notifications',
    title: 'Notifications',
    intro: 'Desktop notifications from the tray app.',
    prefix: 'notifications.',
    fields: [],
  },
];

const SECRET_STORES: Record<string, string> = {
  keychain: 'in the system keychain',
  file: 'in a private file in the data folder',
  env: 'from an environment variable',
};

interface Control {
  key: string;
  input: HTMLInputElement | HTMLSelectElement;
  original: unknown;
}

interface SecretControl {
  key: string;
  input: HTMLInputElement;
  remove: HTMLInputElement | null;
}

export class SettingsPage implements Page {
  readonly element: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly topError = h('div', { class: 'form-error' });
  private readonly result = h('div', { role: 'status', class: 'save-result' });
  private readonly notice = h('div');
  private data: Settings | null = null;
  private controls: Control[] = [];
  private secretControls: SecretControl[] = [];
  private calendars: string[] = [];
  private calendarsOriginal: string[] = [];
  private saving = false;

  constructor(private readonly ctx: PageContext) {
    this.form = h('form', { class: 'settings-form', novalidate: true });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.save();
    });
    this.element = h(
      'section',
      { class: 'page page-settings', 'aria-labelledby': 'page-title' },
      h('h1', { id: 'page-title', tabindex: '-1' }, 'Settings'),
      this.notice,
      this.form,
    );
  }

  wants(event: EngineEvent): boolean {
    if (!['settings_changed', 'schedule_changed', 'reconnected'].includes(event.type)) return false;
    if (this.dirty()) {
      // Never overwrite what the user is typing: offer to reload instead.
      replace(
        this.notice,
        h(
          'div',
          { class: 'alert alert-info', role: 'status' },
          'Settings were changed elsewhere. ',
          h('button', { type: 'button', class: 'link-button', onclick: () => void this.reload() }, 'Reload them'),
          ' (your unsaved changes here are lost).',
        ),
      );
      return false;
    }
    return true;
  }

  busy(): boolean {
    return this.saving || this.dirty();
  }

  private async reload(): Promise<void> {
    this.notice.replaceChildren();
    this.data = null;
    await this.load().catch((e: unknown) => replace(this.notice, errorBox(e)));
  }

  async load(): Promise<void> {
    const data = await this.ctx.api.settings();
    this.data = data;
    this.render(data);
    this.ctx.setTitle('Settings');
  }

  private dirty(): boolean {
    if (!this.data) return false;
    if (this.secretControls.some((s) => s.input.value !== '' || s.remove?.checked)) return true;
    if (JSON.stringify(this.calendars) !== JSON.stringify(this.calendarsOriginal)) return true;
    return this.controls.some((c) => !same(readControl(c), c.original));
  }

  private render(data: Settings): void {
    this.controls = [];
    this.secretControls = [];
    const calendarValue = data.values[CALENDARS_KEY];
    this.calendars = Array.isArray(calendarValue) ? calendarValue.map(String) : [];
    this.calendarsOriginal = [...this.calendars];
    const used = new Set<string>([CALENDARS_KEY]);

    const sections = SECTIONS.map((section) => {
      const defs = [...section.fields];
      if (section.prefix) {
        for (const key of Object.keys(data.values).sort()) {
          if (key.startsWith(section.prefix) && !defs.some((d) => d.key === key)) {
            defs.push({ key, label: words(key.slice(section.prefix.length)) });
          }
        }
      }
      const fields = defs
        .filter((d) => d.key in data.values || d.key in data.secrets)
        .map((d) => {
          used.add(d.key);
          return this.field(d, data);
        });
      const extra = section.id === 'provider' && data.presets.length ? this.presetPicker(data.presets) : null;
      const calendars = section.id === 'schedule' && CALENDARS_KEY in data.values ? this.calendarEditor(data) : null;
      if (fields.length === 0 && !calendars) return null;
      return h(
        'fieldset',
        { class: 'section', id: `settings-${section.id}` },
        h('legend', null, section.title),
        section.intro ? h('p', { class: 'muted' }, section.intro) : null,
        extra,
        fields,
        calendars,
      );
    });

    const rest = [...Object.keys(data.values), ...Object.keys(data.secrets)]
      .filter((k, i, all) => !used.has(k) && all.indexOf(k) === i)
      .sort();
    const advanced = rest.length
      ? h(
          'details',
          { class: 'section advanced' },
          h('summary', null, `Advanced (${rest.length} more settings)`),
          h('p', { class: 'muted' }, 'The same keys as `metaclaw config set`.'),
          rest.map((key) => this.field({ key, label: key }, data)),
        )
      : null;

    const restart = data.restart_required.length
      ? h('p', { class: 'alert alert-info' }, `Restart MetaClaw to apply: ${data.restart_required.join(', ')}.`)
      : null;

    replace(
      this.form,
      restart,
      this.topError,
      sections,
      advanced,
      h('div', { class: 'actions sticky-actions' }, h('button', { type: 'submit', class: 'button button-primary' }, 'Save settings'), this.result),
    );
  }

  private field(def: FieldDef, data: Settings): HTMLElement {
    const id = `setting-${def.key.replace(/[^a-z0-9]+/gi, '-')}`;
    const hintId = def.hint ? `${id}-hint` : null;
    const secret = data.secrets[def.key];
    if (secret) return this.secretField(def, id, secret);

    const value = data.values[def.key];
    const kind: Kind = def.kind ?? (typeof value === 'boolean' ? 'checkbox' : typeof value === 'number' ? 'number' : 'text');
    let input: HTMLInputElement | HTMLSelectElement;
    if (kind === 'select') {
      const options = [...(def.options ?? [])];
      if (typeof value === 'string' && !options.some(([v]) => v === value)) options.push([value, value]);
      input = h('select', { id, name: def.key }, options.map(([v, label]) => h('option', { value: v }, label)));
      input.value = String(value ?? '');
    } else if (kind === 'checkbox') {
      input = h('input', { id, name: def.key, type: 'checkbox', checked: value === true || value === 'true' });
    } else {
      const type = kind === 'number' ? 'number' : kind === 'url' ? 'url' : kind === 'time' ? 'time' : 'text';
      input = h('input', {
        id,
        name: def.key,
        type,
        value: value === null || value === undefined ? '' : Array.isArray(value) ? JSON.stringify(value) : String(value),
        step: kind === 'number' ? 'any' : undefined,
        spellcheck: 'false',
        autocomplete: 'off',
      });
    }
    if (hintId) input.setAttribute('aria-describedby', hintId);
    this.controls.push({ key: def.key, input, original: value });
    const hint = def.hint ? h('p', { class: 'hint', id: hintId ?? undefined }, def.hint) : null;
    if (kind === 'checkbox') {
      return h('div', { class: 'field field-check' }, input, h('label', { for: id }, def.label), hint);
    }
    return h('div', { class: 'field' }, h('label', { for: id }, def.label), hint, input);
  }

  private secretField(def: FieldDef, id: string, secret: SecretState): HTMLElement {
    const stateId = `${id}-state`;
    const input = h('input', {
      id,
      name: def.key,
      type: 'password',
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder: secret.set ? 'unchanged — type a new key to replace it' : 'not set',
      'aria-describedby': stateId,
    });
    const where = secret.store ? (SECRET_STORES[secret.store] ?? `in ${secret.store}`) : '';
    const state = h(
      'p',
      { class: 'hint', id: stateId },
      secret.set ? `Set: ${secret.masked ?? '••••'}${where ? `, stored ${where}` : ''}. It is never shown in full.` : 'Not set.',
      def.hint ? ` ${def.hint}` : '',
    );
    let remove: HTMLInputElement | null = null;
    let removeField: HTMLElement | null = null;
    if (secret.set) {
      const removeId = `${id}-remove`;
      remove = h('input', { id: removeId, type: 'checkbox', name: `${def.key}.remove` });
      removeField = h('div', { class: 'field-check small' }, remove, h('label', { for: removeId }, `Remove the stored ${def.label.toLowerCase()}`));
    }
    this.secretControls.push({ key: def.key, input, remove });
    return h('div', { class: 'field' }, h('label', { for: id }, def.label), state, input, removeField);
  }

  private presetPicker(presets: Preset[]): HTMLElement {
    const id = uniqueId('preset');
    const select = h(
      'select',
      { id },
      h('option', { value: '' }, 'Choose a provider to fill in the fields…'),
      presets.map((p) => h('option', { value: p.id }, p.name)),
    );
    const apply = h('button', { type: 'button', class: 'button' }, 'Fill in');
    apply.addEventListener('click', () => {
      const preset = presets.find((p) => p.id === select.value);
      if (!preset) return;
      this.setValue('upstream.api', preset.api);
      this.setValue('upstream.base_url', preset.base_url);
      if (preset.model !== null && preset.model !== undefined) this.setValue('upstream.model', preset.model);
      this.ctx.notify(`Filled in ${preset.name}; add its API key and save.`);
      this.controls.find((c) => c.key === 'upstream.api_key')?.input.focus();
      this.secretControls.find((c) => c.key === 'upstream.api_key')?.input.focus();
    });
    return h('div', { class: 'field preset' }, h('label', { for: id }, 'Provider preset'), h('div', { class: 'inline' }, select, apply));
  }

  private setValue(key: string, value: string): void {
    const c = this.controls.find((x) => x.key === key);
    if (!c) return;
    if (c.input instanceof HTMLSelectElement && ![...c.input.options].some((o) => o.value === value)) {
      c.input.append(h('option', { value }, value));
    }
    c.input.value = value;
  }

  private calendarEditor(data: Settings): HTMLElement {
    const listBox = h('ul', { class: 'calendar-list' });
    const addId = uniqueId('calendar-add');
    const addInput = h('input', {
      id: addId,
      type: 'text',
      spellcheck: 'false',
      autocomplete: 'off',
      placeholder: '~/calendars/work.ics, a folder of .ics files, or https://…/basic.ics',
    });
    const statusOf = (source: string): string => {
      const s = data.calendars.find((c) => c.source === source);
      if (!s) return this.calendarsOriginal.includes(source) ? 'not loaded yet' : 'new: loaded after saving';
      return `${words(s.status)}${s.detail ? ` — ${s.detail}` : ''}`;
    };
    const renderList = (): void => {
      replace(
        listBox,
        this.calendars.length === 0
          ? h('li', { class: 'muted' }, 'No calendars.')
          : this.calendars.map((source, i) => {
              const status = data.calendars.find((c) => c.source === source)?.status ?? 'pending';
              return h(
                'li',
                { class: `calendar calendar-${status}` },
                h('code', { class: 'path' }, source),
                h('span', { class: 'small muted' }, statusOf(source)),
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'button button-small',
                    'aria-label': `Remove calendar ${source}`,
                    onclick: () => {
                      this.calendars.splice(i, 1);
                      renderList();
                      addInput.focus();
                    },
                  },
                  'Remove',
                ),
              );
            }),
      );
    };
    const add = (): void => {
      const source = addInput.value.trim();
      setFieldError(addInput, null);
      if (!source) return;
      if (this.calendars.includes(source)) {
        setFieldError(addInput, 'This calendar is already in the list.');
        return;
      }
      this.calendars.push(source);
      addInput.value = '';
      renderList();
      addInput.focus();
    };
    addInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        add();
      }
    });
    renderList();
    return h(
      'div',
      { class: 'field calendars', id: 'setting-scheduler-calendars' },
      h('h3', null, 'Calendars'),
      h('p', { class: 'hint' }, 'Busy events (not free or cancelled ones) count as time away: .ics files, folders of .ics files (vdir), or ICS subscription URLs (Google’s private address, Outlook, iCloud, Nextcloud).'),
      listBox,
      h('label', { for: addId }, 'Add a calendar'),
      h('div', { class: 'inline' }, addInput, h('button', { type: 'button', class: 'button', onclick: add }, 'Add')),
    );
  }

  private async save(): Promise<void> {
    if (!this.data || this.saving) return;
    const values: Record<string, unknown> = {};
    for (const c of this.controls) {
      const v = readControl(c);
      if (!same(v, c.original)) values[c.key] = v;
    }
    if (JSON.stringify(this.calendars) !== JSON.stringify(this.calendarsOriginal)) values[CALENDARS_KEY] = [...this.calendars];
    const secrets: Record<string, string | null> = {};
    for (const s of this.secretControls) {
      if (s.remove?.checked) secrets[s.key] = null;
      else if (s.input.value.trim() !== '') secrets[s.key] = s.input.value.trim();
    }
    this.topError.replaceChildren();
    this.result.textContent = '';
    for (const el of Array.from(this.form.querySelectorAll('[aria-invalid]'))) setFieldError(el as HTMLElement, null);
    if (Object.keys(values).length === 0 && Object.keys(secrets).length === 0) {
      this.result.textContent = 'Nothing changed.';
      return;
    }
    this.saving = true;
    const submit = this.form.querySelector<HTMLButtonElement>('button[type=submit]');
    if (submit) submit.disabled = true;
    try {
      const answer = await this.ctx.api.saveSettings(values, secrets);
      const restart = answer.restart_required.length ? ` Restart MetaClaw to apply ${answer.restart_required.join(', ')}.` : '';
      this.ctx.notify(`Settings saved.${restart}`);
      this.ctx.refreshOverview();
      this.data = await this.ctx.api.settings();
      this.render(this.data);
      this.result.textContent = `Saved ${answer.applied.length ? answer.applied.join(', ') : 'your changes'}.${restart}`;
    } catch (e) {
      this.showErrors(e);
    } finally {
      this.saving = false;
      if (submit?.isConnected) submit.disabled = false;
    }
  }

  private showErrors(e: unknown): void {
    const unplaced: string[] = [];
    let first: HTMLElement | null = null;
    if (e instanceof ApiError) {
      for (const [key, message] of Object.entries(e.fields)) {
        const target =
          this.controls.find((c) => c.key === key)?.input ??
          this.secretControls.find((c) => c.key === key)?.input ??
          (key === CALENDARS_KEY ? this.form.querySelector<HTMLInputElement>('.calendars input') : null);
        if (target) {
          setFieldError(target, message);
          first ??= target;
        } else {
          unplaced.push(`${key}: ${message}`);
        }
      }
    }
    replace(
      this.topError,
      errorBox(e),
      unplaced.length ? h('ul', { class: 'field-error' }, unplaced.map((u) => h('li', null, u))) : null,
    );
    this.ctx.notify(`Settings not saved: ${errorText(e)}`, 'error');
    (first ?? this.topError.querySelector<HTMLElement>('[role=alert]'))?.focus?.();
    if (!first) this.topError.scrollIntoView({ block: 'nearest' });
  }
}

/** The control's value in the type of its original value. */
function readControl(c: Control): unknown {
  const el = c.input;
  if (el instanceof HTMLInputElement && el.type === 'checkbox') {
    return typeof c.original === 'string' ? String(el.checked) : el.checked;
  }
  const raw = el.value;
  if (typeof c.original === 'number') {
    const n = Number(raw);
    return raw.trim() === '' || Number.isNaN(n) ? raw : n;
  }
  if (Array.isArray(c.original)) {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if ((a === '' && (b === null || b === undefined)) || (b === '' && (a === null || a === undefined))) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}
