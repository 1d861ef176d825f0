/** Adds Atelier's stacks for one environment to a CDK app (used by app.ts and the synth test). */
import type { App } from 'aws-cdk-lib';
import { AtelierStack } from './atelier-stack.ts';
import { RegistryStack } from './registry-stack.ts';
import { isServiceSettings, missingServiceSettings, type Settings } from './settings.ts';

export interface AtelierStacks {
  registry: RegistryStack;
  /** Absent until domainName, certificateArn and imageTag are set (see `skipped`). */
  service?: AtelierStack;
  /** Why the service stack was left out: the context keys it still needs. */
  skipped: string[];
}

export function buildStacks(app: App, settings: Settings): AtelierStacks {
  const env = { account: settings.account, region: settings.region };
  const prefix = `Atelier-${settings.envName}`;
  const registry = new RegistryStack(app, `${prefix}-Registry`, settings, {
    env,
    description: 'Atelier Cloud: image repositories and the GitHub deploy role',
    terminationProtection: true,
  });
  if (!isServiceSettings(settings)) return { registry, skipped: missingServiceSettings(settings) };
  const service = new AtelierStack(app, `${prefix}-Service`, settings, {
    env,
    description: 'Atelier Cloud: network, Postgres, S3, Cognito, API, GPU workers, alarms',
    terminationProtection: true,
    apiRepository: registry.apiRepository,
    workerRepository: registry.workerRepository,
  });
  return { registry, service, skipped: [] };
}
