// Hash routes: #/skills, #/skills/<name>, #/sessions, #/sessions/<id>,
// #/training, #/schedule, #/settings, each with optional `?key=value`
// parameters (`#/skills?q=tz&status=pending`, `#/settings?window=settings`
// for the tray's settings window). The hash keeps the page across reloads
// and works with the tray app's bundled assets, which have no server routes.

export type Route =
  | { page: 'skills' }
  | { page: 'skill'; name: string }
  | { page: 'sessions' }
  | { page: 'session'; id: string }
  | { page: 'training' }
  | { page: 'schedule' }
  | { page: 'settings' }
  | { page: 'not-found'; path: string };

export interface Location {
  route: Route;
  params: URLSearchParams;
}

function decode(part: string): string | null {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

/** Parses a location hash; an empty hash is the skills page. */
export function parseHash(hash: string): Location {
  const frag = hash.replace(/^#/, '');
  const q = frag.indexOf('?');
  const path = q < 0 ? frag : frag.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : frag.slice(q + 1));
  const parts = path.split('/').filter((p) => p !== '');
  const [first, second, ...extra] = parts;
  const notFound: Location = { route: { page: 'not-found', path: `/${parts.join('/')}` }, params };
  if (extra.length > 0) return notFound;
  switch (first) {
    case undefined:
      return { route: { page: 'skills' }, params };
    case 'skills': {
      if (second === undefined) return { route: { page: 'skills' }, params };
      const name = decode(second);
      return name ? { route: { page: 'skill', name }, params } : notFound;
    }
    case 'sessions': {
      if (second === undefined) return { route: { page: 'sessions' }, params };
      const id = decode(second);
      return id ? { route: { page: 'session', id }, params } : notFound;
    }
    case 'training':
    case 'schedule':
    case 'settings':
      return second === undefined ? { route: { page: first }, params } : notFound;
    default:
      return notFound;
  }
}

/** The hash of a route, for links: `href(skill('tz'))` → `#/skills/tz`. */
export function href(route: Route, params?: Record<string, string>): string {
  let path: string;
  switch (route.page) {
    case 'skill':
      path = `/skills/${encodeURIComponent(route.name)}`;
      break;
    case 'session':
      path = `/sessions/${encodeURIComponent(route.id)}`;
      break;
    case 'not-found':
      path = route.path;
      break;
    default:
      path = `/${route.page}`;
  }
  const query = params ? new URLSearchParams(params).toString() : '';
  return `#${path}${query ? `?${query}` : ''}`;
}

export const skillHref = (name: string): string => href({ page: 'skill', name });
export const sessionHref = (id: string): string => href({ page: 'session', id });

/** Is this hash one of ours (`#/…` or empty), not an in-page anchor? */
export function isRouteHash(hash: string): boolean {
  return hash === '' || hash === '#' || hash.startsWith('#/');
}
