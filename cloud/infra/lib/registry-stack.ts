/**
 * What must exist before the first image push: the two ECR repositories and the role GitHub
 * Actions assumes through OIDC (no long-lived keys anywhere). Deployed once by an operator with
 * administrator credentials; every later deploy runs from the tag workflow under this role.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { Repository, TagMutability } from 'aws-cdk-lib/aws-ecr';
import { FederatedPrincipal, OpenIdConnectProvider, PolicyStatement, Role } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { acknowledge } from './nag.ts';
import type { Settings } from './settings.ts';

export const GITHUB_OIDC_HOST = 'token.actions.githubusercontent.com';

export class RegistryStack extends Stack {
  readonly apiRepository: Repository;
  readonly workerRepository: Repository;

  constructor(scope: Construct, id: string, settings: Settings, props: StackProps = {}) {
    super(scope, id, props);
    const repo = (name: string) =>
      new Repository(this, `${name}Repository`, {
        repositoryName: `atelier-${settings.envName}-${name.toLowerCase()}`,
        imageScanOnPush: true,
        // A tag names one build forever, so a rollback to `v1.2.3` deploys exactly what was tested.
        imageTagMutability: TagMutability.IMMUTABLE,
        lifecycleRules: [{ description: 'keep the last 50 images', maxImageCount: 50 }],
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.apiRepository = repo('Api');
    this.workerRepository = repo('Worker');
    new CfnOutput(this, 'ApiRepositoryUri', { value: this.apiRepository.repositoryUri });
    new CfnOutput(this, 'WorkerRepositoryUri', { value: this.workerRepository.repositoryUri });

    if (!settings.githubRepo) return;
    const providerArn =
      settings.githubOidcProviderArn ??
      new OpenIdConnectProvider(this, 'GithubOidc', {
        url: `https://${GITHUB_OIDC_HOST}`,
        clientIds: ['sts.amazonaws.com'],
      }).openIdConnectProviderArn;
    const role = new Role(this, 'DeployRole', {
      roleName: `atelier-${settings.envName}-github-deploy`,
      description: 'Assumed by the GitHub tag workflow (deploy.yml) through OIDC',
      maxSessionDuration: Duration.hours(2),
      assumedBy: new FederatedPrincipal(
        providerArn,
        {
          StringEquals: { [`${GITHUB_OIDC_HOST}:aud`]: 'sts.amazonaws.com' },
          // Only tag pushes of this repository (deploy.yml runs on `v*` tags), never a branch or a fork's PR.
          StringLike: { [`${GITHUB_OIDC_HOST}:sub`]: `repo:${settings.githubRepo}:ref:refs/tags/v*` },
        },
        'sts:AssumeRoleWithWebIdentity',
      ),
    });
    this.apiRepository.grantPullPush(role);
    this.workerRepository.grantPullPush(role);
    // `cdk deploy` works through the bootstrap roles (which hold the CloudFormation rights), not this one.
    role.addToPolicy(
      new PolicyStatement({
        actions: ['sts:AssumeRole'],
        resources: [`arn:${this.partition}:iam::${this.account}:role/cdk-*-${this.account}-${this.region}`],
      }),
    );
    // The workflow waits for the services to settle and reads the stack's outputs.
    role.addToPolicy(
      new PolicyStatement({
        actions: ['cloudformation:DescribeStacks', 'ecs:DescribeServices'],
        resources: ['*'],
      }),
    );
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      'ecr:GetAuthorizationToken, cloudformation:DescribeStacks and ecs:DescribeServices: read-only or token actions the workflow needs across the account.',
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::${this.account}:role/cdk-*-${this.account}-${this.region}]`,
      'The CDK bootstrap roles of this account and region (deploy, file and image publishing, lookup): their names carry the bootstrap qualifier, chosen at bootstrap time.',
    );
    new CfnOutput(this, 'DeployRoleArn', { value: role.roleArn });
  }
}
