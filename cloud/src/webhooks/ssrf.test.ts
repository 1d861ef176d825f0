import { describe, expect, it } from 'vitest';
import { checkUrlShape, isForbiddenAddress, resolveTarget } from './ssrf.ts';

const strict = { allowPrivateTargets: false, requireHttps: true };

describe('isForbiddenAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '198.18.0.1',
    '192.0.2.1',
    '::',
    '::1',
    'fe80::1',
    'fe80::1%eth0',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '64:ff9b::a9fe:a9fe', // NAT64 of 169.254.169.254
    '2002:7f00:1::', // 6to4 of 127.0.0.1
    '2001:db8::1',
    'not an ip',
  ])('refuses %s', (ip) => expect(isForbiddenAddress(ip)).toBe(true));

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::6810:84e5', '::ffff:8.8.8.8'])(
    'allows %s',
    (ip) => expect(isForbiddenAddress(ip)).toBe(false),
  );
});

describe('resolveTarget', () => {
  it('refuses a name when any of its addresses is private, and pins the checked one otherwise', async () => {
    const mixed = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '10.0.0.7', family: 4 },
    ];
    await expect(resolveTarget('https://mixed.example/x', strict, mixed)).rejects.toMatchObject({
      code: 'WEBHOOK_TARGET_FORBIDDEN',
    });
    const pub = async () => [{ address: '93.184.216.34', family: 4 }];
    await expect(resolveTarget('https://pub.example/x', strict, pub)).resolves.toMatchObject({
      address: '93.184.216.34',
      family: 4,
    });
  });

  it('allows private targets and http only with the development setting', async () => {
    const dev = { allowPrivateTargets: true, requireHttps: false };
    await expect(resolveTarget('http://127.0.0.1:9/x', dev)).resolves.toMatchObject({ address: '127.0.0.1' });
    expect(() => checkUrlShape('http://127.0.0.1/x', strict)).toThrow(/https/);
    expect(() => checkUrlShape('http://127.0.0.1/x', { allowPrivateTargets: true, requireHttps: true })).toThrow(
      /https/,
    );
    expect(() => checkUrlShape('https://u:p@example.com/x', strict)).toThrow(/credentials/);
    expect(() => checkUrlShape('gopher://example.com/x', strict)).toThrow(/scheme/);
  });
});
