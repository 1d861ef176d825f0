/**
 * A desktop process for sync-profiles.test.ts that is killed (SIGKILL) in the middle of an upload:
 * it opens the profile folder, signs in, and runs a sync pass whose image PUT sends half its bytes
 * and then stalls. It prints MID-TRANSFER when the first half is on the wire.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { systemClock } from '../../src-main/services/clock.ts';
import { createCloudClient } from '../../src-main/services/cloud-client.ts';
import { openDatabase } from '../../src-main/services/db.ts';
import { createLibrary } from '../../src-main/services/library.ts';
import { InMemorySecretStore } from '../../src-main/services/secret-store.ts';
import { cloudSyncPort } from '../../src-main/services/sync/cloud-port.ts';
import { createSyncEngine } from '../../src-main/services/sync/sync-engine.ts';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const dir = env('PROFILE_DIR');
const db = openDatabase(path.join(dir, 'library.db'));
const library = createLibrary({ db, filesDir: path.join(dir, 'images'), clock: systemClock, urlFor: (f) => f });
const cloud = createCloudClient({
  config: {
    apiUrl: env('API_URL'),
    cognito: {
      endpoint: env('COGNITO_ENDPOINT'),
      region: 'local',
      userPoolId: env('COGNITO_POOL'),
      clientId: env('COGNITO_CLIENT'),
    },
  },
  secretStore: new InMemorySecretStore(),
});
await cloud.signIn(env('EMAIL'), env('PASSWORD'));
const port = cloudSyncPort(cloud);
const engine = createSyncEngine({
  db,
  library,
  clock: systemClock,
  cloud: {
    ...port,
    async putFile(put, file) {
      const body = readFileSync(file);
      const req = http.request(put.url, { method: 'PUT', headers: put.headers });
      req.on('error', () => undefined);
      req.write(body.subarray(0, Math.floor(body.byteLength / 2)), () => console.log('MID-TRANSFER'));
      await new Promise(() => undefined); // stalls until killed
    },
  },
});
await engine.syncOnce();
console.log('DONE (should have been killed)');
