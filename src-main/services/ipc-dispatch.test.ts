import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipcContract, type IpcEnvelope, type LocalJob } from '@atelier/common';
import { createDesktopServices, type DesktopServices } from './desktop-services.ts';
import { dispatchIpc } from './ipc-dispatch.ts';
import { InMemorySecretStore } from './secret-store.ts';
import { InMemoryEngine } from './testing/in-memory-engine.ts';
import { InMemoryModels } from './testing/in-memory-models.ts';

let services: DesktopServices;
beforeAll(async () => {
  services = await createDesktopServices({
    paths: { userData: mkdtempSync(path.join(os.tmpdir(), 'atelier-ipc-')) },
    secretStore: new InMemorySecretStore(),
    engine: new InMemoryEngine(),
    models: new InMemoryModels(),
    cloud: null,
    shell: 'browser',
    version: '0.1.0',
    platform: 'linux',
    urlFor: (f) => `http://127.0.0.1/files/${f}`,
  });
});
afterAll(() => services.close());

/** The in-memory pair: a "renderer" calling the shared dispatcher as a given sender. */
const invoke = (channel: unknown, input: unknown, senderAllowed = true) =>
  dispatchIpc(services.handlers, { channel, input, senderAllowed });
const errorCode = (e: IpcEnvelope) => (e.ok ? null : e.error.code);

describe('IPC dispatch', () => {
  it('has a handler for every contract channel', () => {
    expect(Object.keys(services.handlers).sort()).toEqual(Object.keys(ipcContract).sort());
    for (const channel of Object.keys(ipcContract))
      expect(typeof services.handlers[channel as keyof typeof ipcContract]).toBe('function');
  });

  it('refuses an unknown channel', async () => {
    expect(errorCode(await invoke('fs:readFile', { path: '/etc/passwd' }))).toBe('IPC_UNKNOWN_CHANNEL');
    expect(errorCode(await invoke('__proto__', {}))).toBe('IPC_UNKNOWN_CHANNEL');
    expect(errorCode(await invoke(42, {}))).toBe('IPC_UNKNOWN_CHANNEL');
  });

  it('refuses a sender that is not the app frame, before looking at the channel', async () => {
    expect(errorCode(await invoke('app:info', {}, false))).toBe('IPC_FORBIDDEN_SENDER');
    expect(errorCode(await invoke('nope:nope', {}, false))).toBe('IPC_FORBIDDEN_SENDER');
  });

  it('validates input with the contract and names the bad fields', async () => {
    const bad = await invoke('jobs:submit', { prompt: '', width: 65, steps: 0 });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.error.code).toBe('VALIDATION_FAILED');
    const fields = (bad.error.details?.fields as { field: string }[]).map((f) => f.field).sort();
    expect(fields).toEqual(['prompt', 'steps', 'width']);
    expect(errorCode(await invoke('app:info', { extra: 1 }))).toBe('VALIDATION_FAILED');
    expect(errorCode(await invoke('library:get', { id: '../../etc' }))).toBe('VALIDATION_FAILED');
  });

  it('answers handler AppErrors as envelopes and values as ok envelopes', async () => {
    const info = await invoke('app:info', {});
    expect(info).toEqual({
      ok: true,
      value: { version: '0.1.0', platform: 'linux', shell: 'browser', apiUrl: null, mailboxUrl: null },
    });
    expect(errorCode(await invoke('library:get', { id: 'img_0000000000000000000000' }))).toBe('NOT_FOUND');
    expect(errorCode(await invoke('account:signIn', { email: 'a@b.co', password: 'x' }))).toBe('SERVICE_UNAVAILABLE');
  });

  it('runs a local generation end to end through the dispatcher and events', async () => {
    const done = new Promise<LocalJob>((resolve) =>
      services.events.on('jobs:changed', (j) => {
        if (j.state === 'succeeded') resolve(j);
      }),
    );
    const r = await invoke('jobs:submit', {
      prompt: 'a quiet harbour',
      steps: 2,
      width: 64,
      height: 64,
      target: 'local',
      seed: 5,
    });
    expect(r.ok).toBe(true);
    const job = await done;
    const page = await invoke('library:list', {});
    expect(page.ok && (page.value as { total: number }).total).toBe(1);
    const img = await invoke('library:get', { id: job.imageIds[0] });
    expect(img.ok && (img.value as { metadata: { seed: number } }).metadata.seed).toBe(5);
    const explain = await invoke('router:explain', { target: 'auto' });
    expect(explain.ok && explain.value).toMatchObject({
      target: 'local',
      provider: 'cpu',
      warning: expect.stringMatching(/slow/),
    });
  });
});
