/**
 * deploy/helm/walpurge checked by real Helm (helm-java: `helm lint --strict` and `helm template` over a
 * matrix of values, one JVM for all of it), every rendered object validated against the Kubernetes
 * schemas and run through the same cross-checks as deploy/k8s (ports, probes, env, config, roles,
 * autoscalers, scraping: test/unit/deploy/manifest-checks.ts), compared with the Kustomize render,
 * and two releases in one namespace rendered side by side.
 *
 * Integration project: it needs java (with its compiler, for the single-file runner) and mvn, once
 * per machine, to fetch helm-java from Maven Central.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { sourceAlertRules } from '../unit/deploy/alert-source.js';
import {
  isObject,
  renderEditedKustomization,
  renderKustomization,
  withInspectSection,
  type JsonObject,
  type K8sObject,
} from '../unit/deploy/kustomize.js';
import {
  checkAgainstCode,
  checkImage,
  checkKedaTriggers,
  checkSchemas,
  walpurgePods,
  type WalpurgePod,
} from '../unit/deploy/manifest-checks.js';
import { deployments, nameOf, objectsOfKind, podLabels, selects } from '../unit/deploy/pod-spec.js';
import { baseMetricName, registeredMetrics } from '../unit/deploy/metrics-in-code.js';
import { parsePromql } from '../unit/deploy/promql.js';
import {
  CHART_DIR,
  INSTANCE_LABEL,
  METRICS_SERVICE_PLACEHOLDER,
  RELEASE_PLACEHOLDER,
  isAcrossInstallations,
  releaseExpression,
} from '../unit/deploy/helm-chart-files.js';
import { readRepoFile, repoPath } from '../unit/deploy/workspace.js';
import { documentedHelmInstall } from './helm/documented-install.js';
import {
  HELM_TIMEOUT_MS,
  mergeValues,
  renderHelmCases,
  type HelmCase,
  type HelmRender,
} from './helm/helm.js';

const chartDir = repoPath(CHART_DIR);
const namespace = 'apps';

const inlineCredentials = {
  databaseUrl: 'postgres://walpurge:secret@db.example.internal:5432/app',
  redisUrl: 'redis://cache.example.internal:6379',
  queueRedisUrl: 'redis://:queue-secret@queue.example.internal:6379',
};
const monitoring = {
  serviceMonitor: { enabled: true },
  prometheusRule: { enabled: true },
  grafanaDashboard: { enabled: true },
};

/** Queue Redis URLs and what the flusher's KEDA trigger must read from each (Secret keys, metadata). */
const queueRedisUrls = [
  {
    what: 'a TLS queue Redis without password',
    url: 'rediss://default@queue.example.internal:6380',
    secret: {
      QUEUE_REDIS_ADDRESS: 'queue.example.internal:6380',
      QUEUE_REDIS_USERNAME: 'default',
      QUEUE_REDIS_PASSWORD: '',
    },
    trigger: { databaseIndex: '0', enableTLS: 'true' },
  },
  {
    // ioredis decodes the password and uses the user and DB; KEDA takes them as they are given.
    what: 'a queue Redis ACL user with an encoded password and DB 3',
    url: 'redis://qu:p%40ss%3Aw@queue:6379/3',
    secret: { QUEUE_REDIS_ADDRESS: 'queue:6379', QUEUE_REDIS_USERNAME: 'qu', QUEUE_REDIS_PASSWORD: 'p@ss:w' },
    trigger: { databaseIndex: '3', enableTLS: 'false' },
  },
  {
    what: 'a queue Redis URL without port',
    url: 'redis://:pw@queue.example.internal',
    secret: {
      QUEUE_REDIS_ADDRESS: 'queue.example.internal:6379',
      QUEUE_REDIS_USERNAME: '',
      QUEUE_REDIS_PASSWORD: 'pw',
    },
    trigger: { databaseIndex: '0', enableTLS: 'false' },
  },
];

interface Case extends HelmCase {
  topology: 'kafka' | 'embedded';
  /** Runs the deploy/k8s cross-checks (needs the rendered ConfigMap). */
  crossCheck: boolean;
  /**
   * Kustomize render of the same setup, compared with this one; `inspect`: with the `inspect`
   * section of base/walpurge.yaml uncommented, as its comment says to turn the observer on.
   */
  kustomize?: { dir: string; components?: string[]; inspect?: boolean };
}

/** The observer's settings of deploy/k8s/base/walpurge.yaml's commented-out `inspect` section. */
const inspect = { sampleRate: 0.01, timescalesMs: [1000, 10000, 60000], maxPendingChecks: 100000 };

/** Every case but the documented commands runs an image from a registry, as the chart requires. */
const image = { image: { repository: 'registry.example.com/walpurge' } };

const cases: Case[] = [
  {
    id: 'kafka defaults (HPA)',
    release: 'walpurge',
    namespace,
    values: { credentials: inlineCredentials },
    topology: 'kafka',
    crossCheck: true,
    kustomize: { dir: 'overlays/kafka' },
  },
  {
    id: 'kafka with KEDA and monitoring',
    release: 'walpurge',
    namespace,
    values: { credentials: inlineCredentials, autoscaling: { mode: 'keda' }, ...monitoring },
    topology: 'kafka',
    crossCheck: true,
    kustomize: {
      dir: 'overlays/kafka',
      components: ['../../components/keda', '../../components/monitoring'],
    },
  },
  {
    id: 'kafka with SASL/TLS, KEDA, existing Secret, no flusher, placement, extra env and volumes',
    release: 'blog-walpurge',
    namespace,
    values: {
      fullnameOverride: '',
      credentials: { existingSecret: 'blog-secrets', cdnSecret: 'blog-cdn' },
      kafka: {
        brokers: ['b-1.kafka:9093', 'b-2.kafka:9093'],
        ssl: true,
        sasl: { mechanism: 'scram-sha-512' },
      },
      config: { flusher: null, log: { level: 'debug' } },
      autoscaling: { mode: 'keda', invalidator: { minReplicas: 1, maxReplicas: 6 } },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'cdc', effect: 'NoSchedule' }],
      nodeSelector: { 'kubernetes.io/arch': 'amd64' },
      extraEnv: [{ name: 'LOG_LEVEL', value: 'debug' }],
      extraVolumes: [{ name: 'ca', secret: { secretName: 'kafka-ca' } }],
      extraVolumeMounts: [{ name: 'ca', mountPath: '/etc/kafka-ca', readOnly: true }],
      invalidator: {
        resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '2Gi' } },
        affinity: { nodeAffinity: {} },
        podAnnotations: { 'example.com/team': 'cdc' },
      },
      listener: { probes: { startup: { failureThreshold: 60 } } },
      ...monitoring,
    },
    topology: 'kafka',
    crossCheck: true,
  },
  ...queueRedisUrls.map(({ what, url }): Case => ({
    id: `kafka with KEDA, ${what}`,
    release: 'shop',
    namespace,
    values: { credentials: { ...inlineCredentials, queueRedisUrl: url }, autoscaling: { mode: 'keda' } },
    topology: 'kafka',
    crossCheck: true,
  })),
  {
    id: 'kafka with KEDA, an existing Secret for a TLS queue Redis on DB 2',
    release: 'shop',
    namespace,
    values: {
      credentials: { existingSecret: 'shop-secrets', queueRedis: { tls: true, databaseIndex: 2 } },
      autoscaling: { mode: 'keda' },
    },
    topology: 'kafka',
    crossCheck: true,
  },
  {
    id: 'kafka with KEDA and a TLS object (system CAs)',
    release: 'shop',
    namespace,
    values: {
      credentials: inlineCredentials,
      kafka: { ssl: { rejectUnauthorized: true } },
      autoscaling: { mode: 'keda' },
    },
    topology: 'kafka',
    crossCheck: true,
  },
  {
    // Files mounted through extraVolumes; walpurge reads them, the chart never does (no KEDA).
    id: 'kafka with mTLS files, an encrypted key and OAUTHBEARER (HPA)',
    release: 'shop',
    namespace,
    values: {
      credentials: {
        databaseUrl: inlineCredentials.databaseUrl,
        redisUrl: inlineCredentials.redisUrl,
        queueRedisUrl: inlineCredentials.queueRedisUrl,
      },
      kafka: {
        ssl: {
          ca: '/etc/kafka-tls/ca.pem',
          cert: '/etc/kafka-tls/tls.crt',
          key: '/etc/kafka-tls/tls.key',
          passphrase: '${KAFKA_KEY_PASSPHRASE}',
        },
        sasl: { mechanism: 'oauthbearer', tokenProvider: '/opt/walpurge-hooks/token.mjs' },
      },
      extraVolumes: [{ name: 'kafka-tls', secret: { secretName: 'kafka-tls' } }],
      extraVolumeMounts: [{ name: 'kafka-tls', mountPath: '/etc/kafka-tls', readOnly: true }],
    },
    topology: 'kafka',
    crossCheck: false,
  },
  {
    id: 'kafka without autoscaling or budgets, image by digest',
    release: 'shop',
    namespace,
    values: {
      credentials: inlineCredentials,
      autoscaling: { mode: 'none' },
      podDisruptionBudget: { enabled: false },
      image: { repository: 'registry.example.com/walpurge', digest: `sha256:${'a'.repeat(64)}` },
    },
    topology: 'kafka',
    crossCheck: false,
  },
  {
    id: 'kafka with the consistency observer',
    release: 'walpurge',
    namespace,
    values: { credentials: inlineCredentials, config: { inspect } },
    topology: 'kafka',
    crossCheck: true,
    kustomize: {
      dir: 'overlays/kafka',
      components: ['../../components/hpa', '../../components/inspector'],
      inspect: true,
    },
  },
  {
    id: 'kafka with the consistency observer at its defaults, KEDA and monitoring',
    release: 'shop',
    namespace,
    values: {
      credentials: inlineCredentials,
      config: { inspect: {} },
      autoscaling: { mode: 'keda' },
      inspector: { resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { memory: '1Gi' } } },
      ...monitoring,
    },
    topology: 'kafka',
    crossCheck: true,
  },
  {
    id: 'kafka with the consistency observer in a group of its own choosing',
    release: 'shop',
    namespace,
    values: { credentials: inlineCredentials, config: { inspect: { consumerGroup: 'shop-consistency' } } },
    topology: 'kafka',
    crossCheck: true,
  },
  {
    // The chart cannot see the ConfigMap's sections: config.inspect is the switch alone.
    id: 'kafka with an existing ConfigMap and the observer switched on',
    release: 'shop',
    namespace,
    values: {
      credentials: inlineCredentials,
      config: { existingConfigMap: 'shop-rules', inspect: {} },
    },
    topology: 'kafka',
    crossCheck: false,
  },
  {
    id: 'kafka with an existing ConfigMap',
    release: 'shop',
    namespace,
    values: { credentials: inlineCredentials, config: { existingConfigMap: 'shop-rules' } },
    topology: 'kafka',
    crossCheck: false,
  },
  {
    id: 'embedded with the consistency observer (in-process)',
    release: 'walpurge',
    namespace,
    values: { topology: 'embedded', credentials: inlineCredentials, config: { inspect } },
    topology: 'embedded',
    crossCheck: true,
    kustomize: { dir: 'overlays/embedded', inspect: true },
  },
  {
    id: 'embedded',
    release: 'walpurge',
    namespace,
    values: { topology: 'embedded', credentials: inlineCredentials },
    topology: 'embedded',
    crossCheck: true,
    kustomize: { dir: 'overlays/embedded' },
  },
  {
    id: 'embedded with monitoring and an existing ConfigMap',
    release: 'shop',
    namespace,
    values: {
      topology: 'embedded',
      credentials: inlineCredentials,
      config: { existingConfigMap: 'shop-rules' },
      ...monitoring,
    },
    topology: 'embedded',
    crossCheck: false,
  },
  {
    // The defaults' config with other values changed: resources, replicas, scaling, monitoring.
    id: 'kafka defaults, values outside config changed',
    release: 'walpurge',
    namespace,
    values: {
      credentials: inlineCredentials,
      invalidator: { replicas: 3, resources: { requests: { cpu: '1', memory: '512Mi' } } },
      autoscaling: { mode: 'none' },
      podAnnotations: { 'example.com/owner': 'cdc' },
      ...monitoring,
    },
    topology: 'kafka',
    crossCheck: true,
  },
  {
    id: 'alerts with a scrape of your own that adds the release labels',
    release: 'shop',
    namespace,
    values: { credentials: inlineCredentials, prometheusRule: { enabled: true, ownScrape: true } },
    topology: 'kafka',
    crossCheck: true,
  },
  {
    id: 'one replica of every role',
    release: 'shop',
    namespace,
    values: {
      credentials: inlineCredentials,
      autoscaling: { mode: 'none' },
      listener: { replicas: 1 },
      invalidator: { replicas: 1 },
      flusher: { replicas: 1 },
    },
    topology: 'kafka',
    crossCheck: false,
  },
  {
    id: 'embedded, one replica',
    release: 'shop',
    namespace,
    values: { topology: 'embedded', credentials: inlineCredentials, allInOne: { replicas: 1 } },
    topology: 'embedded',
    crossCheck: false,
  },
  {
    // walpurge substitutes ${VAR}s before it validates, and retypes numbers and booleans.
    id: 'config numbers and booleans as ${VAR}s',
    release: 'shop',
    namespace,
    values: {
      credentials: inlineCredentials,
      config: {
        redis: { url: '${REDIS_URL}', cluster: '${REDIS_CLUSTER:-false}' },
        database: { heartbeatIntervalMs: '${HEARTBEAT_MS}' },
      },
      kafka: { ssl: '${KAFKA_SSL}' },
    },
    topology: 'kafka',
    crossCheck: false,
  },
  {
    id: 'kafka defaults, one rule changed',
    release: 'walpurge',
    namespace,
    values: {
      credentials: inlineCredentials,
      config: { rules: [{ table: 'public.posts', redis: { keys: ['post:v2:{id}'] } }] },
    },
    topology: 'kafka',
    crossCheck: true,
  },
  // The install commands of README.md and docs/deployment.md, as they are written.
  ...(['README.md', 'docs/deployment.md'] as const).map((file): Case => {
    const command = documentedHelmInstall(readRepoFile(file), file);
    return {
      id: `${file} helm install`,
      ...command,
      topology: command.values['topology'] === 'embedded' ? 'embedded' : 'kafka',
      crossCheck: true,
    };
  }),
  ...(['shop', 'blog'] as const).map((release): Case => ({
    id: `two releases: ${release}`,
    release,
    namespace,
    values: { credentials: inlineCredentials, autoscaling: { mode: 'keda' }, ...monitoring },
    topology: 'kafka',
    crossCheck: true,
  })),
];

/**
 * The write-behind queue a release other than `walpurge` must name (the chart refuses to guess:
 * @walpurge/client's queuePrefix defaults to walpurge:wb:), one per release.
 */
const queueOf = (release: string): JsonObject => ({
  config: { flusher: { keyPrefix: `${release}:wb:` } },
});
const required = (release: string, values: JsonObject): JsonObject => {
  const config = values['config'];
  // mergeValues drops a null: a case without flusher (flusher: null) must keep it.
  const withoutFlusher = isObject(config) && config['flusher'] === null;
  return release === 'walpurge' || withoutFlusher ? image : mergeValues(image, queueOf(release));
};

for (const helmCase of cases)
  if (!helmCase.id.endsWith('helm install'))
    helmCase.values = mergeValues(required(helmCase.release, helmCase.values), helmCase.values);

/** Values the chart must refuse, with the error it gives. */
const refusals: { id: string; values: JsonObject; error: RegExp }[] = [
  {
    // docker.io/library/walpurge does not exist: the chart makes the user name the image they pushed.
    id: 'no image repository',
    values: { credentials: inlineCredentials, image: { repository: '' } },
    error: /image\.repository: set the image you built from deploy\/Dockerfile/,
  },
  {
    id: 'no credentials',
    values: {},
    error: /set credentials\.existingSecret, or credentials\.databaseUrl/,
  },
  {
    id: 'more invalidators than partitions',
    values: { credentials: inlineCredentials, autoscaling: { invalidator: { maxReplicas: 13 } } },
    error: /maxReplicas \(13\) exceeds kafka\.partitions \(12\)/,
  },
  {
    id: 'kafka typed into config',
    values: { credentials: inlineCredentials, config: { kafka: { brokers: ['x:9092'] } } },
    error: /config\.kafka: set the top-level `kafka` values/,
  },
  {
    id: 'transport typed into config',
    values: { credentials: inlineCredentials, config: { transport: 'inline' } },
    error: /config\.transport: leave it out/,
  },
  {
    id: 'KEDA with an existing ConfigMap',
    values: {
      credentials: inlineCredentials,
      autoscaling: { mode: 'keda' },
      config: { existingConfigMap: 'x' },
    },
    error: /keda needs the rendered config/,
  },
  {
    // values.schema.json: Helm checks values before any template runs.
    id: 'unknown topology',
    values: { credentials: inlineCredentials, topology: 'sidecar' },
    error: /topology.*must be one of the following: "kafka", "embedded"/,
  },
  {
    id: 'a misspelt value',
    values: { credentials: inlineCredentials, autoscaling: { mod: 'keda' } },
    error: /autoscaling.*Additional property mod is not allowed/,
  },
  {
    id: 'a SASL mechanism walpurge does not have',
    values: { credentials: inlineCredentials, kafka: { sasl: { mechanism: 'gssapi' } } },
    error: /kafka\.sasl\.mechanism.*must be one of the following/,
  },
  {
    // Its alerts match app_kubernetes_io_instance, which only the ServiceMonitor's podTargetLabels add.
    id: 'alerts without the ServiceMonitor',
    values: { credentials: inlineCredentials, prometheusRule: { enabled: true } },
    error: /prometheusRule\.enabled needs serviceMonitor\.enabled/,
  },
  {
    id: 'an HPA with minReplicas 0',
    values: { credentials: inlineCredentials, autoscaling: { flusher: { minReplicas: 0 } } },
    error: /autoscaling\.flusher\.minReplicas must be at least 1 with autoscaling\.mode hpa/,
  },
  {
    id: 'an autoscaler with minReplicas above maxReplicas',
    values: {
      credentials: inlineCredentials,
      autoscaling: { mode: 'keda', invalidator: { minReplicas: 5, maxReplicas: 3 } },
    },
    error: /autoscaling\.invalidator\.minReplicas \(5\) exceeds its maxReplicas \(3\)/,
  },
  {
    // values.schema.json embeds walpurge.schema.json for config and kafka.
    id: 'a misspelt config section',
    values: { credentials: inlineCredentials, config: { databse: { url: '${DATABASE_URL}' } } },
    error: /config.*Additional property databse is not allowed/,
  },
  {
    id: 'a misspelt key of a rule',
    values: {
      credentials: inlineCredentials,
      config: { rules: [{ table: 'public.posts', redis: { kyes: ['post:{id}'] } }] },
    },
    error: /config\.rules\.0\.redis.*Additional property kyes is not allowed/,
  },
  {
    id: 'a misspelt kafka value',
    values: { credentials: inlineCredentials, kafka: { topics: 'x' } },
    error: /kafka.*Additional property topics is not allowed/,
  },
  {
    // What Helm's YAML 1.1 parser makes of an unquoted `on:` key in a values file.
    id: 'a rule with a bare on key',
    values: {
      credentials: inlineCredentials,
      config: { rules: [{ table: 'public.x', true: ['update'] }] },
    },
    error: /config\.rules\[0\]: quote the key 'on'/,
  },
  ...(
    [
      ['kafka.topic', { kafka: { topic: '${TOPIC}' } }],
      ['kafka.brokers', { kafka: { brokers: ['${KAFKA_BROKERS}'] } }],
      ['kafka.partitions', { kafka: { partitions: '${PARTITIONS}' } }],
      ['config.flusher.keyPrefix', { config: { flusher: { keyPrefix: '${QUEUE_PREFIX}' } } }],
      ['kafka.ssl', { kafka: { ssl: '${KAFKA_SSL}' }, autoscaling: { mode: 'keda' } }],
    ] satisfies [string, JsonObject][]
  ).map(([key, values]) => ({
    // KEDA would get the literal text and never scale; walpurge alone substitutes ${VAR}s.
    id: `a \${VAR} in ${key}, which the chart reads itself`,
    values: { credentials: inlineCredentials, ...values },
    error: new RegExp(
      `${key.replaceAll('.', '\\.')}: the chart reads this value itself .*: give it literally`,
    ),
  })),
  {
    id: 'KEDA with kafka.ssl files (and a ${VAR} passphrase), which its trigger cannot read',
    values: {
      credentials: inlineCredentials,
      kafka: {
        ssl: { ca: '/etc/kafka-tls/ca.pem', cert: '/c.pem', key: '/k.pem', passphrase: '${P}' },
      },
      autoscaling: { mode: 'keda' },
    },
    error:
      /kafka\.ssl\.ca\/cert\/key with autoscaling\.mode keda: KEDA's kafka trigger cannot read the files/,
  },
  ...([{ servername: 'kafka.example.internal' }, { rejectUnauthorized: false }] as JsonObject[]).map(
    (ssl) => ({
      id: `KEDA with kafka.ssl ${JSON.stringify(ssl)}, which its trigger cannot follow`,
      values: { credentials: inlineCredentials, kafka: { ssl }, autoscaling: { mode: 'keda' } },
      error:
        /kafka\.ssl\.servername or kafka\.ssl\.rejectUnauthorized: false with autoscaling\.mode keda: .*never scale/,
    }),
  ),
  {
    id: 'KEDA with a queue Redis private CA, which its redis trigger cannot read',
    values: {
      credentials: inlineCredentials,
      config: { flusher: { queueRedisTls: { ca: '/etc/queue-tls/ca.pem' } } },
      autoscaling: { mode: 'keda' },
    },
    error:
      /config\.flusher\.queueRedisTls ca\/cert\/key\/servername with autoscaling\.mode keda: .*never scale/,
  },
  {
    id: 'KEDA with OAUTHBEARER, which its trigger cannot take',
    values: {
      credentials: inlineCredentials,
      kafka: { sasl: { mechanism: 'oauthbearer', tokenProvider: '/opt/walpurge-hooks/token.mjs' } },
      autoscaling: { mode: 'keda' },
    },
    error: /kafka\.sasl\.mechanism "oauthbearer" with autoscaling\.mode keda: .*no token-provider hook/,
  },
  {
    // urlParse's own error would print the URL, password and all (checked below: not in the error).
    id: 'a queue Redis URL with a bad %-escape in its password',
    values: {
      credentials: { ...inlineCredentials, queueRedisUrl: 'redis://:pa%zzword@queue:6379' },
      autoscaling: { mode: 'keda' },
    },
    error:
      /credentials\.queueRedisUrl: a redis:\/\/ or rediss:\/\/ URL without spaces, every % followed by two hex digits/,
  },
  ...(['shop-purge', 'shop-purge-cdn-fastly'] as const).map((group) => ({
    // The observer would take partitions from the invalidators (or a CDN lane): purges lost.
    id: `the observer in the consumer group ${group}`,
    values: {
      credentials: inlineCredentials,
      // Named, not derived: helm lint renders another release, whose derived names differ.
      kafka: { consumerGroup: 'shop-purge' },
      config: { inspect: { consumerGroup: group } },
    },
    error: new RegExp(
      `config\\.inspect\\.consumerGroup: "${group}" is the invalidators' consumer group or one of its CDN lanes'`,
    ),
  })),
  {
    // The application's write client would queue under walpurge:wb:, which this flusher never drains.
    id: 'a flusher without keyPrefix in a release not named walpurge',
    values: { credentials: inlineCredentials, config: { flusher: { keyPrefix: '' } } },
    error:
      /config\.flusher\.keyPrefix: set it to the queuePrefix your application's write client uses \(docs\/client\.md\)/,
  },
];
const refused: (HelmCase & { error: RegExp })[] = refusals.map((refusal) => ({
  ...refusal,
  values: mergeValues(required('shop', refusal.values), refusal.values),
  release: 'shop',
  namespace,
}));

let renders: Map<string, HelmRender>;
beforeAll(async () => {
  const started = Date.now();
  renders = await renderHelmCases(chartDir, [...cases, ...refused]);
  console.info(
    `helm: ${cases.length + refused.length} cases linted and rendered in ${Date.now() - started} ms`,
  );
  // Longer than a first run's Maven fetch of helm-java (ensureHelmJars) plus the JVM's own
  // timeout, so a slow fetch fails with Maven's log instead of vitest's hook timeout.
}, HELM_TIMEOUT_MS);

function render(id: string): HelmRender {
  const result = renders.get(id);
  if (!result) throw new Error(`no render for ${id}`);
  if (result.templateError) throw new Error(`${id}: helm template failed: ${result.templateError}`);
  return result;
}

describe.each(cases)('deploy/helm $id', (helmCase) => {
  it('passes helm lint --strict and renders with helm template', () => {
    const { lint, objects } = render(helmCase.id);
    expect(lint, helmCase.id).toEqual({
      failed: false,
      messages: expect.any(Array) as unknown,
      failures: [],
    });
    if ('messages' in lint)
      for (const message of lint.messages) expect(message, 'lint message').toMatch(/^\[INFO\]/);
    expect(objects.length).toBeGreaterThan(0);
  });

  it('renders objects that all match their Kubernetes schema, named after the release', () => {
    const { objects } = render(helmCase.id);
    checkSchemas(objects);
    for (const object of objects)
      expect(object.metadata.name, object.kind).toMatch(new RegExp(`^${helmCase.release}`));
  });

  it('labels every object with the Kubernetes recommended labels and selects by instance', () => {
    const { objects } = render(helmCase.id);
    for (const object of objects) {
      const labels = (object.metadata['labels'] ?? {}) as Record<string, string>;
      const where = `${object.kind}/${object.metadata.name}`;
      expect(labels['app.kubernetes.io/name'], where).toBe('walpurge');
      expect(labels['app.kubernetes.io/instance'], where).toBe(helmCase.release);
      expect(labels['app.kubernetes.io/version'], where).toMatch(/^\d+\.\d+\.\d+/);
      expect(labels['app.kubernetes.io/part-of'], where).toBe('walpurge');
      expect(labels['app.kubernetes.io/managed-by'], where).toBe('Helm');
    }
    for (const deployment of deployments(objects)) {
      const selector = deployment.spec?.selector.matchLabels ?? {};
      expect(selector['app.kubernetes.io/instance']).toBe(helmCase.release);
      expect(selector['app.kubernetes.io/component']).toBe(
        podLabels(deployment)['app.kubernetes.io/component'],
      );
      expect(selects(selector, podLabels(deployment))).toBe(true);
    }
  });

  it.runIf(helmCase.crossCheck)('passes the deploy/k8s cross-checks against the code', () => {
    checkAgainstCode(render(helmCase.id).objects);
  });
});

describe('deploy/helm defaults', () => {
  it('run the image built from deploy/Dockerfile, tagged with the CLI version (the chart appVersion)', () => {
    checkImage(render('kafka defaults (HPA)').objects);
  });

  it('render the image by digest when one is set', () => {
    for (const deployment of deployments(
      render('kafka without autoscaling or budgets, image by digest').objects,
    ))
      expect(deployment.spec?.template.spec?.containers[0]?.image).toBe(
        `registry.example.com/walpurge@sha256:${'a'.repeat(64)}`,
      );
  });
});

/** Pod-spec parts both renderers must agree on, per role. */
function comparable(pod: WalpurgePod, autoscaled: boolean): JsonObject {
  const spec = pod.deployment.spec;
  const podSpec = spec?.template.spec;
  const container = pod.container;
  return JSON.parse(
    JSON.stringify({
      replicas: autoscaled ? 'autoscaled' : spec?.replicas,
      strategy: spec?.strategy,
      args: container.args,
      ports: container.ports,
      probes: [container.startupProbe, container.livenessProbe, container.readinessProbe],
      resources: container.resources,
      securityContext: container.securityContext,
      podSecurityContext: podSpec?.securityContext,
      terminationGracePeriodSeconds: podSpec?.terminationGracePeriodSeconds,
      automountServiceAccountToken: podSpec?.automountServiceAccountToken,
      volumeMounts: container.volumeMounts,
      tmp: podSpec?.volumes?.find((volume) => volume.name === 'tmp'),
      // Secret keys the pods read (the chart writes settings into walpurge.yaml where Kustomize
      // passes them through a generated env ConfigMap: compared through the parsed config below).
      secretEnv: (container.env ?? [])
        .filter((variable) => variable.valueFrom?.secretKeyRef)
        .map((variable) => `${variable.name}←${variable.valueFrom?.secretKeyRef?.key}`),
      // Embedded (transport inline) reads no kafka section: Kustomize's base file keeps one for the
      // Kafka overlay, the chart renders it only for the kafka topology.
      config: pod.config.transport === 'inline' ? { ...pod.config, kafka: undefined } : pod.config,
    }),
  ) as JsonObject;
}

function scalerSpec(object: K8sObject): JsonObject {
  const spec = structuredClone(object['spec']) as JsonObject & {
    scaleTargetRef?: JsonObject;
    triggers?: JsonObject[];
  };
  delete spec.scaleTargetRef;
  for (const trigger of spec.triggers ?? []) {
    delete trigger['authenticationRef'];
    const metadata = trigger['metadata'] as JsonObject;
    // The chart states TLS explicitly; Kustomize leaves KEDA's default (disable).
    if (metadata['tls'] === 'disable') delete metadata['tls'];
    // Likewise the queue Redis's DB index and TLS, at KEDA's defaults (DB 0, no TLS) here.
    if (metadata['databaseIndex'] === '0') delete metadata['databaseIndex'];
    if (metadata['enableTLS'] === 'false') delete metadata['enableTLS'];
  }
  return spec;
}

describe.each(cases.filter((helmCase) => helmCase.kustomize))(
  'deploy/helm $id matches deploy/k8s',
  (helmCase) => {
    const kustomizeSetup = helmCase.kustomize ?? { dir: '' };
    const options = kustomizeSetup.components ? { components: kustomizeSetup.components } : {};
    const kustomized = (
      kustomizeSetup.inspect
        ? renderEditedKustomization(
            repoPath('deploy/k8s'),
            kustomizeSetup.dir,
            { 'base/walpurge.yaml': withInspectSection },
            options,
          )
        : renderKustomization(repoPath('deploy/k8s', kustomizeSetup.dir), options)
    ).objects;

    it('runs the same roles with the same pod specs and the same parsed walpurge.yaml', () => {
      const { objects } = render(helmCase.id);
      const byRole = (list: readonly K8sObject[]): Map<string, JsonObject> => {
        const scaled = new Set(
          list
            .filter((object) => ['HorizontalPodAutoscaler', 'ScaledObject'].includes(object.kind))
            .map((object) => (object['spec'] as { scaleTargetRef: { name: string } }).scaleTargetRef.name),
        );
        return new Map(
          walpurgePods(list).map((pod) => [pod.role, comparable(pod, scaled.has(nameOf(pod.deployment)))]),
        );
      };
      const chart = byRole(objects);
      const kustomize = byRole(kustomized);
      expect([...chart.keys()].sort()).toEqual([...kustomize.keys()].sort());
      for (const [role, parts] of chart) expect(parts, role).toEqual(kustomize.get(role));
    });

    it('renders the same kinds, disruption budgets, autoscalers and scrape endpoints', () => {
      const { objects } = render(helmCase.id);
      const kinds = (list: readonly K8sObject[]): string[] =>
        list
          .filter((object) => !(object.kind === 'Secret' || object.kind === 'ConfigMap'))
          .map((object) => object.kind)
          .sort();
      expect(kinds(objects)).toEqual(kinds(kustomized));
      const component = (object: K8sObject): string =>
        ((object.metadata['labels'] ?? {}) as Record<string, string>)['app.kubernetes.io/component'] ?? '';
      const specs = (
        list: readonly K8sObject[],
        kind: string,
        strip: (o: K8sObject) => JsonObject,
      ): Map<string, JsonObject> =>
        new Map(
          list.filter((object) => object.kind === kind).map((object) => [component(object), strip(object)]),
        );
      const budget = (object: K8sObject): JsonObject => {
        const spec = structuredClone(object['spec']) as JsonObject;
        delete spec['selector'];
        return spec;
      };
      // The all-in-one Deployment is the listener's in Kustomize (patched), its own role in the chart.
      const rename = (map: Map<string, JsonObject>): Map<string, JsonObject> =>
        new Map(
          [...map].map(([key, value]) => [
            helmCase.topology === 'embedded' && key === 'listener' ? 'all' : key,
            value,
          ]),
        );
      expect(specs(objects, 'PodDisruptionBudget', budget)).toEqual(
        rename(specs(kustomized, 'PodDisruptionBudget', budget)),
      );
      for (const kind of ['HorizontalPodAutoscaler', 'ScaledObject'])
        expect(specs(objects, kind, scalerSpec), kind).toEqual(specs(kustomized, kind, scalerSpec));
      const endpoints = (list: readonly K8sObject[]): unknown =>
        objectsOfKind<IServiceMonitor>(list, 'ServiceMonitor').map((monitor) => monitor.spec.endpoints);
      expect(endpoints(objects)).toEqual(endpoints(kustomized));
    });
  },
);

describe('deploy/helm Secrets', () => {
  it('reads only Secret keys docs/deployment.md names', () => {
    const guide = readRepoFile('docs/deployment.md');
    const keys = new Set<string>();
    // secretKeyRef (pod env) and KEDA's secretTargetRef entries: {name, key}; inline Secret keys.
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(visit);
      if (!node || typeof node !== 'object') return;
      const record = node as Record<string, unknown>;
      if (typeof record['key'] === 'string' && typeof record['name'] === 'string') keys.add(record['key']);
      Object.values(record).forEach(visit);
    };
    for (const { objects } of renders.values())
      for (const object of objects) {
        if (object.kind === 'Secret')
          Object.keys((object['stringData'] ?? {}) as object).forEach((key) => keys.add(key));
        else visit(object['spec']);
      }
    expect(keys.size).toBeGreaterThan(4);
    for (const key of keys) expect(guide, key).toContain(`\`${key}\``);
  });
});

describe('deploy/helm KEDA', () => {
  it('takes brokers, topic, group, TLS and SASL from the kafka values walpurge.yaml is rendered from', () => {
    const { objects } = render(
      'kafka with SASL/TLS, KEDA, existing Secret, no flusher, placement, extra env and volumes',
    );
    expect(checkKedaTriggers(objects)).toBe(1);
    const [scaled] = objectsOfKind<IScaledObject>(objects, 'ScaledObject');
    expect(scaled?.spec?.triggers[0]?.metadata).toMatchObject({
      bootstrapServers: 'b-1.kafka:9093,b-2.kafka:9093',
      tls: 'enable',
      sasl: 'scram_sha512',
    });
    const [pod] = walpurgePods(objects).filter((candidate) => candidate.role === 'invalidator');
    expect(pod?.config.kafka?.sasl?.mechanism).toBe('scram-sha-512');
    expect(pod?.config.kafka?.ssl).toBe(true);
  });

  it('enables TLS for a kafka.ssl object too', () => {
    const { objects } = render('kafka with KEDA and a TLS object (system CAs)');
    expect(checkKedaTriggers(objects)).toBe(2);
    const [scaled] = objectsOfKind<IScaledObject>(objects, 'ScaledObject');
    expect(scaled?.spec?.triggers[0]?.metadata['tls']).toBe('enable');
  });

  it('renders files and OAUTHBEARER for walpurge alone, with no SASL credentials asked for', () => {
    const { objects } = render('kafka with mTLS files, an encrypted key and OAUTHBEARER (HPA)');
    // Parsed as YAML, not loaded: the files and the passphrase exist only in the pods.
    const configMap = objects.find((object) => object.kind === 'ConfigMap');
    const config = parseYaml(
      String((configMap?.['data'] as Record<string, unknown> | undefined)?.['walpurge.yaml']),
    ) as { kafka: { sasl: unknown; ssl: unknown } };
    expect(config.kafka.sasl).toEqual({
      mechanism: 'oauthbearer',
      tokenProvider: '/opt/walpurge-hooks/token.mjs',
    });
    expect(config.kafka.ssl).toMatchObject({
      ca: '/etc/kafka-tls/ca.pem',
      key: '/etc/kafka-tls/tls.key',
    });
    const secret = objects.find((object) => object.kind === 'Secret');
    expect(Object.keys((secret?.['stringData'] ?? {}) as object)).not.toContain('KAFKA_SASL_PASSWORD');
  });

  it('gives the flusher trigger the queue Redis of the same URL', () => {
    const { objects } = render('kafka with KEDA and monitoring');
    expect(checkKedaTriggers(objects)).toBe(2);
    const secret = objects.find((object) => object.kind === 'Secret');
    expect(secret?.['stringData']).toMatchObject({
      QUEUE_REDIS_URL: inlineCredentials.queueRedisUrl,
      QUEUE_REDIS_ADDRESS: 'queue.example.internal:6379',
      QUEUE_REDIS_PASSWORD: 'queue-secret',
    });
  });
});

describe('deploy/helm KEDA queue Redis', () => {
  const flusherTrigger = (objects: K8sObject[]): Record<string, string> | undefined =>
    objectsOfKind<IScaledObject>(objects, 'ScaledObject').find((scaled) =>
      nameOf(scaled).endsWith('-flusher'),
    )?.spec?.triggers[0]?.metadata as Record<string, string> | undefined;
  const auth = (objects: K8sObject[]): Record<string, string> =>
    Object.fromEntries(
      (
        (objects.find((object) => object.metadata.name.endsWith('-queue-redis'))?.['spec'] ?? {}) as {
          secretTargetRef?: { parameter: string; key: string }[];
        }
      ).secretTargetRef?.map((ref) => [ref.parameter, ref.key]) ?? [],
    );

  const secretData = (objects: K8sObject[]): unknown =>
    objects.find((object) => object.kind === 'Secret')?.['stringData'];

  it.each(queueRedisUrls)('reads user, decoded password, address, DB and TLS of $url', (queue) => {
    const { objects } = render(`kafka with KEDA, ${queue.what}`);
    expect(secretData(objects)).toMatchObject(queue.secret);
    expect(flusherTrigger(objects)).toMatchObject(queue.trigger);
    expect(auth(objects)).toEqual({
      address: 'QUEUE_REDIS_ADDRESS',
      username: 'QUEUE_REDIS_USERNAME',
      password: 'QUEUE_REDIS_PASSWORD',
    });
  });

  it('takes TLS and the DB index from credentials.queueRedis with an existing Secret', () => {
    const { objects } = render('kafka with KEDA, an existing Secret for a TLS queue Redis on DB 2');
    expect(objects.some((object) => object.kind === 'Secret')).toBe(false);
    expect(flusherTrigger(objects)).toMatchObject({ databaseIndex: '2', enableTLS: 'true' });
    expect(auth(objects)['username']).toBe('QUEUE_REDIS_USERNAME');
  });
});

describe('deploy/helm consistency observer (role inspector)', () => {
  const roles = (id: string): string[] =>
    walpurgePods(render(id).objects)
      .map((pod) => pod.role)
      .sort();
  const inspectorOf = (id: string): WalpurgePod => {
    const pod = walpurgePods(render(id).objects).find((candidate) => candidate.role === 'inspector');
    if (!pod) throw new Error(`${id}: no inspector Deployment`);
    return pod;
  };

  it('runs only with config.inspect, in the kafka topology', () => {
    expect(roles('kafka defaults (HPA)')).toEqual(['flusher', 'invalidator', 'listener']);
    expect(roles('kafka with the consistency observer')).toEqual([
      'flusher',
      'inspector',
      'invalidator',
      'listener',
    ]);
    // Embedded: the all-in-one process runs it; no Deployment of its own.
    expect(roles('embedded with the consistency observer (in-process)')).toEqual(['all']);
    const [all] = walpurgePods(render('embedded with the consistency observer (in-process)').objects);
    expect(all?.config.inspect).toMatchObject(inspect);
  });

  it('runs walpurge run --role inspector with the consumer probes, labels and one replica', () => {
    const pod = inspectorOf('kafka with the consistency observer');
    expect(nameOf(pod.deployment)).toBe('walpurge-inspector');
    expect(pod.container.args).toEqual([
      'run',
      '--config',
      '/etc/walpurge/walpurge.yaml',
      '--role',
      'inspector',
    ]);
    expect(pod.deployment.spec?.replicas).toBe(1);
    expect(pod.container.startupProbe?.httpGet?.path).toBe('/healthz');
    expect(pod.container.livenessProbe?.httpGet?.path).toBe('/healthz');
    // Role inspector alone is not ready while its consumer is not (docs/consistency.md).
    expect(pod.container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(pod.deployment.spec?.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'walpurge',
      'app.kubernetes.io/instance': 'walpurge',
      'app.kubernetes.io/component': 'inspector',
    });
    expect(podLabels(pod.deployment)).toMatchObject({
      'app.kubernetes.io/component': 'inspector',
      'app.kubernetes.io/part-of': 'walpurge',
    });
    expect(pod.container.resources).toEqual({
      requests: { cpu: '100m', memory: '192Mi' },
      limits: { memory: '512Mi' },
    });
    expect(pod.config.inspect).toMatchObject(inspect);
  });

  it("gets its own consumer group: <fullname>-inspector unless given, never the invalidators'", () => {
    expect(inspectorOf('kafka with the consistency observer').config.inspect?.consumerGroup).toBe(
      'walpurge-inspector',
    );
    const shop = inspectorOf('kafka with the consistency observer at its defaults, KEDA and monitoring');
    expect(shop.config.inspect?.consumerGroup).toBe('shop-walpurge-inspector');
    expect(shop.config.kafka?.consumerGroup).toBe('shop-walpurge-invalidator');
    expect(
      inspectorOf('kafka with the consistency observer in a group of its own choosing').config.inspect
        ?.consumerGroup,
    ).toBe('shop-consistency');
  });

  it('has a budget, is scraped like every pod and is never autoscaled', () => {
    const { objects } = render('kafka with the consistency observer at its defaults, KEDA and monitoring');
    const pod = inspectorOf('kafka with the consistency observer at its defaults, KEDA and monitoring');
    expect(pod.container.resources?.limits?.['memory'], 'inspector values apply').toBe('1Gi');
    const budgets = objectsOfKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget').filter((budget) =>
      selects(budget.spec?.selector?.matchLabels, podLabels(pod.deployment)),
    );
    expect(budgets.map((budget) => [nameOf(budget), budget.spec?.maxUnavailable])).toEqual([
      ['shop-walpurge-inspector', 1],
    ]);
    const services = objectsOfKind<IService>(objects, 'Service').filter((service) =>
      selects(service.spec?.selector, podLabels(pod.deployment)),
    );
    expect(services.map(nameOf)).toEqual(['shop-walpurge-metrics']);
    const targets = objectsOfKind<IScaledObject>(objects, 'ScaledObject').map(
      (scaled) => scaled.spec?.scaleTargetRef.name,
    );
    expect(targets.sort()).toEqual(['shop-walpurge-flusher', 'shop-walpurge-invalidator']);
    expect(objects.filter((object) => object.kind === 'HorizontalPodAutoscaler')).toEqual([]);
  });

  it('with an existing ConfigMap, runs when config.inspect switches it on, on that ConfigMap', () => {
    // The ConfigMap is not rendered: the roles are read from the Deployments' names.
    const names = (id: string): string[] => deployments(render(id).objects).map(nameOf).sort();
    expect(names('kafka with an existing ConfigMap')).toEqual([
      'shop-walpurge-flusher',
      'shop-walpurge-invalidator',
      'shop-walpurge-listener',
    ]);
    const { objects } = render('kafka with an existing ConfigMap and the observer switched on');
    expect(names('kafka with an existing ConfigMap and the observer switched on')).toContain(
      'shop-walpurge-inspector',
    );
    const inspector = deployments(objects).find(
      (deployment) => nameOf(deployment) === 'shop-walpurge-inspector',
    );
    expect(inspector?.spec?.template.spec?.containers[0]?.args).toContain('inspector');
    expect(
      inspector?.spec?.template.spec?.volumes?.find((volume) => volume.name === 'config')?.configMap?.name,
    ).toBe('shop-rules');
  });
});

describe('deploy/helm disruption budgets', () => {
  const budgets = (id: string): Record<string, unknown> =>
    Object.fromEntries(
      objectsOfKind<IPodDisruptionBudget>(render(id).objects, 'PodDisruptionBudget').map((budget) => [
        budget.metadata?.labels?.['app.kubernetes.io/component'],
        budget.spec?.minAvailable ?? `maxUnavailable ${budget.spec?.maxUnavailable}`,
      ]),
    );

  it('never block a drain: one listener or all-in-one pod gets no budget (minAvailable 1 would block it)', () => {
    expect(budgets('one replica of every role')).toEqual({
      invalidator: 'maxUnavailable 1',
      flusher: 'maxUnavailable 1',
    });
    expect(budgets('embedded, one replica')).toEqual({});
  });

  it('keep one of an active/standby pair', () => {
    expect(budgets('kafka defaults (HPA)')).toMatchObject({ listener: 1 });
    expect(budgets('embedded')).toEqual({ all: 1 });
  });
});

describe('deploy/helm values', () => {
  const id = 'kafka with SASL/TLS, KEDA, existing Secret, no flusher, placement, extra env and volumes';

  it('applies per-role and shared placement, env, volumes, resources, probes and annotations', () => {
    const pods = walpurgePods(render(id).objects);
    expect(pods.map((pod) => pod.role).sort()).toEqual(['invalidator', 'listener']);
    for (const pod of pods) {
      const spec = pod.deployment.spec?.template.spec;
      expect(spec?.tolerations?.[0]?.key).toBe('dedicated');
      expect(spec?.nodeSelector).toEqual({ 'kubernetes.io/arch': 'amd64' });
      expect(pod.container.env?.some((variable) => variable.name === 'LOG_LEVEL')).toBe(true);
      expect(pod.container.volumeMounts?.some((mount) => mount.mountPath === '/etc/kafka-ca')).toBe(true);
      expect(spec?.volumes?.some((volume) => volume.secret?.secretName === 'kafka-ca')).toBe(true);
      expect(pod.container.envFrom?.[0]?.secretRef?.name).toBe('blog-cdn');
      expect(
        pod.container.env?.find((variable) => variable.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef
          ?.name,
      ).toBe('blog-secrets');
      expect(pod.config.flusher, 'config.flusher: null removes the flusher').toBeUndefined();
      expect(pod.config.log.level).toBe('debug');
    }
    const invalidator = pods.find((pod) => pod.role === 'invalidator');
    expect(invalidator?.container.resources?.limits?.['memory']).toBe('2Gi');
    expect(invalidator?.deployment.spec?.template.spec?.affinity).toEqual({ nodeAffinity: {} });
    expect(invalidator?.deployment.spec?.template.metadata?.annotations?.['example.com/team']).toBe('cdc');
    const listener = pods.find((pod) => pod.role === 'listener');
    expect(listener?.container.startupProbe?.failureThreshold).toBe(60);
    expect(listener?.container.startupProbe?.httpGet?.path, 'probe values merge').toBe('/healthz');
    expect(listener?.deployment.spec?.template.spec?.affinity?.podAntiAffinity).toBeDefined();
    expect(
      render(id).objects.some((object) => object.kind === 'Secret'),
      'existingSecret: none rendered',
    ).toBe(false);
  });

  it('mounts an existing ConfigMap instead of rendering one', () => {
    const { objects } = render('embedded with monitoring and an existing ConfigMap');
    expect(
      objects.some((object) => object.kind === 'ConfigMap' && object.metadata.name.endsWith('-config')),
    ).toBe(false);
    for (const deployment of deployments(objects)) {
      const volume = deployment.spec?.template.spec?.volumes?.find(
        (candidate) => candidate.name === 'config',
      );
      expect(volume?.configMap?.name).toBe('shop-rules');
      expect(deployment.spec?.template.metadata?.annotations?.['checksum/config']).toBeUndefined();
    }
  });

  it('rolls every Deployment when a rule changes (checksum/config), and only then', () => {
    const annotations = (caseId: string): Map<string, string | undefined> =>
      new Map(
        deployments(render(caseId).objects).map((deployment: IDeployment) => [
          nameOf(deployment),
          deployment.spec?.template.metadata?.annotations?.['checksum/config'],
        ]),
      );
    const before = annotations('kafka defaults (HPA)');
    const after = annotations('kafka defaults, one rule changed');
    expect(before.size).toBe(3);
    for (const [name, checksum] of before) {
      expect(checksum, name).toMatch(/^[0-9a-f]{64}$/);
      expect(after.get(name), `${name} rolls`).not.toBe(checksum);
    }
    // Same config, other values changed: the pods' spec may change, but not walpurge.yaml's checksum.
    expect(annotations('kafka defaults, values outside config changed')).toEqual(before);
  });

  it.each(refused)('refuses $id with a clear error, in helm template and helm lint', (refusal) => {
    const result = renders.get(refusal.id);
    expect(result?.manifest).toBeUndefined();
    expect(result?.templateError).toMatch(refusal.error);
    // Lint fails on schema errors, and only logs a template's `fail`.
    const lint = result?.lint;
    if (!lint || 'error' in lint) throw new Error(`${refusal.id}: no lint result`);
    const reported = [...lint.messages.filter((message) => message.startsWith('[ERROR]')), ...lint.failures];
    expect(reported.join('\n')).toMatch(refusal.error);
  });

  it('never prints the queue Redis password of a URL it refuses', () => {
    const result = renders.get('a queue Redis URL with a bad %-escape in its password');
    const lint = result?.lint;
    if (!result?.templateError || !lint || 'error' in lint) throw new Error('no refusal rendered');
    const output = [result.templateError, ...lint.messages, ...lint.failures].join('\n');
    expect(output).toMatch(/credentials\.queueRedisUrl/);
    expect(output).not.toContain('zzword');
  });
});

describe('deploy/helm monitoring', () => {
  let metrics: Awaited<ReturnType<typeof registeredMetrics>>;
  beforeAll(async () => {
    metrics = await registeredMetrics();
  });

  it('alerts on its own release only: the Kustomize rules with an instance matcher on every selector', () => {
    const { objects } = render('two releases: shop');
    const [rule] = objectsOfKind<IPrometheusRule>(objects, 'PrometheusRule');
    const exprs = (value: IPrometheusRule | undefined): string[] =>
      (value?.spec.groups ?? []).flatMap((group) => group.rules ?? []).map((alert) => String(alert.expr));
    const service = objectsOfKind<IService>(objects, 'Service').map(nameOf);
    expect(service).toEqual(['shop-walpurge-metrics']);
    const expected = sourceAlertRules()
      .map(({ expr }) => String(expr))
      .map((expr) =>
        isAcrossInstallations(expr)
          ? expr
          : releaseExpression(expr)
              .replaceAll(RELEASE_PLACEHOLDER, 'shop')
              .replaceAll(METRICS_SERVICE_PLACEHOLDER, service[0] ?? ''),
      );
    expect(exprs(rule)).toEqual(expected);
    // The alerts that add up across installations on purpose (helm-chart-files.test.ts lists them)
    // are the same in every release; all others see the release's own series only.
    for (const expr of exprs(rule).filter((candidate) => !isAcrossInstallations(candidate))) {
      const facts = parsePromql(expr);
      expect(facts.errors, expr).toEqual([]);
      for (const metric of facts.metrics) {
        if (metric !== 'up')
          expect(baseMetricName(metric, metrics), `${metric} is registered by the code`).toBeDefined();
        const instance = facts.matchers.filter(
          (matcher) => matcher.metric === metric && matcher.label === INSTANCE_LABEL,
        );
        expect(
          instance.map((matcher) => `${matcher.op}${matcher.value}`),
          `${metric} in ${expr}`,
        ).toContain('=shop');
      }
      for (const matcher of facts.matchers.filter((candidate) => candidate.label === 'service'))
        expect(service).toContain(matcher.value);
    }
  });

  it('labels every scraped series with its release (podTargetLabels) and ships the dashboard', () => {
    const { objects } = render('two releases: shop');
    const [monitor] = objectsOfKind<IServiceMonitor>(objects, 'ServiceMonitor');
    expect(monitor?.spec.podTargetLabels).toEqual([
      'app.kubernetes.io/instance',
      'app.kubernetes.io/part-of',
    ]);
    for (const deployment of deployments(objects))
      expect(podLabels(deployment)['app.kubernetes.io/part-of']).toBe('walpurge');
    expect(monitor?.spec.selector.matchLabels?.['app.kubernetes.io/instance']).toBe('shop');
    const dashboard = objects.find(
      (object) => object.kind === 'ConfigMap' && object.metadata.name === 'shop-walpurge-dashboard',
    );
    const data = (dashboard?.['data'] ?? {}) as Record<string, string>;
    expect(data['walpurge.json']).toBe(readRepoFile(`${CHART_DIR}/files/walpurge.json`));
    expect(dashboard?.metadata['labels']).toMatchObject({ grafana_dashboard: '1' });
  });
});

describe('deploy/helm two releases in one namespace', () => {
  const shop = (): K8sObject[] => render('two releases: shop').objects;
  const blog = (): K8sObject[] => render('two releases: blog').objects;

  it('use their own slot, publication, topics and consumer group by default, and the queues they are given', () => {
    const names = (objects: K8sObject[]): Record<string, string | undefined> => {
      const config = walpurgePods(objects).find((pod) => pod.role === 'invalidator')?.config;
      return {
        slot: config?.database?.slot,
        publication: config?.database?.publication,
        topic: config?.kafka?.topic,
        cdnTopic: config?.kafka?.cdnTopic,
        deadLetterTopic: config?.kafka?.deadLetterTopic,
        consumerGroup: config?.kafka?.consumerGroup,
        queue: config?.flusher?.keyPrefix,
      };
    };
    // PostgreSQL slot and publication names take [a-z0-9_] only: the release's '-' becomes '_'.
    expect(names(shop())).toEqual({
      slot: 'shop_walpurge',
      publication: 'shop_walpurge',
      topic: 'shop-walpurge.changes',
      cdnTopic: 'shop-walpurge.cdn',
      deadLetterTopic: 'shop-walpurge.dlq',
      consumerGroup: 'shop-walpurge-invalidator',
      queue: 'shop:wb:',
    });
    const blogNames = names(blog());
    for (const [key, value] of Object.entries(names(shop()))) expect(blogNames[key], key).not.toBe(value);
  });

  it('render no colliding object names', () => {
    const ids = (objects: K8sObject[]): string[] =>
      objects.map((object) => `${object.kind}/${object.metadata.name}`);
    const shared = ids(shop()).filter((id) => ids(blog()).includes(id));
    expect(shared).toEqual([]);
  });

  it("never select each other's pods (Deployments, Services, budgets, autoscalers) or Services (ServiceMonitors)", () => {
    for (const [own, other] of [
      [shop(), blog()],
      [blog(), shop()],
    ] as const) {
      const otherPods = deployments(other).map(podLabels);
      const otherServices = objectsOfKind<IService>(other, 'Service').map(
        (service) => service.metadata?.labels ?? {},
      );
      const selectors = [
        ...deployments(own).map((deployment) => deployment.spec?.selector.matchLabels),
        ...objectsOfKind<IService>(own, 'Service').map((service) => service.spec?.selector),
        ...objectsOfKind<IPodDisruptionBudget>(own, 'PodDisruptionBudget').map(
          (budget) => budget.spec?.selector?.matchLabels,
        ),
      ];
      expect(selectors.length).toBeGreaterThan(5);
      for (const selector of selectors)
        for (const labels of otherPods)
          expect(selects(selector, labels), JSON.stringify(selector)).toBe(false);
      for (const monitor of objectsOfKind<IServiceMonitor>(own, 'ServiceMonitor'))
        for (const labels of otherServices)
          expect(selects(monitor.spec.selector.matchLabels, labels)).toBe(false);
      const ownDeployments = new Set(deployments(own).map(nameOf));
      for (const scaled of objectsOfKind<IScaledObject>(own, 'ScaledObject'))
        expect(ownDeployments).toContain(scaled.spec?.scaleTargetRef.name);
    }
  });

  it('alert on disjoint series', () => {
    const instances = (objects: K8sObject[]): Set<string> =>
      new Set(
        objectsOfKind<IPrometheusRule>(objects, 'PrometheusRule')
          .flatMap((rule) => rule.spec.groups ?? [])
          .flatMap((group) => group.rules ?? [])
          .flatMap((alert) => parsePromql(String(alert.expr)).matchers)
          .filter((matcher) => matcher.label === INSTANCE_LABEL)
          .map((matcher) => matcher.value),
      );
    expect(instances(shop())).toEqual(new Set(['shop']));
    expect(instances(blog())).toEqual(new Set(['blog']));
  });
});
