// `npm run cloud:migrate`: applies pending migrations to DATABASE_URL (or the local stack's database).
import { environment, loadConfig } from '../config.ts';
import { migrate } from './migrate.ts';

// The local stack's file is read only when DATABASE_URL is unset: production images do not carry
// cloud/src/stack (decision 0054), and there DATABASE_URL is always set.
const env = environment().DATABASE_URL
  ? environment()
  : (await import('../stack/stack-file.ts')).stackEnv(environment());
const config = loadConfig(env);
const { applied } = await migrate(config, (line) => console.log(line));
console.log(applied.length ? `migrated: ${applied.length} applied` : 'migrated: already current');
