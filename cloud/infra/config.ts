/**
 * The CDK app's inputs: context values (cdk.json, `-c key=value`) with the account and region the
 * CDK CLI resolved from the caller's credentials as defaults. The only file of cloud/infra's app
 * that reads the environment.
 */
import type { App } from 'aws-cdk-lib';
import { parseSettings, SETTING_KEYS, type Settings } from './lib/settings.ts';

export function settingsFromApp(app: App): Settings {
  const raw: Record<string, unknown> = Object.fromEntries(SETTING_KEYS.map((k) => [k, app.node.tryGetContext(k)]));
  raw.account ??= process.env.CDK_DEFAULT_ACCOUNT;
  raw.region ??= process.env.CDK_DEFAULT_REGION;
  return parseSettings(raw);
}
