import { describe, expect, it } from 'vitest';
import { adoptToken, splitToken, type TokenStore } from './token';

class MemoryStore implements TokenStore {
  items = new Map<string, string>();
  getItem(k: string): string | null {
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.items.set(k, v);
  }
  removeItem(k: string): void {
    this.items.delete(k);
  }
}

describe('splitToken', () => {
  it('takes the token the CLI puts in the fragment', () => {
    expect(splitToken('#token=abc123')).toEqual({ token: 'abc123', rest: '' });
  });

  it('takes a token from a route and keeps the other parameters', () => {
    expect(splitToken('#/skills?token=abc&q=tz')).toEqual({ token: 'abc', rest: '#/skills?q=tz' });
    expect(splitToken('#/settings?token=abc')).toEqual({ token: 'abc', rest: '#/settings' });
  });

  it('leaves fragments without a token alone', () => {
    expect(splitToken('#/skills/tz')).toEqual({ token: null, rest: '#/skills/tz' });
    expect(splitToken('')).toEqual({ token: null, rest: '' });
  });

  it('treats an empty token as none', () => {
    expect(splitToken('#token=').token).toBeNull();
  });
});

describe('adoptToken', () => {
  it('stores the token and removes it from the address bar', () => {
    history.replaceState(null, '', '/ui/#token=s3cret');
    const store = new MemoryStore();
    expect(adoptToken(store)).toBe('s3cret');
    expect(store.getItem('metaclaw.admin-token')).toBe('s3cret');
    expect(location.hash).toBe('#/skills');
    expect(location.href).not.toContain('s3cret');
  });

  it('falls back to the stored token', () => {
    history.replaceState(null, '', '/ui/#/sessions');
    const store = new MemoryStore();
    store.setItem('metaclaw.admin-token', 'kept');
    expect(adoptToken(store)).toBe('kept');
    expect(location.hash).toBe('#/sessions');
  });

  it('has none without a fragment token or a stored one', () => {
    history.replaceState(null, '', '/ui/');
    expect(adoptToken(new MemoryStore())).toBeNull();
  });
});
