// The application shell: the header (navigation and the live overview:
// mode, scheduler state and why, skill counts, event-stream health), the
// hash router with one page at a time, live reloads from engine events,
// announcements, and the page shown when the admin token is missing or
// refused.

import type { Api, ApiError } from './api';
import { stateBadge } from './components/badges';
import { errorBox } from './components/feedback';
import { h, replace } from './dom';
import { count, relative, when, words } from './format';
import { coalesce, type Page, type PageContext } from './page';
import { SchedulePage } from './pages/schedule';
import { SessionPage } from './pages/session';
import { SessionsPage } from './pages/sessions';
import { SettingsPage } from './pages/settings';
import { SkillPage } from './pages/skill';
import { SkillsPage } from './pages/skills';
import { TrainingPage } from './pages/training';
import { href, isRouteHash, parseHash, type Route } from './router';
import type { EngineEvent, StreamState } from './transport/types';
import type { Overview } from './types';

const APP = 'MetaClaw';
const PAGE_RELOAD_MS = 600;
const OVERVIEW_RELOAD_MS = 400;
/** How soon to look again when a reload waited for the user to finish. */
const BUSY_RETRY_MS = 2000;

const NAV: [Route['page'], string][] = [
  ['skills', 'Skills'],
  ['sessions', 'Sessions'],
  ['training', 'Training'],
  ['schedule', 'Schedule'],
  ['settings', 'Settings'],
];

/** The nav entry a route belongs to (a skill's page is under Skills). */
function section(route: Route): Route['page'] {
  if (route.page === 'skill') return 'skills';
  if (route.page === 'session') return 'sessions';
  return route.page;
}

function pageName(route: Route): string {
  switch (route.page) {
    case 'skill':
      return `Skill ${route.name}`;
    case 'session':
      return 'Session';
    case 'not-found':
      return 'Not found';
    default:
      return NAV.find(([p]) => p === route.page)?.[1] ?? route.page;
  }
}

export function setDocumentTitle(text: string): void {
  document.title = `${text} — ${APP}`;
}

export class App {
  private readonly main = h('main', { id: 'main', tabindex: '-1' });
  private readonly overview = h('div', { class: 'overview', 'aria-label': 'Status' });
  private readonly connection = h('span', { class: 'conn conn-connecting' }, 'Connecting…');
  private readonly polite = h('div', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  private readonly toasts = h('div', { class: 'toasts', 'aria-hidden': 'true' });
  private readonly navLinks = new Map<string, HTMLAnchorElement>();
  private current: Page | null = null;
  private generation = 0;
  private stopEvents: (() => void) | null = null;
  private gated = false;
  private firstRoute = true;
  private readonly reloadPage = coalesce(() => this.refreshPage(), PAGE_RELOAD_MS);
  private readonly reloadOverview = coalesce(() => this.loadOverview(), OVERVIEW_RELOAD_MS);

  constructor(
    private readonly root: HTMLElement,
    private readonly api: Api,
    private readonly windowMode: boolean,
    /** Called when the token is refused (the browser forgets it). */
    private readonly onRefused: () => void = () => {},
  ) {}

  start(): void {
    this.api.onUnauthorized = (e: ApiError) => this.gate('refused', e.message);
    this.renderShell();
    window.addEventListener('hashchange', () => this.route());
    this.route();
    void this.loadOverview();
    this.stopEvents = this.api.transport.subscribe(
      (e) => this.onEvent(e),
      (s) => this.onStreamState(s),
    );
  }

  private renderShell(): void {
    const skip = h('a', { class: 'skip-link', href: '#main' }, 'Skip to content');
    // The fragment is the router's: focus the content instead of navigating.
    skip.addEventListener('click', (e) => {
      e.preventDefault();
      this.main.focus();
    });
    const nav = this.windowMode
      ? null
      : h(
          'nav',
          { class: 'nav', 'aria-label': 'Dashboard' },
          h(
            'ul',
            null,
            NAV.map(([page, label]) => {
              const link = h('a', { href: href({ page } as Route) }, label);
              this.navLinks.set(page, link);
              return h('li', null, link);
            }),
          ),
        );
    const brand = this.windowMode
      ? h('span', { class: 'brand' }, 'MetaClaw')
      : h('a', { class: 'brand', href: href({ page: 'skills' }) }, 'MetaClaw');
    const header = h(
      'header',
      { class: `app-header${this.windowMode ? ' window-mode' : ''}` },
      h('div', { class: 'header-row' }, brand, nav, this.connection),
      this.windowMode ? null : this.overview,
    );
    replace(this.root, skip, header, this.main, this.polite, this.toasts);
    document.documentElement.classList.toggle('window-mode', this.windowMode);
  }

  private context(page: () => Page | null, params: URLSearchParams): PageContext {
    return {
      api: this.api,
      params,
      windowMode: this.windowMode,
      setTitle: (text) => {
        // A page still loading after the user moved on must not retitle.
        if (page() === this.current) {
          setDocumentTitle(text);
          document.body.dataset.state = 'ready';
        }
      },
      notify: (message, kind) => this.notify(message, kind),
      refreshOverview: () => this.reloadOverview(),
      replaceParams: (next) => {
        const path = location.hash.replace(/^#/, '').split('?')[0] || '/skills';
        const query = next.toString();
        history.replaceState(history.state, '', `#${path}${query ? `?${query}` : ''}`);
      },
      navigate: (hash) => {
        if (location.hash === hash) this.route();
        else location.hash = hash;
      },
    };
  }

  private createPage(route: Route, ctx: PageContext): Page {
    switch (route.page) {
      case 'skills':
        return new SkillsPage(ctx);
      case 'skill':
        return new SkillPage(ctx, route.name);
      case 'sessions':
        return new SessionsPage(ctx);
      case 'session':
        return new SessionPage(ctx, route.id);
      case 'training':
        return new TrainingPage(ctx);
      case 'schedule':
        return new SchedulePage(ctx);
      case 'settings':
        return new SettingsPage(ctx);
      case 'not-found':
        return notFoundPage(route.path);
    }
  }

  private route(): void {
    if (this.gated) return;
    const hash = location.hash;
    if (!isRouteHash(hash)) return;
    let { route, params } = parseHash(hash);
    // The settings window shows settings only.
    if (this.windowMode && route.page !== 'settings') route = { page: 'settings' };
    this.current?.dispose?.();
    const generation = ++this.generation;
    let page: Page | null = null;
    const ctx = this.context(() => page, params);
    page = this.createPage(route, ctx);
    this.current = page;
    document.body.dataset.page = route.page;
    document.body.dataset.state = 'loading';
    setDocumentTitle(`Loading ${pageName(route).toLowerCase()}…`);
    for (const [p, link] of this.navLinks) {
      if (p === section(route)) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    replace(this.main, page.element);
    if (!this.firstRoute) {
      window.scrollTo(0, 0);
      page.element.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true });
    }
    this.firstRoute = false;
    const loaded = page;
    page.load().then(
      () => {
        if (generation !== this.generation) return;
        // Pages set their own title once their data is in; this covers one that did not.
        if (document.body.dataset.state === 'loading') {
          setDocumentTitle(pageName(route));
          document.body.dataset.state = 'ready';
        }
      },
      (e: unknown) => {
        if (generation !== this.generation || this.gated) return;
        loaded.dispose?.();
        document.body.dataset.state = 'error';
        setDocumentTitle(`${pageName(route)}: error`);
        replace(
          this.main,
          h(
            'section',
            { class: 'page', 'aria-labelledby': 'page-title' },
            h('h1', { id: 'page-title', tabindex: '-1' }, pageName(route)),
            errorBox(e, () => this.route()),
          ),
        );
      },
    );
  }

  private async refreshPage(): Promise<void> {
    const page = this.current;
    if (!page || this.gated || document.body.dataset.state !== 'ready') return;
    if (page.busy?.()) {
      setTimeout(() => this.reloadPage(), BUSY_RETRY_MS);
      return;
    }
    try {
      await page.load();
    } catch (e) {
      if (page === this.current && !this.gated) this.notify(`Could not refresh: ${e instanceof Error ? e.message : String(e)}`, 'error');
    }
  }

  private onEvent(e: EngineEvent): void {
    if (this.gated) return;
    // Something only the user can fix (a refused upstream key, a broken
    // calendar): say so wherever they are.
    if (e.type === 'action_needed' && typeof e.message === 'string') this.notify(e.message, 'error');
    this.reloadOverview();
    if (this.current?.wants?.(e)) this.reloadPage();
  }

  private onStreamState(s: StreamState): void {
    const set = (kind: string, text: string, title = ''): void => {
      this.connection.className = `conn conn-${kind}`;
      this.connection.textContent = text;
      if (title) this.connection.title = title;
      else this.connection.removeAttribute('title');
    };
    switch (s.kind) {
      case 'live':
        set('live', 'Live', 'Updates arrive as they happen.');
        break;
      case 'connecting':
        set('connecting', 'Connecting…');
        break;
      case 'retrying':
        set('retrying', 'Reconnecting…', `${s.reason}; trying again in ${Math.ceil(s.retryInMs / 1000)} s.`);
        break;
      case 'refused':
        this.gate('refused', s.reason);
        break;
    }
  }

  private async loadOverview(): Promise<void> {
    if (this.windowMode || this.gated) return;
    try {
      this.renderOverview(await this.api.overview());
    } catch (e) {
      if (this.gated) return;
      replace(this.overview, h('span', { class: 'overview-error' }, `Status unavailable: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  private renderOverview(o: Overview): void {
    const paused = o.paused_until && Date.parse(o.paused_until) > Date.now() ? o.paused_until : null;
    const skills = o.skills;
    const item = (label: string, ...value: (Node | string | null)[]): HTMLElement =>
      h('div', { class: 'overview-item' }, h('span', { class: 'overview-label' }, label), ...value);
    replace(
      this.overview,
      item('Mode', h('a', { href: href({ page: 'settings' }), class: 'mode' }, words(o.mode))),
      item(
        'Learner',
        h('a', { href: href({ page: 'schedule' }) }, stateBadge(o.state)),
        o.state_reason ? h('span', { class: 'reason', title: o.state_reason }, o.state_reason) : null,
      ),
      paused ? item('Paused', h('span', { title: when(paused) }, `until ${when(paused)} (${relative(paused)})`)) : null,
      item(
        'Skills',
        h(
          'a',
          { href: href({ page: 'skills' }), dataset: { active: String(skills.active) } },
          `${count(skills.active)} active`,
          skills.pending ? `, ${count(skills.pending)} pending` : '',
          skills.disabled ? `, ${count(skills.disabled)} disabled` : '',
        ),
        skills.problems ? h('span', { class: 'warn' }, ` · ${count(skills.problems)} unreadable`) : null,
      ),
      o.training ? item('Policy', `v${o.training.policy_version} · ${count(o.training.steps)} steps`) : null,
      o.live_sessions !== undefined ? item('Live sessions', count(o.live_sessions)) : null,
    );
  }

  private notify(message: string, kind: 'info' | 'error' = 'info'): void {
    // Screen readers hear it once; sighted users see a toast for a few seconds.
    this.polite.textContent = '';
    setTimeout(() => (this.polite.textContent = message), 50);
    const toast = h('div', { class: `toast toast-${kind}` }, message);
    this.toasts.append(toast);
    setTimeout(() => toast.remove(), kind === 'error' ? 8000 : 4000);
  }

  /** Replaces the app with instructions when there is no usable admin token. */
  gate(reason: 'missing' | 'refused', detail = ''): void {
    if (this.gated) return;
    this.gated = true;
    if (reason === 'refused') this.onRefused();
    this.stopEvents?.();
    this.current?.dispose?.();
    this.current = null;
    renderGate(this.root, reason, detail);
  }
}

function notFoundPage(path: string): Page {
  const element = h(
    'section',
    { class: 'page', 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title', tabindex: '-1' }, 'Page not found'),
    h('p', null, `There is no page at ${path}. `, h('a', { href: href({ page: 'skills' }) }, 'Go to the skills')),
  );
  return {
    element,
    load: async () => setDocumentTitle('Not found'),
  };
}

/** The page shown instead of the dashboard without a usable admin token. */
export function renderGate(root: HTMLElement, reason: 'missing' | 'refused', detail: string): void {
  document.body.dataset.page = 'gate';
  document.body.dataset.state = reason;
  setDocumentTitle(reason === 'refused' ? 'Access refused' : 'Open from MetaClaw');
  const main = h(
    'main',
    { id: 'main', class: 'gate', tabindex: '-1' },
    h('h1', null, reason === 'refused' ? 'The admin token was refused' : 'Open the dashboard from MetaClaw'),
    reason === 'refused'
      ? h(
          'p',
          { class: 'alert alert-error', role: 'alert' },
          'MetaClaw did not accept this page’s admin token',
          detail ? `: ${detail}` : '.',
          ' It may belong to another MetaClaw data folder, or the admin-token file was replaced since the page was opened.',
        )
      : h('p', null, 'This page needs the admin token of your MetaClaw, and it has none.'),
    h('p', null, 'Open the dashboard with this command on the machine that runs MetaClaw:'),
    h('pre', null, h('code', null, 'metaclaw dashboard')),
    h(
      'p',
      null,
      'It opens this page with the token after the # in the address. That part is never sent over the network; the page keeps the token for this tab only and removes it from the address bar. In the tray app, choose “Open dashboard” in the menu.',
    ),
  );
  replace(root, main);
  main.focus();
}
