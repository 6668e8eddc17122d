// The slow loop: training steps with their rewards (a chart over time and
// a table), the checkpoints saved, and the scheduler window each step ran
// in. With no steps yet it explains what will appear, and when, for the
// current mode.

import { fact } from '../components/facts';
import type { RewardChart } from '../components/chart';
import { errorBox, errorText } from '../components/feedback';
import { h, replace } from '../dom';
import { count, duration, plural, score, when, words } from '../format';
import type { Page, PageContext } from '../page';
import { href } from '../router';
import type { EngineEvent } from '../transport/types';
import type { Training, TrainingStep } from '../types';

const PAGE_ROWS = 100;

export class TrainingPage implements Page {
  readonly element: HTMLElement;
  private readonly content = h('div');
  private readonly actionError = h('div');
  private chart: RewardChart | null = null;
  private chartKey = '';
  private chartHolder = h('div', { class: 'chart-holder' });
  private shown = PAGE_ROWS;
  private data: Training | null = null;

  constructor(private readonly ctx: PageContext) {
    this.element = h(
      'section',
      { class: 'page page-training', 'aria-labelledby': 'page-title' },
      h('h1', { id: 'page-title', tabindex: '-1' }, 'Training'),
      this.actionError,
      this.content,
    );
  }

  wants(event: EngineEvent): boolean {
    return ['training_step', 'training_finished', 'schedule_changed', 'settings_changed', 'turn_scored', 'reconnected', 'lagged'].includes(event.type);
  }

  dispose(): void {
    this.chart?.dispose();
  }

  async load(): Promise<void> {
    this.data = await this.ctx.api.training();
    await this.render();
  }

  private async render(): Promise<void> {
    const t = this.data;
    if (!t) return;
    const steps = [...t.steps].sort((a, b) => b.step - a.step);
    this.ctx.setTitle(`Training (${plural(steps.length, 'step')})`);
    const pending = Array.isArray(t.summary.pending_turns) ? t.summary.pending_turns.length : t.summary.pending_turns;

    const trainNow = t.trains
      ? h('button', { type: 'button', class: 'button' }, 'Train now')
      : null;
    trainNow?.addEventListener('click', () => void this.trainNow(trainNow));

    const summary = h(
      'dl',
      { class: 'facts inline' },
      fact('Mode', words(t.mode)),
      fact('Weights trained', t.trains ? 'yes' : 'no (skills only)'),
      fact('Steps', count(t.summary.steps)),
      fact('Policy version', `v${t.summary.policy_version}`),
      fact('Batch', `${count(pending)} of ${count(t.summary.batch_size)} turns ready`),
      fact('Last step', t.summary.last_step_at ? when(t.summary.last_step_at) : 'none yet'),
    );

    if (steps.length > 0) {
      await this.updateChart(steps);
    } else {
      this.chart?.dispose();
      this.chart = null;
      this.chartKey = '';
      this.chartHolder.replaceChildren();
    }

    replace(
      this.content,
      summary,
      trainNow ? h('div', { class: 'actions' }, trainNow) : null,
      steps.length === 0 ? emptyState(t, pending) : [h('h2', null, 'Reward'), this.chartHolder, h('h2', null, 'Steps'), this.stepsTable(steps)],
      h('h2', null, 'Checkpoints'),
      t.checkpoints.length === 0
        ? h('p', { class: 'muted' }, t.trains ? 'Checkpoints are saved every few steps (rl.save_every) and listed here.' : 'None.')
        : h(
            'table',
            { class: 'table' },
            h('caption', { class: 'visually-hidden' }, 'Checkpoints'),
            h('thead', null, h('tr', null, ['Name', 'Kind', 'Step', 'Saved', 'Path'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              null,
              t.checkpoints.map((c) =>
                h(
                  'tr',
                  null,
                  h('td', null, c.name),
                  h('td', null, words(c.kind)),
                  h('td', null, c.step === null ? '—' : String(c.step)),
                  h('td', null, when(c.at)),
                  h('td', null, h('code', { class: 'path' }, c.path)),
                ),
              ),
            ),
          ),
    );
  }

  /** Rebuilds the chart only when the steps changed (it keeps its size). */
  private async updateChart(steps: TrainingStep[]): Promise<void> {
    const points = steps
      .filter((s) => s.reward_mean !== null && Number.isFinite(Date.parse(s.at)))
      .map((s) => ({ at: Date.parse(s.at), mean: s.reward_mean as number, std: s.reward_std ?? 0, step: s.step }));
    const key = JSON.stringify(points);
    if (key === this.chartKey && this.chart) return;
    this.chartKey = key;
    const { rewardChart } = await import('../components/chart');
    this.chart?.dispose();
    this.chart = rewardChart(points);
    replace(this.chartHolder, this.chart.element);
  }

  private stepsTable(steps: TrainingStep[]): HTMLElement[] {
    const shown = Math.min(steps.length, this.shown);
    const more =
      shown < steps.length
        ? h(
            'button',
            {
              type: 'button',
              class: 'button show-more',
              onclick: () => {
                this.shown += PAGE_ROWS;
                void this.render();
              },
            },
            `Show ${count(Math.min(PAGE_ROWS, steps.length - shown))} more steps`,
          )
        : null;
    const table = h(
      'table',
      { class: 'table steps-table' },
      h('caption', { class: 'visually-hidden' }, 'Training steps, newest first'),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col', class: 'num' }, 'Step'),
          h('th', { scope: 'col' }, 'When'),
          h('th', { scope: 'col', class: 'num' }, 'Reward'),
          h('th', { scope: 'col', class: 'num' }, 'Turns'),
          h('th', { scope: 'col', class: 'num' }, 'Duration'),
          h('th', { scope: 'col' }, 'Loss'),
          h('th', { scope: 'col' }, 'Window'),
          h('th', { scope: 'col', class: 'num' }, 'Policy'),
        ),
      ),
      h('tbody', null, steps.slice(0, shown).map(stepRow)),
    );
    return more ? [table, more] : [table];
  }

  private async trainNow(button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    this.actionError.replaceChildren();
    try {
      const answer = await this.ctx.api.trainNow();
      this.ctx.notify(`Train now: ${answer.status}.`);
      this.ctx.refreshOverview();
    } catch (e) {
      replace(this.actionError, errorBox(e));
      this.ctx.notify(errorText(e), 'error');
    } finally {
      button.disabled = false;
    }
  }
}


function localDate(at: string): string {
  const d = new Date(at);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function stepRow(s: TrainingStep): HTMLTableRowElement {
  return h(
    'tr',
    { dataset: { step: String(s.step) } },
    h('td', { class: 'num' }, String(s.step)),
    h(
      'td',
      null,
      when(s.at),
      s.outcome && s.outcome !== 'trained'
        ? [' ', h('span', { class: 'badge badge-disabled', title: s.error ?? '' }, words(s.outcome))]
        : null,
    ),
    h('td', { class: 'num' }, s.reward_mean === null ? '—' : `${score(s.reward_mean)} ± ${(s.reward_std ?? 0).toFixed(2)}`),
    h('td', { class: 'num' }, count(s.turns)),
    h('td', { class: 'num' }, duration(s.duration_ms)),
    h('td', null, s.loss === null ? '—' : typeof s.loss === 'number' ? s.loss.toFixed(4) : words(s.loss)),
    h(
      'td',
      null,
      s.window_id
        ? h('a', { href: href({ page: 'schedule' }, { date: localDate(s.at) }), title: `window ${s.window_id}` }, `window ${s.window_id.slice(0, 8)}`)
        : h('span', { class: 'muted', title: 'rl mode trains as soon as a batch is ready, outside scheduler windows' }, 'no window'),
    ),
    h('td', { class: 'num' }, s.policy_version === null ? '—' : `v${s.policy_version}`),
  );
}

function emptyState(t: Training, pending: number): HTMLElement {
  const batch = t.summary.batch_size;
  if (!t.trains && t.mode === 'auto') {
    return h(
      'div',
      { class: 'empty' },
      h('h2', null, 'Waiting for the training service'),
      h(
        'p',
        null,
        'Auto mode fine-tunes the model with reinforcement learning on your scored conversations, only while you are away. ',
        'It starts once a Tinker-compatible training service, the base model and its tokenizer are set (rl.base_url, rl.model, rl.tokenizer) in ',
        h('a', { href: href({ page: 'settings' }) }, 'Settings'),
        '. Until then MetaClaw learns through skills only.',
      ),
    );
  }
  if (!t.trains) {
    return h(
      'div',
      { class: 'empty' },
      h('h2', null, 'No weight training in this mode'),
      h(
        'p',
        null,
        `The mode is ${words(t.mode)}: MetaClaw learns through skills, and the model’s weights are not changed. `,
        'To fine-tune the model with reinforcement learning on your scored conversations, choose the rl mode (a step as soon as a batch is ready) or auto (steps only while you are away) in ',
        h('a', { href: href({ page: 'settings' }) }, 'Settings'),
        ', with a Tinker-compatible training service and the base model’s tokenizer.',
      ),
    );
  }
  const when =
    t.mode === 'auto'
      ? [
          'In auto mode a step runs only inside a window when you are not using your agent: your sleep hours, idle time over the threshold, a locked screen, or a meeting in your calendar. ',
          h('a', { href: href({ page: 'schedule' }) }, 'Schedule'),
          ' shows today’s windows and why training is or is not running now.',
        ]
      : ['In rl mode a step runs as soon as a batch is full.'];
  return h(
    'div',
    { class: 'empty' },
    h('h2', null, 'No training steps yet'),
    h(
      'p',
      null,
      `A step trains on ${plural(batch, 'scored main turn')} from the current skill generation; ${count(pending)} ${pending === 1 ? 'is' : 'are'} ready. `,
      ...when,
    ),
    h('p', null, 'Each step will appear here with its reward (a point on the chart), its duration, the window it ran in and the checkpoint it saved.'),
  );
}
