import { describe, expect, it } from 'vitest';
import { describeExit, electronUnavailable, formatLogLine, START_HELP } from './launcher-text.ts';

describe('npm start output', () => {
  it('turns pino JSON lines into readable ones and leaves other lines alone', () => {
    const line = JSON.stringify({
      level: 30,
      time: 1764680000000,
      pid: 42,
      hostname: 'box',
      reqId: 'req-1',
      req: { method: 'GET', url: '/v1/me' },
      res: { statusCode: 200 },
      responseTime: 3.2,
      msg: 'request completed',
    });
    expect(formatLogLine(line)).toBe('INFO  request completed GET /v1/me → 200 reqId=req-1 responseTime=3.2');
    expect(
      formatLogLine(JSON.stringify({ level: 50, msg: 'job failed', err: { message: 'boom' }, jobId: 'gen_1' })),
    ).toBe('ERROR job failed error: boom jobId=gen_1');
    expect(formatLogLine('READY http://127.0.0.1:8787')).toBe('READY http://127.0.0.1:8787');
    expect(formatLogLine('{"not":"pino"}')).toBe('{"not":"pino"}');
    expect(formatLogLine('{broken')).toBe('{broken');
  });

  it('says which child died and why', () => {
    expect(describeExit('desktop', null, 'SIGKILL', ['a', '', 'last line'])).toBe(
      'desktop stopped unexpectedly: it was killed (SIGKILL). When nobody killed it by hand this is usually the system running out of memory: `journalctl -k | grep -i "out of memory"` (or `dmesg`) says so.\nIts last words:\n  a\n  last line',
    );
    expect(describeExit('stack', 1, null)).toBe('stack stopped unexpectedly: it exited with code 1.');
  });

  it('calls a failed Electron download "offline" instead of printing a fetch TypeError', () => {
    expect(electronUnavailable('RequestError: getaddrinfo EAI_AGAIN github.com\nTypeError: fetch failed')).toBe(
      'offline: the Electron binary cannot be downloaded now; using the browser host',
    );
    expect(electronUnavailable('Error: checksum mismatch')).toMatch(
      /could not be installed \(Error: checksum mismatch\)/,
    );
  });

  it('lists the port variables in --help', () => {
    for (const v of [
      'ATELIER_HOST_PORT',
      'ATELIER_API_PORT',
      'ATELIER_PG_PORT',
      'COGNITO_PORT',
      'S3_PORT',
      'ATELIER_MAILBOX_PORT',
    ])
      expect(START_HELP).toContain(v);
  });
});
