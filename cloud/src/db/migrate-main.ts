// `npm run cloud:migrate`: applies pending migrations to DATABASE_URL (or the local stack's database).
import { loadConfig } from '../config.ts';
import { stackEnv } from '../stack/stack-file.ts';
import { migrate } from './migrate.ts';

const config = loadConfig(stackEnv());
const { applied } = await migrate(config, (line) => console.log(line));
console.log(applied.length ? `migrated: ${applied.length} applied` : 'migrated: already current');
