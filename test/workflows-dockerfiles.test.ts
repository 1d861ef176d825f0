// The GitHub workflows pass the workflow JSON schema (SchemaStore's, through @action-validator/core)
// and the Dockerfiles pass dockerfile-utils' linter with every rule as an error. Neither GitHub nor
// Docker runs here, so these are the checks that catch a broken workflow or image before a tag does.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { validateWorkflow, type ValidationError } from '@action-validator/core';
import { validate, ValidationSeverity, type ValidatorSettings } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const repo = path.resolve(import.meta.dirname, '..');
const workflowsDir = path.join(repo, '.github/workflows');
const workflows = readdirSync(workflowsDir).filter((f) => /\.ya?ml$/.test(f));
const read = (f: string) => readFileSync(path.join(workflowsDir, f), 'utf8');

/** Readable lines for schema errors (nested oneOf states flattened). */
function describeErrors(errors: ValidationError[]): string[] {
  return errors.flatMap((e) => {
    const here = `${'path' in e ? e.path : ''} ${e.title}${e.detail ? `: ${e.detail}` : ''}`;
    const nested = 'states' in e && e.states ? e.states.flatMap((s) => describeErrors(s.errors)) : [];
    return [here, ...nested];
  });
}

interface Step {
  uses?: string;
  run?: string;
  if?: string;
  env?: Record<string, string>;
}
interface Job {
  uses?: string;
  'runs-on'?: string;
  needs?: string | string[];
  strategy?: { matrix?: { include?: { os: string }[] } };
  steps?: Step[];
  permissions?: Record<string, string>;
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

describe('GitHub workflows', () => {
  it('finds the workflows', () => {
    expect(workflows).toEqual(expect.arrayContaining(['ci.yml', 'deploy.yml', 'release-desktop.yml']));
  });

  it.each(workflows)('%s passes the workflow schema', (file) => {
    const state = validateWorkflow(read(file));
    expect(describeErrors(state.errors)).toEqual([]);
  });

  it('the schema check rejects a malformed workflow (it is live)', () => {
    const bad = 'name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    stepz: []\n';
    expect(validateWorkflow(bad).errors.length).toBeGreaterThan(0);
  });

  it.each(workflows)('%s: actions pinned to a major version, reusable workflows exist, least permissions', (file) => {
    const wf = parseYaml(read(file)) as Workflow;
    expect(wf.permissions, 'a workflow-level permissions block').toEqual({ contents: 'read' });
    for (const [name, job] of Object.entries(wf.jobs)) {
      if (job.uses?.startsWith('./')) expect(workflows, name).toContain(path.basename(job.uses));
      for (const step of job.steps ?? [])
        if (step.uses) expect(step.uses, `${file} ${name}`).toMatch(/^[\w.-]+\/[\w./-]+@v\d+$/);
    }
  });
});

describe('desktop release workflow', () => {
  const text = read('release-desktop.yml');
  const wf = parseYaml(text) as Workflow;

  it('runs from desktop-v* tags after the test suite', () => {
    expect(wf.on).toEqual({ push: { tags: ['desktop-v*'] } });
    expect(wf.jobs.ci?.uses).toBe('./.github/workflows/ci.yml');
    expect(wf.jobs.build?.needs).toBe('ci');
  });

  it('builds with electron-builder on Linux, Windows and macOS runners', () => {
    const oses = wf.jobs.build!.strategy!.matrix!.include!.map((i) => i.os);
    expect(oses.some((o) => o.startsWith('ubuntu-'))).toBe(true);
    expect(oses.some((o) => o.startsWith('windows-'))).toBe(true);
    expect(oses.some((o) => o.startsWith('macos-'))).toBe(true);
    const runs = wf.jobs.build!.steps!.map((s) => s.run ?? '');
    for (const flag of ['--linux', '--win', '--mac'])
      expect(runs.some((r) => r.includes(`electron-builder ${flag}`))).toBe(true);
  });

  it('signs Windows and macOS builds (failing without a certificate) and notarizes on macOS', () => {
    const steps = wf.jobs.build!.steps!;
    const win = steps.find((s) => s.run?.includes('electron-builder --win'))!;
    const mac = steps.find((s) => s.run?.includes('electron-builder --mac'))!;
    expect(win.run).toContain('-c.forceCodeSigning=true');
    expect(mac.run).toContain('-c.forceCodeSigning=true');
    expect(Object.keys(win.env ?? {})).toEqual(expect.arrayContaining(['WIN_CSC_LINK', 'WIN_CSC_KEY_PASSWORD']));
    expect(Object.keys(mac.env ?? {})).toEqual(
      expect.arrayContaining([
        'CSC_LINK',
        'CSC_KEY_PASSWORD',
        'APPLE_ID',
        'APPLE_APP_SPECIFIC_PASSWORD',
        'APPLE_TEAM_ID',
      ]),
    );
  });

  it('names every secret it uses in docs/OPERATIONS.md', () => {
    const secrets = [...new Set([...text.matchAll(/secrets\.([A-Z0-9_]+)/g)].map((m) => m[1]!))];
    expect(secrets.length).toBeGreaterThanOrEqual(7);
    const ops = readFileSync(path.join(repo, 'docs/OPERATIONS.md'), 'utf8');
    expect(secrets.filter((s) => !ops.includes(s))).toEqual([]);
  });

  it('publishes through an OIDC role, feed files after the installers', () => {
    const publish = wf.jobs.publish!;
    expect(publish.permissions).toMatchObject({ 'id-token': 'write' });
    expect(text).not.toMatch(/aws-access-key-id|AWS_SECRET_ACCESS_KEY/);
    const upload = publish.steps!.find((s) => s.run?.includes('aws s3 cp'))!.run!;
    expect(upload.indexOf('--exclude "latest*.yml"')).toBeLessThan(upload.indexOf('--include "latest*.yml"'));
  });
});

const DOCKERFILES = ['cloud/Dockerfile.api', 'cloud/Dockerfile.worker'];
/** Every dockerfile-utils rule, as an error. */
const STRICT: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

describe('Dockerfiles lint', () => {
  it.each(DOCKERFILES)('%s has no dockerfile-utils finding', (file) => {
    const text = readFileSync(path.join(repo, file), 'utf8');
    const problems = validate(text, STRICT).map((d) => `${file}:${d.range.start.line + 1} ${d.message}`);
    expect(problems).toEqual([]);
  });

  it.each(DOCKERFILES)('%s pins every base image to a tag (never latest)', (file) => {
    const froms = [...readFileSync(path.join(repo, file), 'utf8').matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);
    const stages = new Set(
      [...readFileSync(path.join(repo, file), 'utf8').matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]!),
    );
    for (const image of froms.filter((f) => !stages.has(f))) expect(image, file).toMatch(/:[\w.-]+$/);
    expect(froms.filter((f) => /:latest$/.test(f))).toEqual([]);
  });

  it('the linter reports a broken Dockerfile (it is live)', () => {
    const bad = 'FROM node:24\nWORKDIR app\nEXPOSE http\nCMD ["a"]\nCMD ["b"]\nRUNN echo\n';
    const messages = validate(bad, STRICT).map((d) => d.message);
    expect(messages.length).toBeGreaterThanOrEqual(4);
    expect(messages.join('\n')).toMatch(/Unknown instruction: RUNN/);
  });
});
