import { shutdownDeadlineMs } from 'walpurge';
/**
 * deploy/k8s rendered offline (kustomize semantics re-implemented in ./kustomize.ts), every object
 * validated against the Kubernetes schemas, and every image, port, probe path, role, env var and
 * config key checked against the code that will run.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HttpConfig, parseConfigText, type WalpurgeConfig } from '@walpurge/config';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { renderKustomization, type K8sObject, type Rendered } from './kustomize.js';
import { validateAgainstSchema } from './k8s-schemas.js';
import { cliEnvVars, parseInvocation, runRoles } from './cli-spec.js';
import {
  deployments,
  memoryBytes,
  nameOf,
  objectsOfKind,
  podLabels,
  probePort,
  selects,
  walpurgeContainer,
} from './pod-spec.js';
import { writeBehindLayout } from '@walpurge/write-behind';
import { cliPackage, configEnvReferences, opsServerPaths, productionSources, repoPath } from './workspace.js';

interface Variant {
  name: string;
  dir: string;
  topology: 'kafka' | 'embedded';
  /** Replaces the overlay's `components` (optional components rendered too). */
  components?: string[];
}

const variants: Variant[] = [
  { name: 'kafka overlay', dir: 'overlays/kafka', topology: 'kafka' },
  {
    name: 'kafka overlay with KEDA instead of HPA',
    dir: 'overlays/kafka',
    topology: 'kafka',
    components: ['../../components/keda'],
  },
  {
    name: 'kafka overlay with monitoring',
    dir: 'overlays/kafka',
    topology: 'kafka',
    components: ['../../components/hpa', '../../components/monitoring'],
  },
  { name: 'embedded overlay', dir: 'overlays/embedded', topology: 'embedded' },
  {
    name: 'embedded overlay with monitoring',
    dir: 'overlays/embedded',
    topology: 'embedded',
    components: ['../../components/monitoring'],
  },
];

const k8sDir = repoPath('deploy/k8s');
const render = (variant: Variant): Rendered =>
  renderKustomization(
    `${k8sDir}/${variant.dir}`,
    variant.components ? { components: variant.components } : {},
  );

/** Placeholder values for Secret keys, shaped like the real thing so the config schema accepts them. */
const secretPlaceholders: Record<string, string> = {
  DATABASE_URL: 'postgres://walpurge:secret@db.example.internal:5432/app',
  REDIS_URL: 'redis://cache.example.internal:6379',
  QUEUE_REDIS_URL: 'redis://queue.example.internal:6379',
};

function configMapData(objects: readonly K8sObject[], name: string): Record<string, string> {
  const configMap = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === name);
  if (!configMap) throw new Error(`ConfigMap ${name} is referenced but not rendered`);
  return (configMap['data'] ?? {}) as Record<string, string>;
}

/** The environment the container would see: literals, ConfigMap keys, Secret keys as placeholders. */
function containerEnvironment(
  objects: readonly K8sObject[],
  container: IContainer,
): Map<string, { value: string; from: string }> {
  const env = new Map<string, { value: string; from: string }>();
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) {
      for (const [key, value] of Object.entries(configMapData(objects, source.configMapRef.name ?? ''))) {
        env.set(key, { value, from: `configMap ${source.configMapRef.name}` });
      }
    }
    // Optional secrets (CDN tokens) add keys the operator chooses; nothing is assumed about them.
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env.set(variable.name, { value: variable.value, from: 'literal' });
    else if (variable.valueFrom?.secretKeyRef) {
      const key = variable.valueFrom.secretKeyRef.key;
      env.set(variable.name, {
        value: secretPlaceholders[key] ?? 'placeholder',
        from: `secret ${variable.valueFrom.secretKeyRef.name}`,
      });
    } else if (variable.valueFrom?.configMapKeyRef) {
      const ref = variable.valueFrom.configMapKeyRef;
      const value = configMapData(objects, ref.name ?? '')[ref.key];
      if (value === undefined)
        throw new Error(`${variable.name}: key ${ref.key} missing in ConfigMap ${ref.name}`);
      env.set(variable.name, { value, from: `configMap ${ref.name}` });
    }
  }
  return env;
}

/** The config file the container reads: its --config path resolved through the volume mounts. */
function mountedConfig(
  objects: readonly K8sObject[],
  deployment: IDeployment,
  configPath: string,
): { text: string; file: string } {
  const container = walpurgeContainer(deployment);
  const mount = (container.volumeMounts ?? []).find((candidate) =>
    configPath.startsWith(`${candidate.mountPath}/`),
  );
  if (!mount) throw new Error(`${nameOf(deployment)}: --config ${configPath} is not under any volume mount`);
  const volume = deployment.spec?.template.spec?.volumes?.find((candidate) => candidate.name === mount.name);
  const configMapName = volume?.configMap?.name;
  if (!configMapName) throw new Error(`${nameOf(deployment)}: volume ${mount.name} is not a ConfigMap`);
  const key = configPath.slice(mount.mountPath.length + 1);
  const text = configMapData(objects, configMapName)[key];
  if (text === undefined)
    throw new Error(`${nameOf(deployment)}: ConfigMap ${configMapName} has no key ${key}`);
  return { text, file: `ConfigMap ${configMapName}/${key}` };
}

interface WalpurgePod {
  deployment: IDeployment;
  container: IContainer;
  role: string;
  config: WalpurgeConfig;
  configText: string;
  env: Map<string, { value: string; from: string }>;
}

function walpurgePods(objects: readonly K8sObject[]): WalpurgePod[] {
  return deployments(objects).map((deployment) => {
    const container = walpurgeContainer(deployment);
    const argv = [...(container.command ?? []), ...(container.args ?? [])];
    const invocation = parseInvocation(argv);
    expect(invocation.command, `${nameOf(deployment)} runs walpurge run`).toBe('run');
    const role = invocation.options['role'];
    const configPath = invocation.options['config'];
    if (typeof role !== 'string' || typeof configPath !== 'string') {
      throw new Error(`${nameOf(deployment)}: --role and --config must be explicit in the manifest`);
    }
    const env = containerEnvironment(objects, container);
    const { text, file } = mountedConfig(objects, deployment, configPath);
    const values = Object.fromEntries([...env].map(([name, entry]) => [name, entry.value]));
    const { config } = parseConfigText(text, file, { env: values });
    return { deployment, container, role, config, configText: text, env };
  });
}

/** Every `…stopTimeoutMs` / `…drainTimeoutMs` / `…shutdownTimeoutMs` in the parsed config (defaults included). */
function drainTimeoutsMs(config: WalpurgeConfig): { path: string; ms: number }[] {
  const found: { path: string; ms: number }[] = [];
  const visit = (value: unknown, path: string): void => {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if (/(stop|drain|shutdown)TimeoutMs$/.test(key) && typeof child === 'number')
        found.push({ path: `${path}${key}`, ms: child });
      else visit(child, `${path}${key}.`);
    }
  };
  visit(config, '');
  return found;
}

describe.each(variants)('deploy/k8s $name', (variant) => {
  const rendered = render(variant);
  const { objects } = rendered;

  it('renders objects that all match their Kubernetes schema', () => {
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) {
      expect(() => validateAgainstSchema(object), `${object.kind}/${object.metadata.name}`).not.toThrow();
    }
    const ids = objects.map((object) => `${object.kind}/${object.metadata.name}`);
    expect(new Set(ids).size, 'object names are unique').toBe(ids.length);
  });

  it('runs each container as a role `walpurge run` accepts, with a config the loader accepts', () => {
    const roles = runRoles();
    const pods = walpurgePods(objects);
    expect(pods.length).toBeGreaterThan(0);
    for (const pod of pods) {
      expect(roles, nameOf(pod.deployment)).toContain(pod.role);
      // The role decides the transport: `all` is the embedded inline mode, split roles talk via Kafka.
      expect(pod.config.transport, `${nameOf(pod.deployment)} (role ${pod.role})`).toBe(
        pod.role === 'all' ? 'inline' : 'kafka',
      );
      if (pod.config.transport === 'kafka') expect(pod.config.kafka, 'kafka section').toBeDefined();
    }
  });

  it('uses the image built from deploy/Dockerfile, tagged with the CLI version', () => {
    const version = cliPackage().manifest.version;
    for (const deployment of deployments(objects)) {
      expect(walpurgeContainer(deployment).image, nameOf(deployment)).toMatch(
        new RegExp(`(^|/)walpurge:${version?.replace(/\./g, '\\.')}$`),
      );
    }
  });

  it('wires ports and probes to the ops server', () => {
    const paths = opsServerPaths();
    expect(paths).toEqual(expect.arrayContaining(['/metrics', '/healthz', '/readyz']));
    const defaultPort = HttpConfig.parse({}).port;
    for (const pod of walpurgePods(objects)) {
      const name = nameOf(pod.deployment);
      const httpPort = pod.env.has('WALPURGE_HTTP_PORT')
        ? Number(pod.env.get('WALPURGE_HTTP_PORT')?.value)
        : pod.config.http.port;
      expect(httpPort, `${name}: the documented default port`).toBe(defaultPort);
      const metricsPort = pod.container.ports?.find((port) => port.name === 'metrics');
      expect(metricsPort?.containerPort, `${name}: containerPort 'metrics' = http.port`).toBe(httpPort);
      const { livenessProbe, readinessProbe, startupProbe } = pod.container;
      if (!livenessProbe || !readinessProbe || !startupProbe)
        throw new Error(`${name}: liveness, readiness and startup probes are required`);
      expect(livenessProbe.httpGet?.path, `${name} liveness`).toBe('/healthz');
      expect(startupProbe.httpGet?.path, `${name} startup`).toBe('/healthz');
      // The listener's /readyz means "streaming the slot", which its standby by design is not: for
      // roles that include the listener, readiness must not wait for it (see base/listener.yaml).
      const readiness = pod.role === 'listener' || pod.role === 'all' ? '/healthz' : '/readyz';
      expect(readinessProbe.httpGet?.path, `${name} readiness`).toBe(readiness);
      for (const probe of [livenessProbe, readinessProbe, startupProbe]) {
        expect(paths, name).toContain(probe.httpGet?.path);
        expect(probePort(pod.container, probe), `${name}: probe port`).toBe(httpPort);
      }
    }
  });

  it('sets only environment variables the code reads, and every ${VAR} the config needs', () => {
    const known = cliEnvVars();
    const sources = productionSources();
    const readByCode = (name: string): boolean =>
      sources.some(({ text }) => new RegExp(`\\b${name}\\b`).test(text));
    for (const pod of walpurgePods(objects)) {
      const name = nameOf(pod.deployment);
      const referenced = configEnvReferences(pod.configText);
      const referencedNames = new Set(referenced.map((reference) => reference.name));
      for (const [variable, entry] of pod.env) {
        const used = referencedNames.has(variable) || known.has(variable) || readByCode(variable);
        expect(
          used,
          `${name}: ${variable} (from ${entry.from}) is read by neither the config nor the code`,
        ).toBe(true);
      }
      for (const reference of referenced.filter((candidate) => !candidate.hasDefault)) {
        expect(pod.env.has(reference.name), `${name}: the config needs \${${reference.name}}`).toBe(true);
      }
    }
  });

  it('gives every pod a locked-down, read-only-root security context and resource requests', () => {
    for (const pod of walpurgePods(objects)) {
      const name = nameOf(pod.deployment);
      const podSpec = pod.deployment.spec?.template.spec;
      const container = pod.container.securityContext;
      expect(podSpec?.securityContext?.runAsNonRoot ?? container?.runAsNonRoot, `${name} runAsNonRoot`).toBe(
        true,
      );
      expect(
        podSpec?.securityContext?.seccompProfile?.type ?? container?.seccompProfile?.type,
        `${name} seccomp`,
      ).toBe('RuntimeDefault');
      expect(container?.readOnlyRootFilesystem, `${name} readOnlyRootFilesystem`).toBe(true);
      expect(container?.allowPrivilegeEscalation, `${name} allowPrivilegeEscalation`).toBe(false);
      expect(container?.capabilities?.drop, `${name} drops all capabilities`).toContain('ALL');
      // The only writable path is /tmp (TMPDIR in the image), an emptyDir.
      const tmp = pod.container.volumeMounts?.find((mount) => mount.mountPath === '/tmp');
      const tmpVolume = podSpec?.volumes?.find((volume) => volume.name === tmp?.name);
      expect(tmpVolume?.emptyDir, `${name}: /tmp is an emptyDir`).toBeDefined();
      const resources = pod.container.resources;
      expect(resources?.requests?.['cpu'], `${name} cpu request`).toBeDefined();
      expect(resources?.requests?.['memory'], `${name} memory request`).toBeDefined();
      const limit = resources?.limits?.['memory'];
      const request = resources?.requests?.['memory'];
      expect(limit, `${name} memory limit`).toBeDefined();
      if (limit !== undefined && request !== undefined) {
        expect(memoryBytes(limit), `${name}: limit ≥ request`).toBeGreaterThanOrEqual(memoryBytes(request));
      }
      expect(podSpec?.automountServiceAccountToken, `${name}: no API token`).toBe(false);
    }
  });

  it('lets pods drain before SIGKILL: the grace period outlasts every drain timeout of the config', () => {
    for (const pod of walpurgePods(objects)) {
      const grace = pod.deployment.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
      const timeouts = drainTimeoutsMs(pod.config);
      expect(timeouts.length, 'the config has drain timeouts to compare with').toBeGreaterThan(0);
      // Drains of a process's services run one after the other (reverse start order), plus slack
      // for closing connections and the last acknowledgement.
      const needed = timeouts.reduce((sum, timeout) => sum + timeout.ms, 0) / 1000 + 10;
      expect(
        grace,
        `${nameOf(pod.deployment)}: ${timeouts.map((t) => `${t.path}=${t.ms}`).join(', ')}`,
      ).toBeGreaterThanOrEqual(needed);
      // And past the process's own hard deadline, so walpurge gives up (and logs why) before the
      // kubelet's SIGKILL, with a few seconds left for the exit itself.
      const deadline = shutdownDeadlineMs(pod.config) / 1000;
      expect(
        grace,
        `${nameOf(pod.deployment)}: walpurge run exits after ${deadline} s`,
      ).toBeGreaterThanOrEqual(deadline + 5);
    }
  });

  it('references only ConfigMaps it renders, with the content hash in their names', () => {
    expect([...rendered.generatedNames.keys()].sort()).toEqual(['walpurge-config', 'walpurge-env']);
    for (const [logical, hashed] of rendered.generatedNames)
      expect(hashed).toMatch(new RegExp(`^${logical}-[0-9a-f]{10}$`));
    for (const deployment of deployments(objects)) {
      const spec = deployment.spec?.template.spec;
      const names = [
        ...(spec?.volumes ?? []).map((volume) => volume.configMap?.name),
        ...(spec?.containers ?? []).flatMap((container) =>
          (container.envFrom ?? []).map((source) => source.configMapRef?.name),
        ),
      ].filter((value): value is string => value !== undefined);
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) {
        expect(
          objects.some((object) => object.kind === 'ConfigMap' && object.metadata.name === name),
          `${nameOf(deployment)} → ${name}`,
        ).toBe(true);
      }
      expect(spec?.serviceAccountName).toBeDefined();
      expect(
        objects.some(
          (object) => object.kind === 'ServiceAccount' && object.metadata.name === spec?.serviceAccountName,
        ),
      ).toBe(true);
    }
  });

  it('labels every pod with its installation (app.kubernetes.io/instance), which metrics and alerts aggregate by', () => {
    expect(deployments(objects).length).toBeGreaterThan(0);
    for (const deployment of deployments(objects))
      expect(podLabels(deployment)['app.kubernetes.io/instance'], nameOf(deployment)).toBe('walpurge');
  });

  it('gives every Deployment exactly one disruption budget, and scrapes them all through one Service', () => {
    const budgets = objectsOfKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget');
    const services = objectsOfKind<IService>(objects, 'Service');
    for (const deployment of deployments(objects)) {
      const labels = podLabels(deployment);
      const matching = budgets.filter((budget) => selects(budget.spec?.selector?.matchLabels, labels));
      expect(matching.map(nameOf), `${nameOf(deployment)} budgets`).toHaveLength(1);
      const metricsServices = services.filter((service) => selects(service.spec?.selector, labels));
      expect(metricsServices.length, `${nameOf(deployment)} is behind the metrics Service`).toBe(1);
      const port = metricsServices[0]?.spec?.ports?.find((candidate) => candidate.name === 'metrics');
      const targetPort = port?.targetPort;
      const containerPorts = walpurgeContainer(deployment).ports ?? [];
      expect(
        containerPorts.some(
          (candidate) => candidate.name === targetPort || candidate.containerPort === targetPort,
        ),
        `${nameOf(deployment)} exposes the Service's targetPort ${String(targetPort)}`,
      ).toBe(true);
    }
    for (const budget of budgets) {
      const selected = deployments(objects).filter((deployment) =>
        selects(budget.spec?.selector?.matchLabels, podLabels(deployment)),
      );
      expect(selected.length, `${nameOf(budget)} selects a Deployment`).toBe(1);
    }
  });

  it('autoscales only consumer roles, within the topic partitions, with one autoscaler per Deployment', () => {
    const hpas = objectsOfKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler');
    const scaled = objectsOfKind<IScaledObject>(objects, 'ScaledObject');
    const targets = [
      ...hpas.map((hpa) => ({
        target: hpa.spec?.scaleTargetRef.name,
        max: hpa.spec?.maxReplicas,
        by: nameOf(hpa),
      })),
      ...scaled.map((object) => ({
        target: object.spec?.scaleTargetRef.name,
        max: object.spec?.maxReplicaCount,
        by: nameOf(object),
      })),
    ];
    const seen = new Set<string>();
    const pods = walpurgePods(objects);
    for (const { target, max, by } of targets) {
      const pod = pods.find((candidate) => nameOf(candidate.deployment) === target);
      if (!pod) throw new Error(`${by} targets ${String(target)}, which is not rendered`);
      expect(seen.has(target ?? ''), `${String(target)} has two autoscalers`).toBe(false);
      seen.add(target ?? '');
      expect(['invalidator', 'flusher'], `${by}: the ${pod.role} role is not autoscaled`).toContain(pod.role);
      if (pod.role === 'invalidator') {
        expect(max, `${by}: no more consumers than kafka.partitions`).toBeLessThanOrEqual(
          pod.config.kafka?.partitions ?? 0,
        );
      }
    }
  });
});

describe.each(variants.filter((variant) => variant.topology === 'kafka'))(
  'deploy/k8s $name (Kafka topology)',
  (variant) => {
    const { objects } = render(variant);

    it('runs each role apart: an active/standby listener pair and scaled consumers', () => {
      const pods = walpurgePods(objects);
      const roles = runRoles().filter((role) => role !== 'all');
      expect(pods.map((pod) => pod.role).sort()).toEqual([...roles].sort());
      const listener = pods.find((pod) => pod.role === 'listener');
      expect(listener?.deployment.spec?.replicas, 'active + standby').toBe(2);
      // A rollout must start the new pod before stopping an old one, so a standby is always there.
      expect(listener?.deployment.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    });

    it('points KEDA triggers at the topic, consumer group and queue the config uses', () => {
      const pods = walpurgePods(objects);
      const scaledObjects = objectsOfKind<IScaledObject>(objects, 'ScaledObject');
      for (const scaledObject of scaledObjects) {
        const target = pods.find((pod) => nameOf(pod.deployment) === scaledObject.spec?.scaleTargetRef.name);
        if (!target) throw new Error(`${nameOf(scaledObject)}: no target`);
        for (const trigger of scaledObject.spec?.triggers ?? []) {
          if (trigger.type === 'kafka') {
            const kafka = target.config.kafka;
            expect(trigger.metadata['topic']).toBe(kafka?.topic);
            expect(trigger.metadata['consumerGroup']).toBe(kafka?.consumerGroup);
            expect(trigger.metadata['bootstrapServers']).toBe(target.env.get('KAFKA_BROKERS')?.value);
          } else if (trigger.type === 'redis') {
            const flusher = target.config.flusher;
            if (!flusher) throw new Error(`${nameOf(scaledObject)}: the target has no flusher section`);
            // BullMQ's wait list: <prefix>:<queue>:wait, with the prefix the client and flusher share.
            expect(trigger.metadata['listName']).toBe(
              `${writeBehindLayout(flusher.keyPrefix).bullPrefix}:${flusher.queueName}:wait`,
            );
            expect(
              trigger.authenticationRef?.name,
              'queue Redis address from a TriggerAuthentication',
            ).toBeDefined();
            expect(
              objects.some(
                (object) =>
                  object.kind === 'TriggerAuthentication' &&
                  object.metadata.name === trigger.authenticationRef?.name,
              ),
            ).toBe(true);
          } else throw new Error(`${nameOf(scaledObject)}: unexpected trigger ${trigger.type}`);
        }
      }
      if (variant.components?.some((component) => component.endsWith('/keda')))
        expect(scaledObjects.length).toBe(2);
    });
  },
);

describe.each(variants.filter((variant) => variant.topology === 'embedded'))(
  'deploy/k8s $name (embedded topology)',
  (variant) => {
    const { objects } = render(variant);

    it('runs every role in one active/standby Deployment with the inline transport', () => {
      const pods = walpurgePods(objects);
      expect(pods.map((pod) => pod.role)).toEqual(['all']);
      expect(pods[0]?.config.transport).toBe('inline');
      expect(pods[0]?.deployment.spec?.replicas).toBe(2);
      expect(pods[0]?.deployment.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
      expect(
        objects.filter(
          (object) => object.kind === 'HorizontalPodAutoscaler' || object.kind === 'ScaledObject',
        ),
      ).toEqual([]);
    });
  },
);

describe.each(
  variants.filter((variant) => variant.components?.some((component) => component.endsWith('/monitoring'))),
)('deploy/k8s $name (monitoring)', (variant) => {
  const { objects } = render(variant);

  it('scrapes the metrics Service at the ops server path', () => {
    const monitors = objectsOfKind<IServiceMonitor>(objects, 'ServiceMonitor');
    expect(monitors).toHaveLength(1);
    const services = objectsOfKind<IService>(objects, 'Service');
    for (const monitor of monitors) {
      const selected = services.filter((service) =>
        selects(monitor.spec.selector.matchLabels, service.metadata?.labels ?? {}),
      );
      expect(selected.map(nameOf)).toEqual(['walpurge-metrics']);
      // Every series gets app_kubernetes_io_instance, the label alerts and the dashboard aggregate by.
      expect(monitor.spec.podTargetLabels).toContain('app.kubernetes.io/instance');
      // …and app_kubernetes_io_part_of, by which alerts and the dashboard select walpurge's `up`
      // without naming the Service; every pod must carry it.
      expect(monitor.spec.podTargetLabels).toContain('app.kubernetes.io/part-of');
      for (const deployment of deployments(objects))
        expect(
          deployment.spec?.template.metadata?.labels?.['app.kubernetes.io/part-of'],
          nameOf(deployment),
        ).toBe('walpurge');
      expect(monitor.spec.endpoints?.length).toBeGreaterThan(0);
      for (const endpoint of monitor.spec.endpoints ?? []) {
        expect(opsServerPaths()).toContain(endpoint.path);
        expect(selected[0]?.spec?.ports?.some((port) => port.name === endpoint.port)).toBe(true);
      }
    }
  });
});

describe('deploy/k8s layout', () => {
  it.each(['overlays/kafka', 'overlays/embedded'])(
    '%s: editing a rule or a setting rolls every Deployment (the ConfigMap hash is the checksum)',
    (overlay) => {
      const copy = mkdtempSync(join(tmpdir(), 'walpurge-k8s-'));
      try {
        cpSync(k8sDir, copy, { recursive: true });
        const templates = (): Map<string, string> =>
          new Map(
            deployments(renderKustomization(`${copy}/${overlay}`).objects).map((deployment) => [
              nameOf(deployment),
              JSON.stringify(deployment.spec?.template),
            ]),
          );
        const before = templates();
        expect(before.size).toBeGreaterThan(0);
        const rulesFile = `${copy}/base/walpurge.yaml`;
        writeFileSync(rulesFile, readFileSync(rulesFile, 'utf8').replace("'post:{id}'", "'post:v2:{id}'"));
        const afterRule = templates();
        for (const [name, template] of before)
          expect(afterRule.get(name), `${name} rolls on a rule change`).not.toBe(template);
        // A setting in the walpurge-env generator (here LOG_LEVEL) rolls them too.
        const kustomization = `${copy}/base/kustomization.yaml`;
        writeFileSync(
          kustomization,
          readFileSync(kustomization, 'utf8').replace('LOG_LEVEL=info', 'LOG_LEVEL=debug'),
        );
        const afterSetting = templates();
        for (const [name, template] of afterRule)
          expect(afterSetting.get(name), `${name} rolls on a setting change`).not.toBe(template);
      } finally {
        rmSync(copy, { recursive: true, force: true });
      }
    },
  );

  it('has a rendered test variant for every overlay and component', () => {
    const overlays = readdirSync(`${k8sDir}/overlays`).map((name) => `overlays/${name}`);
    expect(overlays.sort()).toEqual([...new Set(variants.map((variant) => variant.dir))].sort());
    const used = new Set(
      variants.flatMap((variant) => variant.components ?? []).map((path) => path.replace('../../', '')),
    );
    for (const component of readdirSync(`${k8sDir}/components`))
      expect(used, component).toContain(`components/${component}`);
  });

  it('renders strictly like kustomize: refuses what kustomize refuses and fields it does not implement', () => {
    const dir = mkdtempSync(join(tmpdir(), 'walpurge-kustomize-'));
    try {
      const deployment = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n';
      writeFileSync(join(dir, 'deployment.yaml'), deployment);
      const kustomization = (extra: string): void =>
        writeFileSync(
          join(dir, 'kustomization.yaml'),
          `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml]\n${extra}`,
        );
      kustomization('');
      expect(renderKustomization(dir).objects).toHaveLength(1);
      writeFileSync(join(dir, 'two-patches.yaml'), `${deployment}---\n${deployment}`);
      kustomization('patches:\n  - path: two-patches.yaml\n');
      expect(() => renderKustomization(dir)).toThrow(/one patch per entry/);
      kustomization('configMapGenerator:\n  - name: c\n    files: [../outside.yaml]\n');
      expect(() => renderKustomization(dir)).toThrow(/outside the kustomization/);
      kustomization('commonLabels:\n  a: b\n');
      expect(() => renderKustomization(dir)).toThrow(/unsupported by the offline renderer/);
      expect(() => renderKustomization(`${k8sDir}/base`, { components: ['../overlays/kafka'] })).toThrow(
        /expected a Component/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('two installations in one namespace (docs/deployment.md recipe)', () => {
  const recipeHeader = '# deploy/k8s/overlays/walpurge-b/kustomization.yaml';
  const recipe = new RegExp(`\`\`\`yaml\\n(${recipeHeader}[\\s\\S]*?)\`\`\``).exec(
    readFileSync(repoPath('docs/deployment.md'), 'utf8'),
  )?.[1];

  /** The first installation (kafka overlay with monitoring) and the documented second one, rendered. */
  function renderBoth(): { first: K8sObject[]; second: K8sObject[] } {
    const copy = mkdtempSync(join(tmpdir(), 'walpurge-k8s-'));
    try {
      cpSync(k8sDir, copy, { recursive: true });
      const kafka = `${copy}/overlays/kafka/kustomization.yaml`;
      const enabled = readFileSync(kafka, 'utf8').replace(
        '  # - ../../components/monitoring',
        '  - ../../components/monitoring',
      );
      expect(enabled).toContain('  - ../../components/monitoring');
      writeFileSync(kafka, enabled);
      const second = `${copy}/overlays/walpurge-b`;
      mkdirSync(second);
      writeFileSync(`${second}/kustomization.yaml`, recipe ?? '');
      writeFileSync(
        `${second}/walpurge.yaml`,
        readFileSync(`${copy}/base/walpurge.yaml`, 'utf8').replace('slot: walpurge', 'slot: walpurge_b'),
      );
      return {
        first: renderKustomization(`${copy}/overlays/kafka`).objects,
        second: renderKustomization(second).objects,
      };
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }

  it('is in the docs', () => {
    expect(recipe).toBeDefined();
  });

  it('renders apart: no shared object name; each Service, budget and ServiceMonitor picks its own installation only', () => {
    const { first, second } = renderBoth();
    const ids = (objects: K8sObject[]): string[] =>
      objects.map((object) => `${object.kind}/${object.metadata.name}`);
    expect(ids(second).filter((id) => ids(first).includes(id))).toEqual([]);
    const all = [...first, ...second];
    const pods = deployments(all).map((deployment) => ({
      name: nameOf(deployment),
      labels: podLabels(deployment),
    }));
    // Which installation rendered an object: its pods must carry that instance value.
    const installation = new Map<object, string>([
      ...first.map((object): [object, string] => [object, 'walpurge']),
      ...second.map((object): [object, string] => [object, 'walpurge-b']),
    ]);
    const instanceOf = (object: object): string | undefined => installation.get(object);
    for (const deployment of deployments(all))
      expect(podLabels(deployment)['app.kubernetes.io/instance'], nameOf(deployment)).toBe(
        instanceOf(deployment),
      );

    // Deployments keep their unscoped selectors (immutable); a ReplicaSet only adopts orphans, so
    // the overlap is harmless there. Services and budgets decide scraping and evictions.
    for (const service of objectsOfKind<IService>(all, 'Service')) {
      const selected = pods.filter((pod) => selects(service.spec?.selector, pod.labels));
      expect(selected.length, nameOf(service)).toBeGreaterThan(0);
      for (const pod of selected)
        expect(pod.labels['app.kubernetes.io/instance'], `${nameOf(service)} selects ${pod.name}`).toBe(
          instanceOf(service),
        );
    }
    // The eviction API refuses a pod under two budgets: every pod has at most one, of its installation.
    const budgets = objectsOfKind<IPodDisruptionBudget>(all, 'PodDisruptionBudget');
    for (const pod of pods) {
      const covering = budgets.filter((budget) =>
        selects(budget.spec?.selector?.matchLabels as Record<string, string> | undefined, pod.labels),
      );
      expect(covering.map(nameOf), pod.name).toHaveLength(1);
      expect(covering.map(instanceOf), pod.name).toEqual([pod.labels['app.kubernetes.io/instance']]);
    }
    const services = objectsOfKind<IService>(all, 'Service');
    const monitors = objectsOfKind<IServiceMonitor>(all, 'ServiceMonitor');
    expect(monitors).toHaveLength(2);
    for (const monitor of monitors) {
      const selected = services.filter((service) =>
        selects(
          monitor.spec.selector.matchLabels,
          (service.metadata?.labels ?? {}) as Record<string, string>,
        ),
      );
      expect(selected.map(instanceOf), nameOf(monitor)).toEqual([instanceOf(monitor)]);
    }
    // One copy of the alert rules: they already fire per installation.
    expect(objectsOfKind(all, 'PrometheusRule')).toHaveLength(1);
  });
});
