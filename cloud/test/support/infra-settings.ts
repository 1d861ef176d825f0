/** Deployment settings the infra tests synthesize the CDK app with: every optional setting, and none. */
import type { SettingsInput } from '../../infra/lib/settings.ts';

export const TEST_ACCOUNT = '123456789012';

export const FULL_SETTINGS: SettingsInput = {
  account: TEST_ACCOUNT,
  region: 'eu-west-1',
  domainName: 'api.atelier.example',
  certificateArn: `arn:aws:acm:eu-west-1:${TEST_ACCOUNT}:certificate/0b1c2d3e`,
  imageTag: 'v1.2.3',
  githubRepo: 'atelier-dev/atelier',
  stripeSecretArn: `arn:aws:secretsmanager:eu-west-1:${TEST_ACCOUNT}:secret:atelier/prod/stripe-AbCdEf`,
  stripePricePro: 'price_1Pro',
  modelsBucket: 'atelier-models-bucket',
  alarmEmail: 'ops@atelier.example',
  cloudModels: JSON.stringify([{ id: 'sd-turbo', default: true, dir: 'sd-turbo' }]),
};
