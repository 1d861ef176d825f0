/**
 * Atelier Cloud in one AWS account and region (ARCHITECTURE §3 "Production"): network, Postgres,
 * the image bucket, Cognito, the API on Fargate behind an ALB, the GPU worker fleet on ECS/EC2
 * scaled on the queue backlog, secrets, logs and alarms. Images come from the RegistryStack's
 * repositories at `settings.imageTag`.
 */
import { CfnOutput, Duration, RemovalPolicy, SecretValue, Stack, type StackProps } from 'aws-cdk-lib';
import { AdjustmentType } from 'aws-cdk-lib/aws-applicationautoscaling';
import { AutoScalingGroup } from 'aws-cdk-lib/aws-autoscaling';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Metric,
  TreatMissingData,
  type IAlarmAction,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AccountRecovery, UserPool, UserPoolClient, VerificationEmailStyle } from 'aws-cdk-lib/aws-cognito';
import { CfnReplicationGroup, CfnSubnetGroup } from 'aws-cdk-lib/aws-elasticache';
import {
  BlockDeviceVolume,
  EbsDeviceVolumeType,
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InstanceType,
  LaunchTemplate,
  Port,
  SecurityGroup,
  SubnetType,
  UserData,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import type { IRepository } from 'aws-cdk-lib/aws-ecr';
import {
  AmiHardwareType,
  AsgCapacityProvider,
  AwsLogDriver,
  Cluster,
  ContainerDependencyCondition,
  ContainerImage,
  ContainerInsights,
  CpuArchitecture,
  Ec2Service,
  Ec2TaskDefinition,
  EcsOptimizedImage,
  FargateService,
  FargateTaskDefinition,
  NetworkMode,
  OperatingSystemFamily,
  Secret as EcsSecret,
} from 'aws-cdk-lib/aws-ecs';
import {
  ApplicationLoadBalancer,
  ApplicationProtocol,
  HttpCodeElb,
  HttpCodeTarget,
  ListenerAction,
  SslPolicy,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { FilterPattern, LogGroup, MetricFilter, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  Credentials,
  DatabaseInstance,
  DatabaseInstanceEngine,
  ParameterGroup,
  PostgresEngineVersion,
  StorageType,
} from 'aws-cdk-lib/aws-rds';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  HttpMethods,
  ObjectOwnership,
  type CfnBucket,
} from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { METRIC_NAMESPACE, METRICS } from '../queue-metrics/backlog.ts';
import {
  API_PORT,
  REDIS_PORT,
  apiEnvironment,
  CONTAINER_MODELS_DIR,
  DB_ADMIN_USER,
  DB_NAME,
  DB_TLS_PARAMS,
  migrateEnvironment,
  queueMetricsEnvironment,
  workerEnvironment,
  type Endpoints,
} from './container-env.ts';
import { acknowledge } from './nag.ts';
import type { ServiceSettings } from './settings.ts';
import { DEFAULT_WORKER_SCALING, scalingSteps, type WorkerScalingPolicy } from './worker-scaling.ts';

/** Where a GPU host keeps the model folders it copied from S3 at boot. */
export const HOST_MODELS_DIR = '/opt/atelier/models';
/** Everything the object store writes lives under this prefix (cloud/src/storage/keys.ts). */
export const USER_OBJECTS_PREFIX = 'users/';
/** Generated passwords stay URL-safe: they travel inside postgres:// URLs. */
const URL_UNSAFE_CHARS = ' %+~`#$&*()|[]{}:;<>?!\'/@"\\=,.^-_';

export interface AtelierStackProps extends StackProps {
  apiRepository: IRepository;
  workerRepository: IRepository;
}

export class AtelierStack extends Stack {
  constructor(scope: Construct, id: string, s: ServiceSettings, props: AtelierStackProps) {
    super(scope, id, props);
    const name = (suffix: string) => `atelier-${s.envName}-${suffix}`;
    const retention = s.logRetentionDays as RetentionDays;

    // ── Network: public subnets for the ALB and NAT, private ones for tasks and GPU hosts, isolated ones for RDS.
    const vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: s.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: 'data', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      // Image bytes and ECR layers reach S3 without paying NAT traffic. NAT stays for Stripe, Cognito's JWKS, ECR's API and logs.
      gatewayEndpoints: { s3: { service: GatewayVpcEndpointAwsService.S3 } },
    });
    // Rejected connections only: enough to investigate a blocked or probing peer, without paying for every accepted flow.
    vpc.addFlowLog('FlowLog', {
      destination: FlowLogDestination.toCloudWatchLogs(
        new LogGroup(this, 'FlowLogs', {
          logGroupName: `/atelier/${s.envName}/vpc-flow`,
          retention,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
      ),
      trafficType: FlowLogTrafficType.REJECT,
    });

    // ── Alarms go to one topic.
    const alarms = new Topic(this, 'Alarms', { topicName: name('alarms'), enforceSSL: true });
    if (s.alarmEmail) alarms.addSubscription(new EmailSubscription(s.alarmEmail));
    const notify: IAlarmAction = new SnsAction(alarms);

    // ── Postgres: encrypted, private, backed up; the administrator's password is generated into Secrets Manager.
    const dbSecurityGroup = new SecurityGroup(this, 'DbSg', {
      vpc,
      description: 'Postgres: only the API and workers',
      allowAllOutbound: false,
    });
    const db = new DatabaseInstance(this, 'Db', {
      engine: DatabaseInstanceEngine.postgres({ version: PostgresEngineVersion.VER_17 }),
      instanceType: new InstanceType(s.dbInstanceType),
      vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
      securityGroups: [dbSecurityGroup],
      publiclyAccessible: false,
      multiAz: s.dbMultiAz,
      databaseName: DB_NAME,
      credentials: Credentials.fromGeneratedSecret(DB_ADMIN_USER, {
        secretName: name('db-admin'),
        excludeCharacters: URL_UNSAFE_CHARS,
      }),
      storageEncrypted: true,
      storageType: StorageType.GP3,
      allocatedStorage: s.dbStorageGiB,
      maxAllocatedStorage: s.dbStorageGiB * 4,
      backupRetention: Duration.days(s.dbBackupDays),
      deleteAutomatedBackups: false,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.SNAPSHOT,
      autoMinorVersionUpgrade: true,
      cloudwatchLogsExports: ['postgresql'],
      cloudwatchLogsRetention: retention,
      enablePerformanceInsights: true,
      parameterGroup: new ParameterGroup(this, 'DbParams', {
        engine: DatabaseInstanceEngine.postgres({ version: PostgresEngineVersion.VER_17 }),
        parameters: { 'rds.force_ssl': '1', log_min_duration_statement: '1000' },
      }),
    });
    const adminSecret = db.secret!;
    acknowledge(
      db,
      'AwsSolutions-RDS11',
      'Port 5432 is kept: the instance sits in isolated subnets and its security group admits only the API and worker groups; a non-default port adds no protection.',
    );
    acknowledge(
      // db.secret is the attachment; the secret itself is the instance's child.
      db.node.findChild('Secret'),
      'AwsSolutions-SMG4',
      'The administrator password is rotated by hand (docs/OPERATIONS.md, "Secret rotation"): the migrator URL is assembled from it at deploy, so rotation is a stack update, not a Lambda.',
    );
    // ── Redis (ElastiCache): the request limits every API replica counts in together (REDIS_URL,
    // docs/decisions/0101). Encrypted at rest and in transit, AUTH token from Secrets Manager,
    // a replica in a second AZ, reachable only from the API tasks.
    const redisSecurityGroup = new SecurityGroup(this, 'RedisSg', {
      vpc,
      description: 'Redis (limits): only the API',
      allowAllOutbound: false,
    });
    const redisSubnets = new CfnSubnetGroup(this, 'RedisSubnets', {
      description: 'Isolated subnets of the limits Redis',
      subnetIds: vpc.selectSubnets({ subnetType: SubnetType.PRIVATE_ISOLATED }).subnetIds,
    });
    const redisToken = new Secret(this, 'RedisAuthToken', {
      secretName: name('redis-auth-token'),
      description: 'AUTH token of the limits Redis',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    const redis = new CfnReplicationGroup(this, 'Redis', {
      replicationGroupDescription: 'Atelier API request limits shared by every replica',
      engine: 'redis',
      engineVersion: '7.1',
      cacheNodeType: 'cache.t4g.micro',
      numCacheClusters: 2,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      cacheSubnetGroupName: redisSubnets.ref,
      securityGroupIds: [redisSecurityGroup.securityGroupId],
      port: REDIS_PORT,
      atRestEncryptionEnabled: true,
      transitEncryptionEnabled: true,
      authToken: redisToken.secretValue.unsafeUnwrap(),
      autoMinorVersionUpgrade: true,
    });
    redis.addDependency(redisSubnets);
    // REDIS_URL for the API, assembled by CloudFormation from the token (a dynamic reference).
    const redisUrl = new Secret(this, 'RedisUrl', {
      secretName: name('redis-url'),
      description: 'REDIS_URL of the API (TLS, with the AUTH token)',
      secretStringValue: SecretValue.unsafePlainText(
        `rediss://:${redisToken.secretValue.unsafeUnwrap()}@${redis.attrPrimaryEndPointAddress}:${redis.attrPrimaryEndPointPort}`,
      ),
    });
    acknowledge(
      redisToken,
      'AwsSolutions-SMG4',
      'Rotated by hand (docs/OPERATIONS.md, "Secret rotation"): ElastiCache takes a new AUTH token through a stack update (ROTATE then SET), which also re-assembles REDIS_URL; it guards rate-limit counters only.',
    );
    acknowledge(
      redisUrl,
      'AwsSolutions-SMG4',
      'Derived from the Redis AUTH token at deploy time; it changes whenever that one is rotated and the stack is updated.',
    );

    // The migrator's DATABASE_URL, assembled by CloudFormation from the generated password (a dynamic
    // reference, never in the template). A password change needs a stack update to re-assemble it.
    const migratorUrl = new Secret(this, 'MigratorDatabaseUrl', {
      secretName: name('db-migrator-url'),
      description: 'DATABASE_URL of the migrator (RDS administrator); used only by the migrate init container',
      secretStringValue: SecretValue.unsafePlainText(
        `postgres://${DB_ADMIN_USER}:${adminSecret.secretValueFromJson('password').unsafeUnwrap()}@${db.dbInstanceEndpointAddress}:${db.dbInstanceEndpointPort}/${DB_NAME}?${DB_TLS_PARAMS}`,
      ),
    });
    // atelier_app and atelier_system log in with this; the migrator sets it on both roles.
    const rolePassword = new Secret(this, 'DbRolePassword', {
      secretName: name('db-role-password'),
      description: 'ATELIER_DB_ROLE_PASSWORD: password of the runtime roles atelier_app and atelier_system',
      generateSecretString: { passwordLength: 40, excludeCharacters: URL_UNSAFE_CHARS },
    });
    // Webhooks (issue 16): the key that seals endpoint signing secrets at rest, read by the API (seals)
    // and the workers (open, to sign deliveries). 43 alphanumerics are valid base64 for 32 bytes
    // (~256 bits), which is what WEBHOOKS_SECRET_KEY must decode to.
    const webhooksKey = new Secret(this, 'WebhooksSecretKey', {
      secretName: name('webhooks-secret-key'),
      description: 'WEBHOOKS_SECRET_KEY: AES-256-GCM key sealing webhook signing secrets in the database',
      generateSecretString: { passwordLength: 43, excludePunctuation: true, includeSpace: false },
    });
    acknowledge(
      webhooksKey,
      'AwsSolutions-SMG4',
      'Rotated by hand with WEBHOOKS_SECRET_KEY_PREVIOUS (docs/OPERATIONS.md, "Secret rotation"): sealed secrets are re-sealed under the new key on their next delivery.',
    );
    const webhooksKeySecret = EcsSecret.fromSecretsManager(webhooksKey);
    acknowledge(
      migratorUrl,
      'AwsSolutions-SMG4',
      'Derived from the administrator secret at deploy time; it changes whenever that one is rotated and the stack is updated.',
    );
    acknowledge(
      rolePassword,
      'AwsSolutions-SMG4',
      'The migrator sets this password on atelier_app/atelier_system at each deploy; rotation is a new value plus a redeploy (docs/OPERATIONS.md, "Secret rotation").',
    );

    // ── Access logs of the images bucket and the ALB: private, kept 90 days (who fetched or wrote what, when).
    const accessLogs = new Bucket(this, 'AccessLogs', {
      bucketName: name(`access-logs-${this.account}`),
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      // ALB access logs support SSE-S3 only.
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      versioned: false,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ id: 'expire', expiration: Duration.days(90) }],
    });

    // ── Images bucket: private, TLS only, no versions (a deleted image must really go), CORS for presigned URLs.
    const bucket = new Bucket(this, 'Images', {
      bucketName: name(`images-${this.account}`),
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: false,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'images/',
      lifecycleRules: [{ id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      cors: [
        {
          allowedMethods: [HttpMethods.GET, HttpMethods.PUT, HttpMethods.HEAD],
          allowedOrigins: s.corsOrigins
            .split(',')
            .map((o) => o.trim())
            .filter(Boolean),
          allowedHeaders: ['content-type', 'content-length', 'content-md5', 'x-amz-*'],
          exposedHeaders: ['ETag'],
          maxAge: 3600,
        },
      ],
    });

    // ── Cognito: e-mail sign-in, self sign-up with e-mail verification; a public client for the desktop.
    const userPool = new UserPool(this, 'Users', {
      userPoolName: name('users'),
      signInAliases: { email: true },
      signInCaseSensitive: false,
      selfSignUpEnabled: true,
      autoVerify: { email: true },
      // A changed e-mail takes effect only once its code is confirmed; until then the verified one stays.
      keepOriginal: { email: true },
      userVerification: { emailStyle: VerificationEmailStyle.CODE, emailSubject: 'Your Atelier verification code' },
      standardAttributes: { email: { required: true, mutable: true } },
      passwordPolicy: {
        minLength: 8,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: false,
        tempPasswordValidity: Duration.days(3),
      },
      accountRecovery: AccountRecovery.EMAIL_ONLY,
      removalPolicy: RemovalPolicy.RETAIN,
      deletionProtection: true,
    });
    acknowledge(
      userPool,
      'AwsSolutions-COG1',
      'Symbols are not required: length plus mixed case and digits; NIST SP 800-63B advises against further composition rules.',
    );
    acknowledge(
      userPool,
      'AwsSolutions-COG2',
      'MFA is not enforced: the desktop signs in with USER_PASSWORD_AUTH and has no TOTP enrolment screen; enforcing MFA would lock every user out.',
    );
    acknowledge(
      userPool,
      'AwsSolutions-COG8',
      'The Essentials feature plan is used; Plus (threat protection) is a per-user cost to revisit with paying volume. Sign-in abuse is limited by Cognito quotas and the API rate limits.',
    );
    const desktopClient = new UserPoolClient(this, 'DesktopClient', {
      userPool,
      userPoolClientName: 'atelier-desktop',
      generateSecret: false,
      authFlows: { userPassword: true, userSrp: true },
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(30),
    });

    const endpoints: Endpoints = {
      region: this.region,
      dbHost: db.dbInstanceEndpointAddress,
      dbPort: db.dbInstanceEndpointPort,
      bucketName: bucket.bucketName,
      userPoolId: userPool.userPoolId,
      userPoolClientId: desktopClient.userPoolClientId,
    };
    const objectAccess = new PolicyStatement({
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resources: [bucket.arnForObjects(`${USER_OBJECTS_PREFIX}*`)],
    });
    const rolePasswordSecret = EcsSecret.fromSecretsManager(rolePassword);
    // The GPU fleet's scaling policy (worker-scaling.ts, shared with the sidecar and `npm run sim:autoscale`).
    const workerPolicy: WorkerScalingPolicy = {
      ...DEFAULT_WORKER_SCALING,
      backlogPerTask: s.workerBacklogPerTask,
      minTasks: s.workerMinTasks,
      maxTasks: s.workerMaxInstances,
    };

    const cluster = new Cluster(this, 'Cluster', {
      vpc,
      clusterName: name('cluster'),
      containerInsightsV2: ContainerInsights.ENABLED,
    });

    // ── API on Fargate: the migrator runs first as an init container (advisory-locked, a no-op when current).
    const apiLogs = new LogGroup(this, 'ApiLogs', {
      logGroupName: `/atelier/${s.envName}/api`,
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const apiTaskRole = new Role(this, 'ApiTaskRole', {
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Atelier API task: objects under users/* and the queue backlog metric',
    });
    apiTaskRole.addToPolicy(objectAccess);
    // Account deletion runs in the API (decision 0130): list a user's prefix, delete the Cognito user.
    apiTaskRole.addToPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${USER_OBJECTS_PREFIX}*`] } },
      }),
    );
    apiTaskRole.addToPolicy(
      new PolicyStatement({ actions: ['cognito-idp:AdminDeleteUser'], resources: [userPool.userPoolArn] }),
    );
    apiTaskRole.addToPolicy(
      new PolicyStatement({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': METRIC_NAMESPACE } },
      }),
    );
    acknowledge(
      apiTaskRole,
      'AwsSolutions-IAM5[Resource::*]',
      'cloudwatch:PutMetricData has no resource-level permissions; the statement is limited to the Atelier namespace by condition.',
    );
    acknowledge(
      apiTaskRole,
      `AwsSolutions-IAM5[Resource::<${this.getLogicalId(bucket.node.defaultChild as CfnBucket)}.Arn>/users/*]`,
      'Objects under users/* of the images bucket only: keys are built per user by the server (ARCHITECTURE §3 Storage); one role serves every user.',
    );
    const apiTask = new FargateTaskDefinition(this, 'ApiTask', {
      family: name('api'),
      cpu: 1024,
      memoryLimitMiB: 2048,
      taskRole: apiTaskRole,
      runtimePlatform: { cpuArchitecture: CpuArchitecture.X86_64, operatingSystemFamily: OperatingSystemFamily.LINUX },
    });
    acknowledge(
      apiTask,
      'AwsSolutions-ECS2',
      'The environment holds only non-secret settings (hosts, ids, flags); passwords and Stripe keys come from Secrets Manager as ECS secrets.',
    );
    const apiImage = ContainerImage.fromEcrRepository(props.apiRepository, s.imageTag);
    const logs = (group: LogGroup, prefix: string) => new AwsLogDriver({ logGroup: group, streamPrefix: prefix });
    const migrate = apiTask.addContainer('migrate', {
      image: apiImage,
      essential: false,
      command: ['node', 'cloud/src/db/migrate-main.ts'],
      environment: migrateEnvironment(s, endpoints),
      secrets: {
        DATABASE_URL: EcsSecret.fromSecretsManager(migratorUrl),
        ATELIER_DB_ROLE_PASSWORD: rolePasswordSecret,
      },
      logging: logs(apiLogs, 'migrate'),
    });
    const stripe = s.stripeSecretArn ? Secret.fromSecretCompleteArn(this, 'Stripe', s.stripeSecretArn) : undefined;
    const api = apiTask.addContainer('api', {
      image: apiImage,
      essential: true,
      command: ['node', 'cloud/src/server.ts'],
      environment: apiEnvironment(s, endpoints),
      secrets: {
        ATELIER_DB_ROLE_PASSWORD: rolePasswordSecret,
        REDIS_URL: EcsSecret.fromSecretsManager(redisUrl),
        WEBHOOKS_SECRET_KEY: webhooksKeySecret,
        ...(stripe
          ? {
              STRIPE_SECRET_KEY: EcsSecret.fromSecretsManager(stripe, 'STRIPE_SECRET_KEY'),
              STRIPE_WEBHOOK_SECRET: EcsSecret.fromSecretsManager(stripe, 'STRIPE_WEBHOOK_SECRET'),
            }
          : {}),
      },
      portMappings: [{ containerPort: API_PORT }],
      healthCheck: {
        command: [
          'CMD',
          'node',
          '-e',
          `fetch('http://127.0.0.1:${API_PORT}/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
        ],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
      stopTimeout: Duration.seconds(30),
      logging: logs(apiLogs, 'api'),
    });
    api.addContainerDependencies({ container: migrate, condition: ContainerDependencyCondition.SUCCESS });
    apiTask.addContainer('queue-metrics', {
      image: apiImage,
      essential: false,
      enableRestartPolicy: true,
      command: [
        'node',
        'cloud/infra/queue-metrics/main.ts',
        '--environment',
        s.envName,
        '--region',
        this.region,
        '--interval',
        String(workerPolicy.periodSeconds),
        '--policy',
        JSON.stringify(workerPolicy),
      ],
      environment: queueMetricsEnvironment(s, endpoints),
      secrets: { ATELIER_DB_ROLE_PASSWORD: rolePasswordSecret },
      logging: logs(apiLogs, 'queue-metrics'),
    });

    const albSecurityGroup = new SecurityGroup(this, 'AlbSg', { vpc, description: 'Public ALB' });
    acknowledge(
      albSecurityGroup,
      'AwsSolutions-EC23',
      'The public API: desktops connect from anywhere on 443 (80 only redirects to 443).',
    );
    const apiSecurityGroup = new SecurityGroup(this, 'ApiSg', { vpc, description: 'API tasks' });
    const alb = new ApplicationLoadBalancer(this, 'Alb', {
      vpc,
      internetFacing: true,
      securityGroup: albSecurityGroup,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      // /v1/events sockets stay open for long stretches between messages.
      idleTimeout: Duration.seconds(3600),
      dropInvalidHeaderFields: true,
    });
    alb.logAccessLogs(accessLogs, 'alb');
    const https = alb.addListener('Https', {
      port: 443,
      protocol: ApplicationProtocol.HTTPS,
      certificates: [Certificate.fromCertificateArn(this, 'Certificate', s.certificateArn)],
      sslPolicy: SslPolicy.RECOMMENDED_TLS,
      open: true,
    });
    alb.addListener('Http', {
      port: 80,
      protocol: ApplicationProtocol.HTTP,
      open: true,
      defaultAction: ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
    });
    const apiService = new FargateService(this, 'ApiService', {
      cluster,
      serviceName: name('api'),
      taskDefinition: apiTask,
      // No desiredCount: a deploy would reset a scaled-out API to it. ECS starts new services at 1
      // and auto scaling lifts that to apiMinTasks; updates keep whatever count scaling has set.
      securityGroups: [apiSecurityGroup],
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      assignPublicIp: false,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: Duration.seconds(90),
    });
    const targets = https.addTargets('Api', {
      port: API_PORT,
      protocol: ApplicationProtocol.HTTP,
      targets: [apiService.loadBalancerTarget({ containerName: 'api', containerPort: API_PORT })],
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        path: '/readyz',
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    });
    const apiScaling = apiService.autoScaleTaskCount({ minCapacity: s.apiMinTasks, maxCapacity: s.apiMaxTasks });
    apiScaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60 });
    apiScaling.scaleOnRequestCount('Requests', { requestsPerTarget: 1000, targetGroup: targets });

    // ── GPU workers: ECS on EC2 GPU instances in an ASG capacity provider; tasks scale on the queue backlog, hosts follow.
    const workerLogs = new LogGroup(this, 'WorkerLogs', {
      logGroupName: `/atelier/${s.envName}/worker`,
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const hostRole = new Role(this, 'WorkerHostRole', {
      assumedBy: new ServicePrincipal('ec2.amazonaws.com'),
      managedPolicies: [
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonEC2ContainerServiceforEC2Role'),
        ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'),
      ],
    });
    acknowledge(
      hostRole,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]',
      'The managed policy ECS documents for container instances (register, poll, submit state); AWS keeps it in step with the agent.',
    );
    acknowledge(
      hostRole,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      'Session Manager access to GPU hosts instead of SSH keys and an open port 22.',
    );
    const userData = UserData.forLinux();
    userData.addCommands(
      // awsvpc tasks get their own ENI, where the hop limit alone does not keep them from the host role.
      'echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config',
      `mkdir -p ${HOST_MODELS_DIR}`,
    );
    if (s.modelsBucket) {
      const prefix = s.modelsPrefix.replace(/^\/+/, '');
      hostRole.addToPolicy(
        new PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [`arn:${this.partition}:s3:::${s.modelsBucket}/${prefix}*`],
        }),
      );
      hostRole.addToPolicy(
        new PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [`arn:${this.partition}:s3:::${s.modelsBucket}`],
          conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } },
        }),
      );
      acknowledge(
        hostRole,
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${s.modelsBucket}/${prefix}*]`,
        'Hosts read every model folder under the configured models prefix at boot; model file names are not known to the stack.',
      );
      userData.addCommands(
        'command -v aws >/dev/null || dnf install -y -q awscli-2',
        `for i in 1 2 3 4 5; do aws s3 sync --only-show-errors s3://${s.modelsBucket}/${prefix} ${HOST_MODELS_DIR}/ && break; sleep 15; done`,
        `chmod -R a+rX ${HOST_MODELS_DIR}`,
      );
    }
    const workerHostSecurityGroup = new SecurityGroup(this, 'WorkerHostSg', {
      vpc,
      description: 'GPU hosts (no inbound)',
    });
    const launchTemplate = new LaunchTemplate(this, 'WorkerLaunchTemplate', {
      launchTemplateName: name('worker'),
      instanceType: new InstanceType(s.workerInstanceType),
      machineImage: EcsOptimizedImage.amazonLinux2023(AmiHardwareType.GPU),
      userData,
      role: hostRole,
      securityGroup: workerHostSecurityGroup,
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: BlockDeviceVolume.ebs(200, { volumeType: EbsDeviceVolumeType.GP3, encrypted: true }),
        },
      ],
    });
    const workerAsg = new AutoScalingGroup(this, 'WorkerAsg', {
      vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplate,
      minCapacity: 0,
      maxCapacity: s.workerMaxInstances,
      // The capacity provider protects hosts that run tasks from scale-in.
      newInstancesProtectedFromScaleIn: true,
    });
    const capacityProvider = new AsgCapacityProvider(this, 'WorkerCapacity', {
      capacityProviderName: name('gpu'),
      autoScalingGroup: workerAsg,
      enableManagedScaling: true,
      enableManagedTerminationProtection: true,
      targetCapacityPercent: 100,
      minimumScalingStepSize: 1,
    });
    cluster.addAsgCapacityProvider(capacityProvider);
    acknowledge(
      hostRole,
      'AwsSolutions-IAM5[Resource::*]',
      'Added by CDK for ECS container instances and the capacity provider (ecs:DiscoverPollEndpoint, ecr:GetAuthorizationToken, ec2:Describe*): these actions have no resource-level permissions.',
    );
    acknowledge(
      hostRole,
      'AwsSolutions-IAM5[Action::ecs:Submit*]',
      'Added by CDK for the ECS agent (SubmitTaskStateChange, SubmitContainerStateChange, …), scoped to this cluster.',
    );
    acknowledge(
      workerAsg,
      'AwsSolutions-AS3',
      'The GPU fleet scales to zero and back many times a day by design; launch failures surface as the QueueBacklogAge alarm and in the ASG activity history, so per-event notifications would be noise.',
    );

    const workerTaskRole = new Role(this, 'WorkerTaskRole', {
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Atelier GPU worker task: objects under users/* only',
    });
    workerTaskRole.addToPolicy(objectAccess);
    acknowledge(
      workerTaskRole,
      `AwsSolutions-IAM5[Resource::<${this.getLogicalId(bucket.node.defaultChild as CfnBucket)}.Arn>/users/*]`,
      'Workers write results for any user: objects under users/* of the images bucket only, keys built from the job row.',
    );
    const workerTask = new Ec2TaskDefinition(this, 'WorkerTask', {
      family: name('worker'),
      networkMode: NetworkMode.AWS_VPC,
      taskRole: workerTaskRole,
      volumes: [{ name: 'models', host: { sourcePath: HOST_MODELS_DIR } }],
    });
    const worker = workerTask.addContainer('worker', {
      image: ContainerImage.fromEcrRepository(props.workerRepository, s.imageTag),
      essential: true,
      command: ['node', 'cloud/src/worker/main.ts'],
      environment: workerEnvironment(s, endpoints),
      secrets: { ATELIER_DB_ROLE_PASSWORD: rolePasswordSecret, WEBHOOKS_SECRET_KEY: webhooksKeySecret },
      gpuCount: 1,
      memoryReservationMiB: 12 * 1024,
      stopTimeout: Duration.seconds(120),
      logging: logs(workerLogs, 'worker'),
    });
    acknowledge(
      workerTask,
      'AwsSolutions-ECS2',
      'The environment holds only non-secret settings; the database role password comes from Secrets Manager as an ECS secret.',
    );
    for (const task of [apiTask, workerTask])
      acknowledge(
        task.obtainExecutionRole(),
        'AwsSolutions-IAM5[Resource::*]',
        'ecr:GetAuthorizationToken, added by CDK for pulling the image, has no resource-level permissions.',
      );
    worker.addMountPoints({ sourceVolume: 'models', containerPath: CONTAINER_MODELS_DIR, readOnly: true });
    const workerSecurityGroup = new SecurityGroup(this, 'WorkerSg', {
      vpc,
      description: 'GPU worker tasks (no inbound)',
    });
    const workerService = new Ec2Service(this, 'WorkerService', {
      cluster,
      serviceName: name('worker'),
      taskDefinition: workerTask,
      // Reset to the minimum on each deploy (tasks are replaced anyway); backlog scaling restores the rest within a minute.
      desiredCount: s.workerMinTasks,
      securityGroups: [workerSecurityGroup],
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      capacityProviderStrategies: [{ capacityProvider: capacityProvider.capacityProviderName, weight: 1 }],
      circuitBreaker: { enable: true, rollback: true },
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
    });
    // Workers update after the API, whose new tasks have already migrated the database.
    workerService.node.addDependency(apiService);

    const backlogMetric = (metricName: string, statistic = 'Maximum') =>
      new Metric({
        namespace: METRIC_NAMESPACE,
        metricName,
        dimensionsMap: { Environment: s.envName },
        statistic,
        period: Duration.minutes(1),
      });
    const policy = workerPolicy;
    const workerScaling = workerService.autoScaleTaskCount({
      minCapacity: policy.minTasks,
      maxCapacity: policy.maxTasks,
    });
    // Exact capacity = the demand metric (tasks), 0 after a window without jobs (hosts then scale in too).
    workerScaling.scaleOnMetric('Backlog', {
      metric: new Metric({
        namespace: METRIC_NAMESPACE,
        metricName: METRICS.demand,
        dimensionsMap: { Environment: s.envName },
        statistic: 'Maximum',
        period: Duration.seconds(policy.periodSeconds),
      }),
      adjustmentType: AdjustmentType.EXACT_CAPACITY,
      scalingSteps: scalingSteps(policy),
      cooldown: Duration.seconds(policy.cooldownSeconds),
      evaluationPeriods: 1,
    });

    // ── Alarms.
    const alarm = (id: string, a: ConstructorParameters<typeof Alarm>[2]) =>
      new Alarm(this, id, a).addAlarmAction(notify);
    alarm('Api5xxRate', {
      alarmDescription: 'More than 5% of API requests answered 5xx',
      metric: new MathExpression({
        expression: '100 * (FILL(t5xx, 0) + FILL(e5xx, 0)) / FILL(req, 1)',
        usingMetrics: {
          t5xx: alb.metrics.httpCodeTarget(HttpCodeTarget.TARGET_5XX_COUNT, { statistic: 'Sum' }),
          e5xx: alb.metrics.httpCodeElb(HttpCodeElb.ELB_5XX_COUNT, { statistic: 'Sum' }),
          req: alb.metrics.requestCount({ statistic: 'Sum' }),
        },
        period: Duration.minutes(5),
      }),
      threshold: 5,
      evaluationPeriods: 2,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    alarm('ApiLatencyP99', {
      alarmDescription: 'API p99 latency above 2 s',
      metric: alb.metrics.targetResponseTime({ statistic: 'p99', period: Duration.minutes(5) }),
      threshold: 2,
      evaluationPeriods: 3,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    alarm('QueueBacklogAge', {
      alarmDescription: 'A generation has waited more than 10 minutes for a GPU worker',
      metric: backlogMetric(METRICS.oldestAge),
      threshold: 600,
      evaluationPeriods: 3,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      // No data means the publisher (a sidecar of the API) is down: that is worth a page too.
      treatMissingData: TreatMissingData.BREACHING,
    });
    alarm('DbCpu', {
      alarmDescription: 'RDS CPU above 80% for 15 minutes',
      metric: db.metricCPUUtilization({ period: Duration.minutes(5) }),
      threshold: 80,
      evaluationPeriods: 3,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    alarm('DbFreeStorage', {
      alarmDescription: 'RDS free storage below 5 GiB',
      metric: db.metricFreeStorageSpace({ period: Duration.minutes(5) }),
      threshold: 5 * 1024 ** 3,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
    });
    // pino writes `"level":50` for error and 60 for fatal.
    const workerErrors = new MetricFilter(this, 'WorkerErrorsFilter', {
      logGroup: workerLogs,
      filterPattern: FilterPattern.numberValue('$.level', '>=', 50),
      metricNamespace: METRIC_NAMESPACE,
      metricName: `WorkerErrors-${s.envName}`,
      metricValue: '1',
      defaultValue: 0,
    });
    alarm('WorkerErrors', {
      alarmDescription: 'GPU workers logged more than 5 errors in 5 minutes',
      metric: workerErrors.metric({ statistic: 'Sum', period: Duration.minutes(5) }),
      threshold: 5,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    // ── Who may talk to whom.
    apiSecurityGroup.connections.allowFrom(albSecurityGroup, Port.tcp(API_PORT), 'ALB to API');
    dbSecurityGroup.addIngressRule(apiSecurityGroup, Port.tcp(5432), 'API to Postgres');
    dbSecurityGroup.addIngressRule(workerSecurityGroup, Port.tcp(5432), 'workers to Postgres');
    redisSecurityGroup.addIngressRule(apiSecurityGroup, Port.tcp(REDIS_PORT), 'API to Redis (limits)');

    // The Lambda CDK adds to apply log retention to RDS's log groups.
    for (const child of this.node.children.filter((c) => c.node.id.startsWith('LogRetention'))) {
      acknowledge(
        child,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        "CDK's log-retention function: the basic Lambda policy only lets it write its own logs.",
      );
      acknowledge(
        child,
        'AwsSolutions-IAM5[Resource::*]',
        "CDK's log-retention function sets retention on log groups RDS creates at run time, whose names the template cannot list.",
      );
    }

    new CfnOutput(this, 'ApiUrl', { value: `https://${s.domainName}` });
    new CfnOutput(this, 'LoadBalancerDns', {
      value: alb.loadBalancerDnsName,
      description: `Point ${s.domainName} (CNAME/alias) here`,
    });
    new CfnOutput(this, 'UserPoolId', { value: userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: desktopClient.userPoolClientId });
    new CfnOutput(this, 'ImagesBucket', { value: bucket.bucketName });
    new CfnOutput(this, 'DbAdminSecretArn', { value: adminSecret.secretArn });
    new CfnOutput(this, 'ClusterName', { value: cluster.clusterName });
    new CfnOutput(this, 'ApiServiceName', { value: apiService.serviceName });
    new CfnOutput(this, 'WorkerServiceName', { value: workerService.serviceName });
    new CfnOutput(this, 'AlarmTopicArn', { value: alarms.topicArn });
  }
}
