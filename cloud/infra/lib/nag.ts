/**
 * cdk-nag (AwsSolutions pack) runs on every synth (app.ts) and in the infra tests
 * (cloud/test/infra-nag.test.ts). A finding is either fixed in the stack or acknowledged here, next to
 * its construct, with the reason it is accepted. Acknowledgements are per finding (one rule, one
 * construct, and for IAM5/IAM4 one action, resource or policy), never per stack, so a new finding
 * of an acknowledged rule elsewhere still fails.
 */
import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** The prefix cdk-nag gives its rule ids in CDK's validation report. */
const PACK = 'AwsSolutions';

/** Runs the AwsSolutions pack on every stack of `app`: synth fails on an unacknowledged finding. */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/** Accepts one finding (`rule` as cdk-nag names it, e.g. `AwsSolutions-IAM5[Resource::*]`) on `scope`. */
export function acknowledge(scope: IConstruct, rule: string, reason: string): void {
  if (reason.trim().length < 20) throw new Error(`acknowledging ${rule} needs a written reason`);
  Validations.of(scope).acknowledge({ id: `${PACK}::${rule}`, reason });
}

/** Every acknowledgement recorded under `scope` (for the test that each carries a reason). */
export function acknowledgementsUnder(scope: IConstruct): { path: string; id: string; reason: string }[] {
  return scope.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      // CDK records each acknowledgement as `{ [id]: reason }`.
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ path: c.node.path, id, reason })),
      ),
  );
}
