// Numbers, scores and times in words for the pages.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const integer = new Intl.NumberFormat();

export function count(n: number): string {
  return integer.format(n);
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}

function toDate(at: string | number | null | undefined): Date | null {
  if (at === null || at === undefined || at === '') return null;
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "16 Mar 2026, 10:04", or "—". */
export function when(at: string | number | null | undefined): string {
  const d = toDate(at);
  return d ? dateTime.format(d) : '—';
}

export function clock(at: string | number | null | undefined): string {
  const d = toDate(at);
  return d ? timeOnly.format(d) : '—';
}

/** "3 min ago", "in 2 h", for recent and near-future times. */
export function relative(at: string | number | null | undefined, now = Date.now()): string {
  const d = toDate(at);
  if (!d) return '—';
  const seconds = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  const [value, unit] =
    abs < 60 ? [seconds, 'second'] : abs < 3600 ? [Math.round(seconds / 60), 'minute'] : abs < 86400 ? [Math.round(seconds / 3600), 'hour'] : [Math.round(seconds / 86400), 'day'];
  return new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }).format(value, unit as Intl.RelativeTimeFormatUnit);
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A mean PRM score in [-1, 1] with its sign. */
export function score(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  const text = value.toFixed(2);
  return value > 0 ? `+${text}` : text;
}

export function scoreWord(value: number | null | undefined): string {
  if (value === null || value === undefined) return 'not scored';
  if (value > 0) return '+1 good';
  if (value < 0) return '−1 bad';
  return '0 neutral';
}

/** Words for snake_case engine values: `window_open` → "window open". */
export function words(value: string | null | undefined): string {
  return (value ?? '').replace(/_/g, ' ');
}

/** Short form of a long id for titles. */
export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}
