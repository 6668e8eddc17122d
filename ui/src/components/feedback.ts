// Showing errors and confirmations: an API error as an alert with its
// message (the engine's words), field errors next to their fields, and a
// modal confirmation built on <dialog> (keyboard and screen-reader ready,
// and no window.confirm, which the tray's web view may not show).

import { ApiError } from '../api';
import { h } from '../dom';

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** An alert box for a failed load or action. */
export function errorBox(e: unknown, retry?: () => void): HTMLElement {
  const code = e instanceof ApiError ? e.code : 'error';
  return h(
    'div',
    { class: 'alert alert-error', role: 'alert', dataset: { code } },
    h('p', null, h('strong', null, heading(e)), ' ', errorText(e)),
    retry ? h('button', { type: 'button', class: 'button', onclick: retry }, 'Try again') : null,
  );
}

function heading(e: unknown): string {
  if (!(e instanceof ApiError)) return 'Something went wrong:';
  switch (e.code) {
    case 'not_found':
      return 'Not found:';
    case 'invalid':
      return 'Not saved:';
    case 'conflict':
      return 'Not now:';
    case 'unavailable':
      return 'Unavailable:';
    case 'unreachable':
      return 'No connection:';
    case 'unauthorized':
      return 'Refused:';
    default:
      return 'Error:';
  }
}

/**
 * Marks `input` invalid with `message` shown under it (or clears it when
 * `message` is null). The message element is created next to the input.
 */
export function setFieldError(input: HTMLElement, message: string | null): void {
  const id = `${input.id || 'field'}-error`;
  let note = input.parentElement?.querySelector<HTMLElement>(`[data-error-for="${CSS.escape(input.id)}"]`) ?? null;
  if (message === null) {
    input.removeAttribute('aria-invalid');
    note?.remove();
    const described = (input.getAttribute('aria-describedby') ?? '').split(' ').filter((x) => x && x !== id);
    if (described.length) input.setAttribute('aria-describedby', described.join(' '));
    else input.removeAttribute('aria-describedby');
    return;
  }
  if (!note) {
    note = h('p', { class: 'field-error', id, dataset: { errorFor: input.id } });
    input.insertAdjacentElement('afterend', note);
  }
  note.textContent = message;
  input.setAttribute('aria-invalid', 'true');
  const described = new Set((input.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean));
  described.add(id);
  input.setAttribute('aria-describedby', [...described].join(' '));
}

/** Asks a yes/no question in a modal dialog; resolves true on confirm. */
export function confirmDialog(question: string, detail: string, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'button', value: 'cancel' }, 'Cancel');
    const ok = h('button', { type: 'button', class: 'button button-danger', value: 'ok' }, confirmLabel);
    const dialog = h(
      'dialog',
      { class: 'dialog', 'aria-labelledby': 'dialog-title', 'aria-describedby': 'dialog-detail' },
      h('h2', { id: 'dialog-title' }, question),
      h('p', { id: 'dialog-detail' }, detail),
      h('div', { class: 'actions' }, cancel, ok),
    );
    const opener = document.activeElement as HTMLElement | null;
    let answered = false;
    const finish = (answer: boolean): void => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      opener?.focus();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    ok.addEventListener('click', () => finish(true));
    dialog.addEventListener('cancel', () => finish(false));
    dialog.addEventListener('close', () => finish(false));
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
