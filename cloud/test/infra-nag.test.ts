/**
 * cdk-nag's AwsSolutions pack over the production CDK app (both stacks, with and without the
 * optional settings): no unacknowledged finding, and every acknowledgement carries a reason. A
 * deliberately bad construct proves the check is live.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { buildStacks } from '../infra/lib/build.ts';
import { acknowledge, acknowledgementsUnder, addNagChecks } from '../infra/lib/nag.ts';
import { FULL_SETTINGS, TEST_ACCOUNT } from './support/infra-settings.ts';
import { parseSettings, type SettingsInput } from '../infra/lib/settings.ts';

const ACCOUNT = TEST_ACCOUNT;
const FULL = FULL_SETTINGS;
const MINIMAL: SettingsInput = {
  account: ACCOUNT,
  region: 'us-east-1',
  domainName: 'api.atelier.example',
  certificateArn: `arn:aws:acm:us-east-1:${ACCOUNT}:certificate/0b1c2d3e`,
  imageTag: 'v0.1.0',
  githubRepo: 'atelier-dev/atelier',
};

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Report {
  pluginReports: { pluginName: string; conclusion: string; violations: { ruleName: string }[] }[];
}
/** Synthesises `app` with the pack; returns the error (if synth refused) and CDK's validation report. */
function synthWithNag(app: App, outdir: string): { error?: Error; report: Report } {
  let error: Error | undefined;
  try {
    app.synth();
  } catch (e) {
    error = e as Error;
  }
  const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as Report;
  return { error, report };
}
function newApp(): { app: App; outdir: string } {
  const outdir = mkdtempSync(path.join(tmpdir(), 'atelier-nag-'));
  dirs.push(outdir);
  const app = new App({ outdir });
  addNagChecks(app);
  return { app, outdir };
}

// Synth plus every AwsSolutions rule over ~150 resources: ~25 s on a quiet machine, minutes on a
// loaded one. A budget, not a timing assertion.
const SYNTH_BUDGET_MS = 300_000;

describe('cdk-nag AwsSolutions', () => {
  it.each([
    { name: 'every optional setting', settings: FULL },
    { name: 'only the required settings', settings: MINIMAL },
  ])(
    'the registry and service stacks have no unacknowledged finding ($name)',
    ({ settings }) => {
      const { app, outdir } = newApp();
      const stacks = buildStacks(app, parseSettings(settings));
      expect(stacks.service).toBeDefined();
      const { error, report } = synthWithNag(app, outdir);
      const nag = report.pluginReports.find((p) => p.pluginName === 'AwsSolutions');
      expect(nag, 'the AwsSolutions pack ran').toBeDefined();
      expect(nag!.violations.map((v) => v.ruleName)).toEqual([]);
      expect(nag!.conclusion).toBe('success');
      expect(error).toBeUndefined();
    },
    SYNTH_BUDGET_MS,
  );

  it(
    'every acknowledgement names one finding and says why',
    () => {
      const { app } = newApp();
      buildStacks(app, parseSettings(FULL));
      // CDK itself acknowledges some of its own CloudFormation-Validate rules; ours are the AwsSolutions ones.
      const acks = acknowledgementsUnder(app).filter((a) => a.id.startsWith('AwsSolutions::'));
      expect(acks.length).toBeGreaterThan(10);
      for (const a of acks) {
        expect(a.reason.length, `${a.path} ${a.id}`).toBeGreaterThanOrEqual(40);
      }
      // Stack-wide acknowledgements would hide new findings of the same rule.
      expect(acks.filter((a) => !a.path.includes('/'))).toEqual([]);
    },
    SYNTH_BUDGET_MS,
  );

  it(
    'a new finding fails synth and names its rule',
    () => {
      const { app, outdir } = newApp();
      buildStacks(app, parseSettings(MINIMAL));
      const extra = new Stack(app, 'Extra', { env: { account: ACCOUNT, region: 'us-east-1' } });
      new Bucket(extra, 'Careless', { removalPolicy: RemovalPolicy.DESTROY });
      const { error, report } = synthWithNag(app, outdir);
      expect(error?.message).toMatch(/AwsSolutions-S1\b/);
      const rules = report.pluginReports.flatMap((p) => p.violations.map((v) => v.ruleName));
      expect(rules).toContain('AwsSolutions-S1'); // no access logs
      expect(rules).toContain('AwsSolutions-S10'); // TLS not enforced
    },
    SYNTH_BUDGET_MS,
  );

  it('refuses an acknowledgement without a reason', () => {
    const stack = new Stack(new App(), 'S');
    expect(() => acknowledge(stack, 'AwsSolutions-S1', 'because')).toThrow(/written reason/);
  });
});

describe('docs/OPERATIONS.md runbook', () => {
  it(
    'has one entry per CloudWatch alarm the service stack defines, and none for alarms that do not exist',
    () => {
      const stacks = buildStacks(new App(), parseSettings(FULL));
      const template = Template.fromStack(stacks.service!);
      const [topic] = Object.keys(template.findResources('AWS::SNS::Topic'));
      const all = template.findResources('AWS::CloudWatch::Alarm') as Record<
        string,
        { Properties: { AlarmActions?: unknown[] } }
      >;
      // The alarms that notify people; the worker scaling policy's own alarms only drive scaling.
      const paging = Object.entries(all).filter(([, a]) =>
        (a.Properties.AlarmActions ?? []).some((x) => (x as { Ref?: string }).Ref === topic),
      );
      expect(Object.keys(all).length - paging.length).toBe(2);
      const alarms = paging
        // Logical ids are the construct id plus an 8-character hash.
        .map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))
        .sort();
      expect(alarms.length).toBeGreaterThanOrEqual(6);
      const ops = readFileSync(path.join(import.meta.dirname, '../../docs/OPERATIONS.md'), 'utf8');
      const runbook = ops.slice(ops.indexOf('## Runbook'));
      const section = runbook.slice(0, runbook.indexOf('\n## ', 1));
      const entries = [...section.matchAll(/^### (\S+)$/gm)].map((m) => m[1]!).sort();
      expect(entries).toEqual(alarms);
    },
    SYNTH_BUDGET_MS,
  );
});
