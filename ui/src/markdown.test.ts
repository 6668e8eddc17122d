import { describe, expect, it } from 'vitest';
import { renderMarkdown } from './markdown';

function html(markdown: string): HTMLElement {
  const div = document.createElement('div');
  div.append(renderMarkdown(markdown));
  return div;
}

describe('renderMarkdown', () => {
  it('renders ordinary Markdown', () => {
    const el = html('# Title\n\n- **bold** item\n\n```\ncode\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |');
    expect(el.querySelector('h1')?.textContent).toBe('Title');
    expect(el.querySelector('li strong')?.textContent).toBe('bold');
    expect(el.querySelector('pre code')?.textContent).toBe('code\n');
    expect(el.querySelectorAll('td')).toHaveLength(2);
  });

  it('shows raw HTML as text and runs nothing', () => {
    const el = html('<script>window.__pwned = 1</script>\n\nInline <img src=x onerror="window.__pwned=2"> here.\n\n<div onclick="x()">d</div>');
    expect(el.querySelector('script, img, div[onclick]')).toBeNull();
    expect(el.textContent).toContain('<script>window.__pwned = 1</script>');
    expect(el.textContent).toContain('<img src=x onerror="window.__pwned=2">');
    expect(el.innerHTML).not.toMatch(/<(script|img)/);
  });

  it('drops javascript: links and marks others noopener in a new tab', () => {
    const el = html('[bad](javascript:alert(1)) [good](https://example.com/a) [anchor](#top)');
    const links = Array.from(el.querySelectorAll('a'));
    expect(links).toHaveLength(3);
    expect(links[0]?.hasAttribute('href')).toBe(false);
    expect(links[1]?.getAttribute('href')).toBe('https://example.com/a');
    expect(links[1]?.getAttribute('rel')).toBe('noopener noreferrer');
    expect(links[1]?.getAttribute('target')).toBe('_blank');
    // An in-page anchor would be read as a route: it stays text.
    expect(links[2]?.hasAttribute('href')).toBe(false);
  });

  it('keeps only data: images', () => {
    const el = html('![remote](https://example.com/x.png) ![local](data:image/png;base64,iVBORw0KGgo=)');
    const images = Array.from(el.querySelectorAll('img'));
    expect(images).toHaveLength(1);
    expect(images[0]?.getAttribute('src')).toMatch(/^data:image\/png/);
    expect(el.textContent).toContain('[image: remote]');
  });
});
