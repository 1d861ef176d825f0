import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cognitoCall, ensureUserPool, startCognitoLocal, type RunningCognito } from '../src/stack/cognito.ts';
import { createCodeDeliveryParser, type MailMessage } from '../src/stack/mailbox.ts';
import { freePort } from './support/free-port.ts';

type Parsed = Omit<MailMessage, 'id' | 'receivedAt'>;

// cognito-local's pretty log: coloured prefix, then a box drawn with multi-byte characters.
const ESC = String.fromCharCode(27);
function box(reqId: string, operation: string, fields: [string, string][]): string[] {
  const width = 55;
  const row = (text: string) => `│${`   ${text}`.padEnd(width)}│`;
  return [
    `[1796288656507] ${ESC}[32mINFO${ESC}[39m: ${ESC}[36m${reqId} ${operation} ╭${'─'.repeat(width)}╮`,
    row(''),
    row('Confirmation Code Delivery'),
    row(''),
    ...fields.map(([k, v]) => row(`${`${k}:`.padEnd(13)}${v}`)),
    row(''),
    `╰${'─'.repeat(width)}╯${ESC}[39m`,
  ];
}

describe('code delivery parser', () => {
  const parse = (lines: string[]) => {
    const out: Parsed[] = [];
    const feed = createCodeDeliveryParser((m) => out.push(m));
    for (const l of lines) feed(l);
    return out;
  };

  it('reads address, user and code from a coloured box, and names the mail by the operation', () => {
    const fields: [string, string][] = [
      ['Username', '7ad1bc6e-6d8a-44d3-b91c-5dbc7143fe8a'],
      ['Destination', 'ada@example.com'],
      ['Code', '330947'],
    ];
    expect(
      parse([
        ...box('e235927b', 'SignUp', fields),
        ...box('3ab24beb', 'ForgotPassword', fields),
        ...box('84033917', 'AdminUpdateUserAttributes', fields),
      ]),
    ).toEqual([
      {
        to: 'ada@example.com',
        username: '7ad1bc6e-6d8a-44d3-b91c-5dbc7143fe8a',
        kind: 'sign-up',
        subject: 'Your Atelier confirmation code',
        code: '330947',
      },
      expect.objectContaining({ kind: 'password-reset', subject: 'Your Atelier password reset code' }),
      expect.objectContaining({ kind: 'other', subject: 'Your Atelier code (AdminUpdateUserAttributes)' }),
    ]);
  });

  it('ignores other lines inside a box (stderr shares the parser) and boxes without a code', () => {
    const lines = box('e235927b', 'SignUp', [
      ['Destination', 'ada@example.com'],
      ['Code', '123456'],
    ]);
    lines.splice(3, 0, '(node:1) ExperimentalWarning: something else entirely');
    const noCode = box('3ab24beb', 'SignUp', [['Destination', 'bob@example.com']]);
    expect(parse([...noCode, ...lines]).map((m) => [m.to, m.code])).toEqual([['ada@example.com', '123456']]);
  });

  it('a box cut short by the next one is dropped, and the next one still reads', () => {
    const first = box('e235927b', 'SignUp', [
      ['Destination', 'ada@example.com'],
      ['Code', '111111'],
    ]);
    const second = box('3ab24beb', 'SignUp', [
      ['Destination', 'bob@example.com'],
      ['Code', '222222'],
    ]);
    expect(parse([...first.slice(0, 5), ...second]).map((m) => [m.to, m.code])).toEqual([
      ['bob@example.com', '222222'],
    ]);
  });
});

// The real cognito-local as the stack runs it. Its stock bin logs through a writer that stalls once
// a few boxes have gone by (see cognito-local-main.ts): the code of the fourth or so sign-up then
// sat unwritten until more output came, so the mailbox never listed it.
describe('cognito-local code deliveries reach the mailbox parser', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'atelier-mailbox-'));
  const delivered: Parsed[] = [];
  let cognito: RunningCognito;
  let pool: { userPoolId: string; clientId: string };
  beforeAll(async () => {
    cognito = await startCognitoLocal({
      dataDir: dir,
      port: await freePort(),
      onLine: createCodeDeliveryParser((m) => delivered.push(m)),
    });
    pool = await ensureUserPool(cognito.endpoint);
  });
  afterAll(async () => {
    await cognito?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every sign-up in a row gets its code out, and each code confirms its account', async () => {
    for (let i = 0; i < 10; i++) {
      const email = `mailbox-${i}-${Date.now().toString(36)}@example.com`;
      await cognitoCall(cognito.endpoint, 'SignUp', {
        ClientId: pool.clientId,
        Username: email,
        Password: 'Atelier2e2e',
        UserAttributes: [{ Name: 'email', Value: email }],
      });
      // Nothing else is logged after a sign-up, so a code held back in cognito-local never comes.
      await expect
        .poll(() => delivered.find((m) => m.to === email), { timeout: 10_000, interval: 50 })
        .toMatchObject({ kind: 'sign-up', code: expect.stringMatching(/^\d{6}$/) });
      const { code } = delivered.find((m) => m.to === email)!;
      await cognitoCall(cognito.endpoint, 'ConfirmSignUp', {
        ClientId: pool.clientId,
        Username: email,
        ConfirmationCode: code,
      });
    }
  });
});
