// Small labelled values: a skill's status, a turn's score, the scheduler
// state. Colour is never the only signal: each badge says its value in words.

import { h } from '../dom';
import { score as scoreText, scoreWord, words } from '../format';

export function statusBadge(status: string): HTMLElement {
  const label = status === 'pending' ? 'pending review' : words(status);
  return h('span', { class: `badge badge-${status}` }, label);
}

export function scoreBadge(value: number | null | undefined): HTMLElement {
  const kind = value === null || value === undefined ? 'none' : value > 0 ? 'good' : value < 0 ? 'bad' : 'neutral';
  return h('span', { class: `badge score-${kind}`, title: `PRM score: ${scoreWord(value)}` }, scoreWord(value));
}

/** A mean score with its sign, coloured by direction. */
export function meanScore(value: number | null | undefined): HTMLElement {
  const kind = value === null || value === undefined ? 'none' : value > 0 ? 'good' : value < 0 ? 'bad' : 'neutral';
  return h('span', { class: `num score-text-${kind}` }, scoreText(value));
}

export function stateBadge(state: string): HTMLElement {
  return h('span', { class: `badge state-${state}` }, words(state));
}
