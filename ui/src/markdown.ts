// Skill text rendered as Markdown. Skills are written by an LLM (the
// evolver) or copied from elsewhere, so their text is untrusted: raw HTML in
// the Markdown is shown as text, never parsed, and the HTML that `marked`
// produces is sanitised by DOMPurify anyway (no scripts, no event handlers,
// no `javascript:` URLs, no forms or frames, no inline styles). Links open
// in a new tab with rel="noopener noreferrer"; images load only from
// `data:` URLs (the CSP allows nothing remote either).

import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c] ?? c);

const marked = new Marked({
  gfm: true,
  async: false,
  renderer: {
    // Raw HTML blocks and inline tags are printed literally.
    html({ text }) {
      return escapeHtml(text);
    },
  },
});

const FORBID_TAGS = ['style', 'script', 'iframe', 'frame', 'object', 'embed', 'form', 'input', 'button', 'textarea',
  'select', 'option', 'link', 'meta', 'base', 'svg', 'math', 'template', 'dialog'];

/** Sanitised HTML of some Markdown, as a fragment ready to append. */
export function renderMarkdown(markdown: string): DocumentFragment {
  const html = marked.parse(markdown) as string;
  const fragment = DOMPurify.sanitize(html, {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS,
    FORBID_ATTR: ['style', 'class', 'id', 'srcset', 'action', 'formaction'],
    ALLOW_DATA_ATTR: false,
  });
  for (const link of Array.from(fragment.querySelectorAll('a'))) {
    const target = link.getAttribute('href') ?? '';
    if (target === '' || target.startsWith('#')) {
      // An in-page anchor would be read as a dashboard route.
      link.removeAttribute('href');
    } else {
      link.setAttribute('target', '_blank');
      link.setAttribute('rel', 'noopener noreferrer');
    }
  }
  for (const img of Array.from(fragment.querySelectorAll('img'))) {
    if (!(img.getAttribute('src') ?? '').startsWith('data:image/')) {
      const alt = img.getAttribute('alt') ?? '';
      img.replaceWith(document.createTextNode(alt ? `[image: ${alt}]` : '[image]'));
    }
  }
  return fragment;
}
