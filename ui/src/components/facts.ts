// A term and its value in a description list. Each pair is wrapped in a
// <div> (valid inside <dl>) so an inline list never breaks a term from
// its value.

import { h } from '../dom';

export function fact(term: string, value: Node | string): HTMLElement {
  return h('div', { class: 'fact' }, h('dt', null, term), h('dd', null, value));
}
