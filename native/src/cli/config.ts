import { providerEnvironment, type ProviderEnvironment } from '../providers/config.ts';
import { storeLocationsFromEnv, type StoreLocations } from '../store/config.ts';

/** Everything the CLI takes from the environment, read once at start. */
export interface CliConfig extends StoreLocations {
  providerEnv: ProviderEnvironment;
  /** Where the repository's fixture models are looked for (ATELIER_FIXTURE_MODELS_DIR; "" disables). */
  fixtureDirs: string[] | undefined;
  /** Where the models shipped with Atelier are looked for (ATELIER_BUNDLED_MODELS_DIR; "" disables). */
  bundledDirs: string[] | undefined;
  /** NO_COLOR / non-TTY decide plain output. */
  color: boolean;
}

export function cliConfigFromEnv(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const fixtures = env.ATELIER_FIXTURE_MODELS_DIR;
  const bundled = env.ATELIER_BUNDLED_MODELS_DIR;
  return {
    ...storeLocationsFromEnv(env),
    providerEnv: providerEnvironment(env),
    fixtureDirs: fixtures === undefined ? undefined : fixtures.split(':').filter(Boolean),
    bundledDirs: bundled === undefined ? undefined : bundled.split(':').filter(Boolean),
    color: env.NO_COLOR === undefined && env.TERM !== 'dumb',
  };
}
