/**
 * A cheap guard on the Dockerfiles (no Docker engine here to build them): the instructions the
 * production deployment relies on are present. CI's deploy workflow builds them for real.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');

interface Instruction {
  op: string;
  args: string;
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
function parse(file: string): Instruction[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [op = '', ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

/** The instructions of the last stage (what the image is). */
function finalStage(ins: Instruction[]): Instruction[] {
  const lastFrom = ins.map((i) => i.op).lastIndexOf('FROM');
  return ins.slice(lastFrom);
}

function checkCommon(ins: Instruction[]) {
  const run = ins.filter((i) => i.op === 'RUN').map((i) => i.args);
  // Production dependencies of the server workspaces only, with the repository's .npmrc.
  expect(
    run.some((r) => /npm ci\b.*--omit=dev/.test(r) && /-w cloud/.test(r) && /-w common/.test(r) && /-w native/.test(r)),
  ).toBe(true);
  expect(ins.some((i) => i.op === 'COPY' && i.args.includes('.npmrc'))).toBe(true);
  const final = finalStage(ins);
  const user = final.filter((i) => i.op === 'USER').at(-1);
  expect(user, 'a USER in the final stage').toBeDefined();
  expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
  // The database URL asks for verify-full against this bundle (cloud/infra/lib/container-env.ts).
  expect(final.some((i) => i.op === 'ADD' && i.args.includes('/etc/ssl/certs/rds-global-bundle.pem'))).toBe(true);
  expect(final.some((i) => i.op === 'ADD' && i.args.includes('--chmod=644'))).toBe(true);
}

describe('Dockerfiles', () => {
  it('API: Node 24 base, non-root, HEALTHCHECK on /healthz, runs the server', () => {
    const ins = parse('cloud/Dockerfile.api');
    const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args);
    expect(froms.every((f) => /^node:24[-.\w]*(\s|$)/.test(f))).toBe(true);
    checkCommon(ins);
    const final = finalStage(ins);
    const hc = final.find((i) => i.op === 'HEALTHCHECK');
    expect(hc?.args).toMatch(/CMD .*\/healthz/);
    expect(final.find((i) => i.op === 'CMD')?.args).toBe('["node", "cloud/src/server.ts"]');
    expect(final.some((i) => i.op === 'COPY' && i.args.includes('cloud/infra/queue-metrics'))).toBe(true);
  });

  it('worker: Node 24 on an NVIDIA CUDA runtime base with the CUDA provider installed, non-root', () => {
    const ins = parse('cloud/Dockerfile.worker');
    const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args);
    expect(froms[0]).toMatch(/^node:24[-.\w]*/);
    expect(froms.at(-1)).toMatch(/^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/);
    checkCommon(ins);
    expect(ins.some((i) => i.op === 'RUN' && i.args.includes('--onnxruntime-node-install-cuda=v12'))).toBe(true);
    const final = finalStage(ins);
    expect(final.some((i) => i.op === 'COPY' && /--from=node \/usr\/local\/bin\/node/.test(i.args))).toBe(true);
    expect(final.find((i) => i.op === 'CMD')?.args).toBe('["node", "cloud/src/worker/main.ts"]');
  });

  it('.dockerignore is an allow-list that keeps node_modules and local state out', () => {
    const lines = readFileSync(path.join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    expect(lines.filter((l) => l.startsWith('!')).some((l) => /node_modules|\.atelier|\.env/.test(l))).toBe(false);
    for (const need of ['!package-lock.json', '!.npmrc', '!cloud/src', '!common/src', '!native/src'])
      expect(lines).toContain(need);
  });
});

describe('GitHub workflows', () => {
  const read = (f: string) => readFileSync(path.join(root, '.github/workflows', f), 'utf8');

  it('ci.yml runs the project CI entry point on Node 24', () => {
    const ci = read('ci.yml');
    expect(ci).toMatch(/node-version: 24\b/);
    expect(ci).toMatch(/bash \.ci\/run/);
    expect(ci).toMatch(/workflow_call:/);
  });

  it('deploy.yml deploys tags through OIDC, never with stored keys', () => {
    const deploy = read('deploy.yml');
    expect(deploy).toMatch(/tags: \['v\*'\]/);
    expect(deploy).toMatch(/id-token: write/);
    expect(deploy).toMatch(/role-to-assume: \$\{\{ vars\.AWS_DEPLOY_ROLE_ARN \}\}/);
    expect(deploy).not.toMatch(/aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY/);
    expect(deploy).toMatch(/file: cloud\/Dockerfile\.\$\{\{ matrix\.image \}\}/);
    expect(deploy).toMatch(/aws-cdk@2 deploy/);
  });
});
