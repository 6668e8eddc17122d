import { describe, expect, it } from 'vitest';
import { parseEvent } from './http';
import { SseParser } from './sse';

describe('SseParser', () => {
  it('reads events, multi-line data and comments', () => {
    const p = new SseParser();
    const out = p.push(': keep-alive\n\nevent: skill_added\ndata: {"type":"skill_added",\ndata: "name":"tz"}\n\n');
    expect(out).toEqual([{ event: 'skill_added', data: '{"type":"skill_added",\n"name":"tz"}', id: null }]);
  });

  it('joins lines split across chunks, with CRLF split between them', () => {
    const p = new SseParser();
    expect(p.push('event: turn_rec')).toEqual([]);
    expect(p.push('orded\r')).toEqual([]);
    expect(p.push('\ndata: {"a":1}\r\n\r')).toEqual([{ event: 'turn_recorded', data: '{"a":1}', id: null }]);
    // The LF after the CR above is not a second blank line.
    expect(p.push('\ndata: 2\n\n')).toEqual([{ event: 'message', data: '2', id: null }]);
  });

  it('keeps the last id and ignores retry and unknown fields', () => {
    const p = new SseParser();
    const out = p.push('id: 7\nretry: 10\nfoo: bar\ndata:x\n\ndata: y\n\n');
    expect(out.map((m) => [m.data, m.id])).toEqual([
      ['x', '7'],
      ['y', '7'],
    ]);
  });

  it('dispatches nothing for an event with no data', () => {
    const p = new SseParser();
    expect(p.push('event: lagged\n\n')).toEqual([]);
    expect(p.push('data: z\n\n')).toEqual([{ event: 'message', data: 'z', id: null }]);
  });
});

describe('parseEvent', () => {
  it('takes the type from the data, else from the event name', () => {
    expect(parseEvent('x', '{"type":"training_step","step":3}')).toEqual({ type: 'training_step', step: 3 });
    expect(parseEvent('lagged', '{"missed":4}')).toEqual({ type: 'lagged', missed: 4 });
  });

  it('drops data that is not a JSON object', () => {
    expect(parseEvent('x', 'not json')).toBeNull();
    expect(parseEvent('x', '[1,2]')).toBeNull();
    expect(parseEvent('x', 'null')).toBeNull();
  });
});
