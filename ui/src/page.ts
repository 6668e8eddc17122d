// What every page is: an element, a load that fetches and renders (run on
// open and again on relevant engine events), and the event types it cares
// about. The app owns the lifecycle; pages own only their own element.

import type { Api } from './api';
import type { EngineEvent } from './transport/types';

export interface PageContext {
  api: Api;
  params: URLSearchParams;
  /** The tray's settings window: no navigation around the page. */
  windowMode: boolean;
  /** Sets the document title ("Skills (12)" → "Skills (12) — MetaClaw"). */
  setTitle(text: string): void;
  /** A short status message in the live region. */
  notify(message: string, kind?: 'info' | 'error'): void;
  /** Asks the header to re-read the overview (after an action). */
  refreshOverview(): void;
  /** Replaces the hash parameters without a page change (search boxes). */
  replaceParams(params: URLSearchParams): void;
  navigate(hash: string): void;
}

export interface Page {
  readonly element: HTMLElement;
  /** Fetches and renders; the first call's failure replaces the page. */
  load(): Promise<void>;
  /** Engine events that should reload this page. */
  wants?(event: EngineEvent): boolean;
  /** True while the user edits something a reload would throw away. */
  busy?(): boolean;
  dispose?(): void;
}

/**
 * Runs `fn` at most once per `delayMs` however often it is asked for, and
 * again after a run if asked during it: a burst of events becomes one
 * reload, and a steady stream still reloads about once per `delayMs`.
 */
export function coalesce(fn: () => Promise<void> | void, delayMs: number): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    timer = null;
    running = true;
    try {
      await fn();
    } finally {
      running = false;
      if (again) {
        again = false;
        trigger();
      }
    }
  };
  const trigger = (): void => {
    if (running) {
      again = true;
      return;
    }
    if (timer === null) timer = setTimeout(() => void run(), delayMs);
  };
  return trigger;
}
