/**
 * The CDK app (cloud/infra/cdk.json runs it with Node 24, no build step):
 *
 *   cd cloud/infra && npx aws-cdk@2 deploy --all -c domainName=api.example.com -c certificateArn=arn:aws:acm:… -c imageTag=v1.2.3
 *
 * See README.md for bootstrap, context values, secrets, deploy and rollback.
 */
import { App } from 'aws-cdk-lib';
import { settingsFromApp } from './config.ts';
import { buildStacks } from './lib/build.ts';
import { addNagChecks } from './lib/nag.ts';
import { SettingsError } from './lib/settings.ts';

const app = new App();
// cdk-nag's AwsSolutions pack: synth (and so deploy) stops on an unacknowledged finding.
addNagChecks(app);
try {
  const settings = settingsFromApp(app);
  const { skipped } = buildStacks(app, settings);
  if (skipped.length)
    console.error(`Atelier-${settings.envName}-Service left out: set ${skipped.map((k) => `-c ${k}=…`).join(' ')}`);
} catch (err) {
  if (!(err instanceof SettingsError)) throw err;
  console.error(err.message);
  process.exit(1);
}
app.synth();
