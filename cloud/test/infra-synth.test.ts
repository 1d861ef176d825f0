/**
 * The production CDK app, synthesised once and checked for the properties that matter for
 * security and operation. It proves the template, not AWS: `cdk deploy` is the real test.
 */
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { EnvSchema } from '../src/config.ts';
import { METRICS } from '../infra/queue-metrics/backlog.ts';
import { buildStacks } from '../infra/lib/build.ts';
import { DB_ADMIN_USER, REDIS_PORT, SECRET_NAMES } from '../infra/lib/container-env.ts';
import { FULL_SETTINGS } from './support/infra-settings.ts';
import { parseSettings, SettingsError } from '../infra/lib/settings.ts';

const BASE = FULL_SETTINGS;

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
let service: Template;
let registry: Template;
let resources: Record<string, Resource>;

beforeAll(() => {
  const app = new App();
  const stacks = buildStacks(app, parseSettings(BASE));
  service = Template.fromStack(stacks.service!);
  registry = Template.fromStack(stacks.registry);
  resources = service.toJSON().Resources as Record<string, Resource>;
});

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const refId = (v: unknown): string | undefined => {
  const o = v as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  return o?.Ref ?? o?.['Fn::GetAtt']?.[0];
};

interface Container {
  Name: string;
  Command?: string[];
  Essential?: boolean;
  Environment?: { Name: string; Value: unknown }[];
  Secrets?: { Name: string; ValueFrom: unknown }[];
  DependsOn?: { ContainerName: string; Condition: string }[];
  ResourceRequirements?: { Type: string; Value: string }[];
}
function containers(): Container[] {
  return ofType('AWS::ECS::TaskDefinition').flatMap(([, r]) => r.Properties.ContainerDefinitions as Container[]);
}
const container = (name: string) => containers().find((c) => c.Name === name)!;

/** Every S3 statement of the policies attached to the role a task definition runs as. */
function taskRoleStatements(family: string) {
  const [, task] = ofType('AWS::ECS::TaskDefinition').find(([, r]) => r.Properties.Family === family)!;
  const roleId = refId(task.Properties.TaskRoleArn)!;
  return ofType('AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles as unknown[]).some((r) => refId(r) === roleId))
    .flatMap(
      ([, p]) =>
        (p.Properties.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement,
    );
}

describe('infra: data stores', () => {
  it('RDS Postgres is encrypted, private, multi-AZ, backed up and protected', () => {
    service.hasResourceProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      StorageEncrypted: true,
      PubliclyAccessible: false,
      MultiAZ: true,
      DeletionProtection: true,
      BackupRetentionPeriod: Match.anyValue(),
    });
    const [, db] = ofType('AWS::RDS::DBInstance')[0]!;
    expect(Number(String(db.Properties.EngineVersion).split('.')[0])).toBeGreaterThanOrEqual(16);
    expect(db.Properties.BackupRetentionPeriod as number).toBeGreaterThanOrEqual(7);
    service.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: { 'rds.force_ssl': '1' } });
    // Only the API and the workers may reach it.
    const ingress = ofType('AWS::EC2::SecurityGroupIngress').filter(([, r]) => r.Properties.FromPort === 5432);
    expect(ingress).toHaveLength(2);
    expect(ingress.every(([, r]) => r.Properties.SourceSecurityGroupId && !r.Properties.CidrIp)).toBe(true);
  });

  it('the images bucket blocks public access, enforces TLS, aborts stale uploads and allows presigned PUT/GET', () => {
    service.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: Match.objectLike({ ServerSideEncryptionConfiguration: Match.anyValue() }),
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } })]),
      },
      CorsConfiguration: {
        CorsRules: [
          Match.objectLike({ AllowedMethods: Match.arrayWith(['GET', 'PUT']), AllowedOrigins: ['app://atelier'] }),
        ],
      },
    });
    service.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('Cognito: e-mail sign-in, self sign-up, verified e-mail, password ≥ 8 with upper/lower/digit; a public client', () => {
    service.hasResourceProperties('AWS::Cognito::UserPool', {
      UsernameAttributes: ['email'],
      AutoVerifiedAttributes: ['email'],
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: false },
      Policies: {
        PasswordPolicy: Match.objectLike({ RequireUppercase: true, RequireLowercase: true, RequireNumbers: true }),
      },
    });
    const [, pool] = ofType('AWS::Cognito::UserPool')[0]!;
    const policy = (pool.Properties.Policies as { PasswordPolicy: { MinimumLength: number } }).PasswordPolicy;
    expect(policy.MinimumLength).toBeGreaterThanOrEqual(8);
    service.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      GenerateSecret: false,
      ExplicitAuthFlows: Match.arrayWith([
        'ALLOW_USER_PASSWORD_AUTH',
        'ALLOW_USER_SRP_AUTH',
        'ALLOW_REFRESH_TOKEN_AUTH',
      ]),
    });
  });
});

describe('infra: API behind the ALB', () => {
  it('HTTPS listener with the certificate, HTTP redirects to HTTPS, WebSocket-friendly idle timeout, /readyz checks', () => {
    service.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: BASE.certificateArn }],
    });
    service.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [
        Match.objectLike({ Type: 'redirect', RedirectConfig: Match.objectLike({ Protocol: 'HTTPS', Port: '443' }) }),
      ],
    });
    const [, lb] = ofType('AWS::ElasticLoadBalancingV2::LoadBalancer')[0]!;
    const attrs = lb.Properties.LoadBalancerAttributes as { Key: string; Value: string }[];
    expect(Number(attrs.find((a) => a.Key === 'idle_timeout.timeout_seconds')?.Value)).toBeGreaterThanOrEqual(300);
    service.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckPath: '/readyz',
      Port: 8787,
    });
    // Deploys must not reset a scaled-out API to a fixed count.
    service.hasResourceProperties('AWS::ECS::Service', { LaunchType: 'FARGATE', DesiredCount: Match.absent() });
  });

  it('the API scales on CPU and on requests per target', () => {
    const types = ofType('AWS::ApplicationAutoScaling::ScalingPolicy').map(
      ([, p]) =>
        (
          p.Properties.TargetTrackingScalingPolicyConfiguration as
            { PredefinedMetricSpecification?: { PredefinedMetricType: string } } | undefined
        )?.PredefinedMetricSpecification?.PredefinedMetricType,
    );
    expect(types).toEqual(expect.arrayContaining(['ECSServiceAverageCPUUtilization', 'ALBRequestCountPerTarget']));
  });

  it('migrations run first: the API container waits for the migrate init container to succeed', () => {
    const migrate = container('migrate');
    expect(migrate.Essential).toBe(false);
    expect(migrate.Command).toEqual(['node', 'cloud/src/db/migrate-main.ts']);
    expect(container('api').DependsOn).toEqual([{ ContainerName: 'migrate', Condition: 'SUCCESS' }]);
    expect(container('api').Command).toEqual(['node', 'cloud/src/server.ts']);
  });
});

describe('infra: least privilege', () => {
  for (const family of ['atelier-prod-api', 'atelier-prod-worker']) {
    it(`${family}'s task role may only get/put/delete objects under users/*`, () => {
      let statements = taskRoleStatements(family);
      if (family === 'atelier-prod-api') {
        // Account deletion (decision 0130): list only under users/, delete users of this pool only.
        const list = statements.filter((s) => s.Action === 's3:ListBucket');
        expect(list).toHaveLength(1);
        expect(JSON.stringify(list[0])).toContain('"s3:prefix":["users/*"]');
        const cognito = statements.filter((s) => s.Action === 'cognito-idp:AdminDeleteUser');
        expect(cognito).toHaveLength(1);
        expect(JSON.stringify(cognito[0]!.Resource)).toContain('Users');
        statements = statements.filter((s) => !list.includes(s) && !cognito.includes(s));
      }
      const s3 = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('s3:')));
      expect(s3).toHaveLength(1);
      expect([s3[0]!.Action].flat().sort()).toEqual(['s3:DeleteObject', 's3:GetObject', 's3:PutObject']);
      expect(JSON.stringify(s3[0]!.Resource)).toMatch(/"\/users\/\*"\]\]\}$/);
      // Nothing else but the namespaced metric publication.
      const other = statements.filter((s) => !s3.includes(s)).flatMap((s) => [s.Action].flat());
      expect(other.every((a) => a === 'cloudwatch:PutMetricData')).toBe(true);
    });
  }

  it('the deploy role trusts only GitHub OIDC tokens of this repository’s tags', () => {
    registry.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Action: 'sts:AssumeRoleWithWebIdentity',
            Condition: {
              StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com' },
              StringLike: { 'token.actions.githubusercontent.com:sub': 'repo:atelier-dev/atelier:ref:refs/tags/v*' },
            },
          }),
        ],
      },
    });
    registry.resourceCountIs('AWS::IAM::User', 0);
    registry.allResourcesProperties('AWS::ECR::Repository', { ImageTagMutability: 'IMMUTABLE' });
  });
});

describe('infra: container configuration', () => {
  const known = new Set([...Object.keys(EnvSchema.shape), 'AWS_REGION']);
  const secretNames = new Set<string>(Object.values(SECRET_NAMES).flat());

  it('every variable passed to a container is one config.ts reads', () => {
    for (const c of containers()) {
      const names = [...(c.Environment ?? []), ...(c.Secrets ?? [])].map((e) => e.Name);
      expect(
        names.filter((n) => !known.has(n)),
        c.Name,
      ).toEqual([]);
    }
    expect(container('api').Environment!.map((e) => e.Name)).toEqual(
      expect.arrayContaining([
        'DATABASE_URL',
        'COGNITO_USER_POOL_ID',
        'COGNITO_CLIENT_ID',
        'S3_BUCKET',
        'PUBLIC_API_URL',
        'ATELIER_API_HOST',
      ]),
    );
    expect(container('worker').Environment!.map((e) => e.Name)).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'S3_BUCKET', 'ATELIER_MODELS_DIR', 'ATELIER_CLOUD_MODELS']),
    );
  });

  it('secrets come from Secrets Manager, never as plain values', () => {
    const secretArns = new Set(ofType('AWS::SecretsManager::Secret').map(([id]) => id));
    for (const c of containers()) {
      for (const e of c.Environment ?? []) {
        expect(secretNames.has(e.Name) && e.Name !== 'DATABASE_URL', `${c.Name}: ${e.Name} in plain env`).toBe(false);
        // A plain DATABASE_URL carries no password (postgres://user@host…).
        if (e.Name === 'DATABASE_URL')
          expect(JSON.stringify(e.Value)).toMatch(new RegExp(`postgres://${DB_ADMIN_USER}@`));
      }
      for (const s of c.Secrets ?? []) {
        const from = s.ValueFrom;
        const ok = typeof from === 'string' ? from.startsWith('arn:aws:secretsmanager:') : secretArns.has(refId(from)!);
        expect(ok, `${c.Name}: ${s.Name}`).toBe(true);
      }
    }
    const apiSecrets = container('api').Secrets!.map((s) => s.Name);
    expect(apiSecrets.sort()).toEqual([...SECRET_NAMES.api].sort());
    expect(container('api').Secrets!.find((s) => s.Name === 'STRIPE_SECRET_KEY')!.ValueFrom).toBe(
      `${BASE.stripeSecretArn}:STRIPE_SECRET_KEY::`,
    );
    expect(
      container('migrate')
        .Secrets!.map((s) => s.Name)
        .sort(),
    ).toEqual([...SECRET_NAMES.migrate].sort());
    // The migrator's URL is assembled by CloudFormation from a dynamic reference, not written into the template.
    const [, url] = ofType('AWS::SecretsManager::Secret').find(([id]) => id.startsWith('MigratorDatabaseUrl'))!;
    expect(JSON.stringify(url.Properties.SecretString)).toContain('{{resolve:secretsmanager:');
  });
});

describe('infra: GPU worker fleet', () => {
  it('runs on GPU instances in an ASG capacity provider, one GPU per task, from zero', () => {
    const [, lt] = ofType('AWS::EC2::LaunchTemplate')[0]!;
    const data = lt.Properties.LaunchTemplateData as { InstanceType: string; MetadataOptions: { HttpTokens: string } };
    expect(data.InstanceType).toMatch(/^(g|p)\d[a-z0-9]*\./);
    expect(data.MetadataOptions.HttpTokens).toBe('required');
    const userData = JSON.stringify(lt.Properties.LaunchTemplateData);
    expect(userData).toContain('ECS_AWSVPC_BLOCK_IMDS=true');
    expect(userData).toContain('s3://atelier-models-bucket/models/');
    service.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '0' });
    service.hasResourceProperties('AWS::ECS::CapacityProvider', {
      AutoScalingGroupProvider: Match.objectLike({ ManagedScaling: Match.objectLike({ Status: 'ENABLED' }) }),
    });
    service.hasResourceProperties('AWS::ECS::Service', {
      CapacityProviderStrategy: [Match.objectLike({ Weight: 1 })],
      DesiredCount: 0,
    });
    expect(container('worker').ResourceRequirements).toEqual([{ Type: 'GPU', Value: '1' }]);
  });

  it('the worker count follows the published queue backlog, down to zero', () => {
    service.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 0,
      ScalableDimension: 'ecs:service:DesiredCount',
      MaxCapacity: 4,
    });
    const policies = ofType('AWS::ApplicationAutoScaling::ScalingPolicy').filter(
      ([, p]) => p.Properties.PolicyType === 'StepScaling',
    );
    const adjustments = policies.flatMap(
      ([, p]) =>
        p.Properties.StepScalingPolicyConfiguration as {
          AdjustmentType: string;
          StepAdjustments: { ScalingAdjustment: number }[];
        },
    );
    expect(adjustments.every((c) => c.AdjustmentType === 'ExactCapacity')).toBe(true);
    expect(adjustments.flatMap((c) => c.StepAdjustments.map((s) => s.ScalingAdjustment)).sort()).toEqual([
      0, 1, 2, 3, 4,
    ]);
    service.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: METRICS.demand,
      Namespace: 'Atelier',
      Threshold: 1,
    });
    service.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: METRICS.demand,
      Namespace: 'Atelier',
      Threshold: 0,
    });
    // The publisher is a sidecar of the always-on API task.
    expect(container('queue-metrics').Command!.slice(0, 2)).toEqual(['node', 'cloud/infra/queue-metrics/main.ts']);
  });
});

describe('infra: logs and alarms', () => {
  it('log groups have retention; every operational alarm notifies the SNS topic', () => {
    for (const [, g] of ofType('AWS::Logs::LogGroup')) expect(g.Properties.RetentionInDays).toBe(30);
    const [topicId] = ofType('AWS::SNS::Topic')[0]!;
    const operational = ofType('AWS::CloudWatch::Alarm').filter(
      ([, a]) => !String(a.Properties.AlarmDescription).includes('scaling alarm'),
    );
    const described = operational.map(([, a]) => String(a.Properties.AlarmDescription));
    for (const what of ['5xx', 'p99', 'waited', 'RDS CPU', 'free storage', 'errors'])
      expect(
        described.some((d) => d.includes(what)),
        what,
      ).toBe(true);
    for (const [, a] of operational) expect((a.Properties.AlarmActions as unknown[]).map(refId)).toEqual([topicId]);
    service.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@atelier.example' });
  });
});

describe('infra: settings', () => {
  it('a bad value fails at synth naming the key; without the service keys only the registry is built', () => {
    const { certificateArn: _c, imageTag: _t, ...registryOnly } = BASE;
    const partial = buildStacks(new App(), parseSettings(registryOnly));
    expect(partial.service).toBeUndefined();
    expect(partial.skipped).toEqual(['certificateArn', 'imageTag']);
    expect(() => parseSettings({ ...BASE, certificateArn: 'arn:aws:iam::1:role/x' })).toThrow(/certificateArn/);
    expect(() => parseSettings({ ...BASE, workerInstanceType: 'm7i.large' })).toThrow(
      /workerInstanceType: a GPU instance type/,
    );
    expect(() => parseSettings({ ...BASE, stripePricePro: undefined })).toThrow(SettingsError);
    expect(parseSettings({ ...BASE, dbMultiAz: 'false' }).dbMultiAz).toBe(false);
  });
});

// The limits Redis (issue 14, API): private, encrypted, authenticated, only the API reaches it.
describe('infra: the limits Redis', () => {
  it('is a multi-AZ replication group, encrypted at rest and in transit, with an AUTH token, on a non-default port', () => {
    service.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 1);
    service.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      Engine: 'redis',
      AtRestEncryptionEnabled: true,
      TransitEncryptionEnabled: true,
      MultiAZEnabled: true,
      AutomaticFailoverEnabled: true,
      Port: REDIS_PORT,
      AuthToken: Match.anyValue(),
    });
    // The token is a dynamic reference to Secrets Manager, never a literal in the template.
    const [, group] = ofType('AWS::ElastiCache::ReplicationGroup')[0]!;
    expect(JSON.stringify(group.Properties.AuthToken)).toContain('resolve:secretsmanager');
  });

  it('admits only the API tasks, on its port', () => {
    const [sgId] = ofType('AWS::EC2::SecurityGroup').find(([, r]) =>
      String(r.Properties.GroupDescription).startsWith('Redis'),
    )!;
    const ingress = ofType('AWS::EC2::SecurityGroupIngress').filter(([, r]) =>
      JSON.stringify(r.Properties.GroupId).includes(sgId),
    );
    expect(ingress.length).toBe(1);
    expect(ingress[0]![1].Properties).toMatchObject({ FromPort: REDIS_PORT, ToPort: REDIS_PORT, IpProtocol: 'tcp' });
    expect(JSON.stringify(ingress[0]![1].Properties.SourceSecurityGroupId)).toContain('ApiSg');
  });

  it('reaches the API container as the REDIS_URL secret (rediss://, never a plain environment value)', () => {
    const api = container('api');
    expect(api.Secrets?.map((x) => x.Name)).toContain('REDIS_URL');
    expect(api.Environment?.map((x) => x.Name)).not.toContain('REDIS_URL');
    const url = ofType('AWS::SecretsManager::Secret').find(([, r]) =>
      String(r.Properties.Description).startsWith('REDIS_URL'),
    )!;
    expect(JSON.stringify(url[1].Properties.SecretString)).toContain('rediss://:');
  });
});
