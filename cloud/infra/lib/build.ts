/** Adds Atelier's stacks for one environment to a CDK app (used by app.ts and the synth test). */
import type { App } from 'aws-cdk-lib';
import { AtelierStack } from './atelier-stack.ts';
import { RegistryStack } from './registry-stack.ts';
import type { Settings } from './settings.ts';

export interface AtelierStacks {
  registry: RegistryStack;
  service: AtelierStack;
}

export function buildStacks(app: App, settings: Settings): AtelierStacks {
  const env = { account: settings.account, region: settings.region };
  const prefix = `Atelier-${settings.envName}`;
  const registry = new RegistryStack(app, `${prefix}-Registry`, settings, {
    env,
    description: 'Atelier Cloud: image repositories and the GitHub deploy role',
    terminationProtection: true,
  });
  const service = new AtelierStack(app, `${prefix}-Service`, settings, {
    env,
    description: 'Atelier Cloud: network, Postgres, S3, Cognito, API, GPU workers, alarms',
    terminationProtection: true,
    apiRepository: registry.apiRepository,
    workerRepository: registry.workerRepository,
  });
  return { registry, service };
}
