import { describe, expect, it } from 'vitest';
import { href, isRouteHash, parseHash } from './router';

describe('parseHash', () => {
  it('maps every page', () => {
    expect(parseHash('').route).toEqual({ page: 'skills' });
    expect(parseHash('#/skills').route).toEqual({ page: 'skills' });
    expect(parseHash('#/skills/verify-timezones').route).toEqual({ page: 'skill', name: 'verify-timezones' });
    expect(parseHash('#/sessions').route).toEqual({ page: 'sessions' });
    expect(parseHash('#/sessions/0195-abc').route).toEqual({ page: 'session', id: '0195-abc' });
    expect(parseHash('#/training').route).toEqual({ page: 'training' });
    expect(parseHash('#/schedule').route).toEqual({ page: 'schedule' });
    expect(parseHash('#/settings').route).toEqual({ page: 'settings' });
  });

  it('reads parameters after the path', () => {
    const { route, params } = parseHash('#/settings?window=settings');
    expect(route).toEqual({ page: 'settings' });
    expect(params.get('window')).toBe('settings');
    expect(parseHash('#/skills?q=time%20zone&status=pending').params.get('q')).toBe('time zone');
  });

  it('decodes names and refuses unknown or malformed paths', () => {
    expect(parseHash('#/skills/a%2Fb').route).toEqual({ page: 'skill', name: 'a/b' });
    expect(parseHash('#/nope').route).toEqual({ page: 'not-found', path: '/nope' });
    expect(parseHash('#/skills/a/b').route.page).toBe('not-found');
    expect(parseHash('#/skills/%E0%A4%A').route.page).toBe('not-found');
    expect(parseHash('#/training/x').route.page).toBe('not-found');
  });
});

describe('href', () => {
  it('round-trips through parseHash', () => {
    for (const route of [
      { page: 'skill', name: 'odd name/with?chars' },
      { page: 'session', id: 's-1' },
      { page: 'schedule' },
    ] as const) {
      expect(parseHash(href(route)).route).toEqual(route);
    }
    expect(href({ page: 'schedule' }, { date: '2026-03-16' })).toBe('#/schedule?date=2026-03-16');
  });

  it('tells routes from in-page anchors', () => {
    expect(isRouteHash('#/skills')).toBe(true);
    expect(isRouteHash('')).toBe(true);
    expect(isRouteHash('#main')).toBe(false);
  });
});
