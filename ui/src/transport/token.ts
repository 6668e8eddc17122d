// The admin token in a browser. `metaclaw dashboard` opens
// `/ui/#token=<token>`: the token is moved into sessionStorage (it lives as
// long as the tab, never in a cookie the browser would send elsewhere) and
// removed from the address bar and history, so it does not linger in a
// bookmark, a screenshot or the history list.

const STORAGE_KEY = 'metaclaw.admin-token';

export interface TokenStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Splits a URL fragment into the token it carries, if any, and the
 * fragment to keep: `#token=abc` → `{token: 'abc', rest: ''}`;
 * `#/skills?token=abc&q=x` → `{token: 'abc', rest: '#/skills?q=x'}`.
 */
export function splitToken(hash: string): { token: string | null; rest: string } {
  const frag = hash.startsWith('#') ? hash.slice(1) : hash;
  const q = frag.indexOf('?');
  const isRoute = frag.startsWith('/');
  const path = isRoute ? (q < 0 ? frag : frag.slice(0, q)) : '';
  const query = isRoute ? (q < 0 ? '' : frag.slice(q + 1)) : frag;
  const params = new URLSearchParams(query);
  const token = params.get('token');
  if (token === null) return { token: null, rest: hash };
  params.delete('token');
  const left = params.toString();
  const rest = path ? `#${path}${left ? `?${left}` : ''}` : left && isRoute ? `#?${left}` : '';
  return { token: token.trim() || null, rest };
}

/** Takes a token from the address bar (then removes it), else the stored one. */
export function adoptToken(store: TokenStore = sessionStorage, loc: Location = location, hist: History = history): string | null {
  const { token, rest } = splitToken(loc.hash);
  if (token !== null) {
    store.setItem(STORAGE_KEY, token);
    hist.replaceState(hist.state, '', `${loc.pathname}${loc.search}${rest || '#/skills'}`);
    return token;
  }
  if (loc.hash.includes('token=')) {
    // `#token=` with nothing after it: clear the fragment all the same.
    hist.replaceState(hist.state, '', `${loc.pathname}${loc.search}${rest || '#/skills'}`);
  }
  return store.getItem(STORAGE_KEY);
}

export function forgetToken(store: TokenStore = sessionStorage): void {
  store.removeItem(STORAGE_KEY);
}
