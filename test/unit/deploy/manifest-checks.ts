/**
 * Cross-checks of rendered deployment objects (deploy/k8s through ./kustomize.ts, the Helm chart
 * through helm-java) against the code that will run: schemas, roles, config, image, ports, probes,
 * environment, security, drain timing, budgets, autoscalers and scraping. Each check takes the
 * rendered objects and asserts with vitest's expect, so both renderers share them.
 */
import { expect } from 'vitest';
import { shutdownDeadlineMs } from 'walpurge';
import { HttpConfig, parseConfigText, type WalpurgeConfig } from '@walpurge/config';
import { writeBehindLayout } from '@walpurge/write-behind';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { ITriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { K8sObject } from './kustomize.js';
import { validateAgainstSchema } from './k8s-schemas.js';
import { cliEnvVars, parseInvocation, runRoles, splitRoles } from './cli-spec.js';
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
import { cliPackage, configEnvReferences, opsServerPaths, productionSources } from './workspace.js';

/** Placeholder values for Secret keys, shaped like the real thing so the config schema accepts them. */
export const secretPlaceholders: Record<string, string> = {
  DATABASE_URL: 'postgres://walpurge:secret@db.example.internal:5432/app',
  REDIS_URL: 'redis://cache.example.internal:6379',
  QUEUE_REDIS_URL: 'redis://queue.example.internal:6379',
};

export function configMapData(objects: readonly K8sObject[], name: string): Record<string, string> {
  const configMap = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === name);
  if (!configMap) throw new Error(`ConfigMap ${name} is referenced but not rendered`);
  return (configMap['data'] ?? {}) as Record<string, string>;
}

/** The environment the container would see: literals, ConfigMap keys, Secret keys as placeholders. */
export function containerEnvironment(
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
        value: secretPlaceholders[key] ?? `placeholder-${key}`,
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

export interface WalpurgePod {
  deployment: IDeployment;
  container: IContainer;
  role: string;
  config: WalpurgeConfig;
  configText: string;
  env: Map<string, { value: string; from: string }>;
}

export function walpurgePods(objects: readonly K8sObject[]): WalpurgePod[] {
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

/** Renders objects that all match their Kubernetes schema. */
export function checkSchemas(objects: readonly K8sObject[]): void {
  expect(objects.length).toBeGreaterThan(0);
  for (const object of objects) {
    expect(() => validateAgainstSchema(object), `${object.kind}/${object.metadata.name}`).not.toThrow();
  }
  const ids = objects.map((object) => `${object.kind}/${object.metadata.name}`);
  expect(new Set(ids).size, 'object names are unique').toBe(ids.length);
}

/** Runs each container as a role `walpurge run` accepts, with a config the loader accepts. */
export function checkRolesAndConfig(objects: readonly K8sObject[]): void {
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
    // The roles that refuse to start without their own section (compose-services.ts).
    if (pod.role === 'flusher')
      expect(pod.config.flusher, `${nameOf(pod.deployment)}: flusher section`).toBeDefined();
    if (pod.role === 'inspector')
      expect(pod.config.inspect, `${nameOf(pod.deployment)}: inspect section`).toBeDefined();
  }
}

/** Uses the image built from deploy/Dockerfile, tagged with the CLI version. */
export function checkImage(objects: readonly K8sObject[]): void {
  const version = cliPackage().manifest.version;
  for (const deployment of deployments(objects)) {
    expect(walpurgeContainer(deployment).image, nameOf(deployment)).toMatch(
      new RegExp(`(^|/)walpurge:${version?.replace(/\./g, '\\.')}$`),
    );
  }
}

/** Wires ports and probes to the ops server. */
export function checkPortsAndProbes(objects: readonly K8sObject[]): void {
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
}

/** Sets only environment variables the code reads, and every ${VAR} the config needs. */
export function checkEnvironment(objects: readonly K8sObject[]): void {
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
}

/** Gives every pod a locked-down, read-only-root security context and resource requests. */
export function checkPodSecurityAndResources(objects: readonly K8sObject[]): void {
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
}

/** Lets pods drain before SIGKILL: the grace period outlasts every drain timeout of the config. */
export function checkDrainGrace(objects: readonly K8sObject[]): void {
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
    expect(grace, `${nameOf(pod.deployment)}: walpurge run exits after ${deadline} s`).toBeGreaterThanOrEqual(
      deadline + 5,
    );
  }
}

/** References only ConfigMaps and a ServiceAccount it renders. */
export function checkReferences(objects: readonly K8sObject[]): void {
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
}

/** Gives every Deployment exactly one disruption budget, and scrapes them all through one Service. */
export function checkBudgetsAndService(objects: readonly K8sObject[]): void {
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
}

/** Autoscales only consumer roles, within the topic partitions, with one autoscaler per Deployment. */
export function checkAutoscalers(objects: readonly K8sObject[]): void {
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
}

/**
 * Runs each role apart: an active/standby listener pair and scaled consumers, and the consistency
 * observer (role inspector) exactly when walpurge.yaml has an `inspect` section.
 */
export function checkKafkaTopology(objects: readonly K8sObject[]): void {
  const pods = walpurgePods(objects);
  const observed = pods.some((pod) => pod.config.inspect !== undefined);
  const roles = [...splitRoles(), ...(observed ? ['inspector'] : [])];
  expect(pods.map((pod) => pod.role).sort()).toEqual([...roles].sort());
  const inspector = pods.find((pod) => pod.role === 'inspector');
  // Its own group: in the invalidators' group it would take partitions from the purges.
  if (inspector)
    expect(inspector.config.inspect?.consumerGroup).not.toBe(inspector.config.kafka?.consumerGroup);
  const listener = pods.find((pod) => pod.role === 'listener');
  expect(listener?.deployment.spec?.replicas, 'active + standby').toBe(2);
  // A rollout must start the new pod before stopping an old one, so a standby is always there.
  expect(listener?.deployment.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
}

/**
 * Points KEDA triggers at the brokers, auth, topic, consumer group and queue the config uses;
 * returns how many ScaledObjects it checked.
 */
export function checkKedaTriggers(objects: readonly K8sObject[]): number {
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
        expect(trigger.metadata['bootstrapServers']).toBe(kafka?.brokers.join(','));
        // TLS and SASL as the config connects (KEDA: tls enable/disable, sasl plaintext/scram_sha…).
        expect(trigger.metadata['tls'] ?? 'disable').toBe(kafka?.ssl ? 'enable' : 'disable');
        checkKafkaTriggerAuth(objects, target, trigger);
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
  return scaledObjects.length;
}

/** Runs every role in one active/standby Deployment with the inline transport. */
export function checkEmbeddedTopology(objects: readonly K8sObject[]): void {
  const pods = walpurgePods(objects);
  expect(pods.map((pod) => pod.role)).toEqual(['all']);
  expect(pods[0]?.config.transport).toBe('inline');
  expect(pods[0]?.deployment.spec?.replicas).toBe(2);
  expect(pods[0]?.deployment.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
  expect(
    objects.filter((object) => object.kind === 'HorizontalPodAutoscaler' || object.kind === 'ScaledObject'),
  ).toEqual([]);
}

/** Scrapes the metrics Service at the ops server path; returns the ServiceMonitors. */
export function checkServiceMonitors(objects: readonly K8sObject[]): IServiceMonitor[] {
  const monitors = objectsOfKind<IServiceMonitor>(objects, 'ServiceMonitor');
  expect(monitors).toHaveLength(1);
  const services = objectsOfKind<IService>(objects, 'Service');
  for (const monitor of monitors) {
    const selected = services.filter((service) =>
      selects(monitor.spec.selector.matchLabels, service.metadata?.labels ?? {}),
    );
    expect(selected.map(nameOf), `${nameOf(monitor)} selects one Service`).toHaveLength(1);
    // Every series gets app_kubernetes_io_instance, the label alerts and the dashboard aggregate by.
    expect(monitor.spec.podTargetLabels).toContain('app.kubernetes.io/instance');
    // …and app_kubernetes_io_part_of, by which alerts and the dashboard select walpurge's `up`
    // without naming the Service; every pod must carry it.
    expect(monitor.spec.podTargetLabels).toContain('app.kubernetes.io/part-of');
    for (const deployment of deployments(objects))
      expect(podLabels(deployment)['app.kubernetes.io/part-of'], nameOf(deployment)).toBe('walpurge');
    expect(monitor.spec.endpoints?.length).toBeGreaterThan(0);
    for (const endpoint of monitor.spec.endpoints ?? []) {
      expect(opsServerPaths()).toContain(endpoint.path);
      expect(selected[0]?.spec?.ports?.some((port) => port.name === endpoint.port)).toBe(true);
    }
  }
  return monitors;
}

type KafkaTrigger = NonNullable<IScaledObject['spec']>['triggers'][number];

/** KEDA's names for walpurge's kafka.sasl.mechanism values. */
const KEDA_SASL: Record<string, string> = {
  plain: 'plaintext',
  'scram-sha-256': 'scram_sha256',
  'scram-sha-512': 'scram_sha512',
};

/**
 * With kafka.sasl in the config, the trigger's SASL mode matches it and its TriggerAuthentication
 * reads username and password from the same Secret keys the pods' ${VAR}s come from.
 */
function checkKafkaTriggerAuth(
  objects: readonly K8sObject[],
  target: WalpurgePod,
  trigger: KafkaTrigger,
): void {
  const sasl = target.config.kafka?.sasl;
  if (!sasl) {
    expect(trigger.metadata['sasl'] ?? 'none', 'no SASL in the config').toBe('none');
    return;
  }
  expect(trigger.metadata['sasl']).toBe(KEDA_SASL[sasl.mechanism]);
  // The chart renders only the username/password mechanisms (KEDA has no token-provider hook).
  if (sasl.mechanism === 'oauthbearer') throw new Error('kafka trigger: the chart renders no OAUTHBEARER');
  const auth = objectsOfKind<ITriggerAuthentication>(objects, 'TriggerAuthentication').find(
    (candidate) => nameOf(candidate) === trigger.authenticationRef?.name,
  );
  if (!auth)
    throw new Error(
      `kafka trigger: TriggerAuthentication ${String(trigger.authenticationRef?.name)} not rendered`,
    );
  for (const parameter of ['username', 'password'] as const) {
    // Secret keys become distinct placeholders (containerEnvironment), so the value names its source.
    const variable = (target.container.env ?? []).find(
      (entry) => target.env.get(entry.name)?.value === sasl[parameter],
    );
    const fromPod = variable?.valueFrom?.secretKeyRef;
    const fromKeda = auth.spec?.secretTargetRef?.find((ref) => ref.parameter === parameter);
    expect(fromPod, `kafka.sasl.${parameter} comes from a Secret`).toBeDefined();
    expect({ name: fromKeda?.name, key: fromKeda?.key }, `KEDA's ${parameter}`).toEqual({
      name: fromPod?.name,
      key: fromPod?.key,
    });
  }
}

/**
 * Every check of a rendered setup against the code, in one call (for renderers that test many value
 * sets): pods, config, probes, env, security, drain, references, budgets, autoscalers, KEDA triggers,
 * scraping and the topology's shape.
 */
export function checkAgainstCode(objects: readonly K8sObject[]): void {
  checkRolesAndConfig(objects);
  checkPortsAndProbes(objects);
  checkEnvironment(objects);
  checkPodSecurityAndResources(objects);
  checkDrainGrace(objects);
  checkReferences(objects);
  checkBudgetsAndService(objects);
  checkAutoscalers(objects);
  const roles = walpurgePods(objects).map((pod) => pod.role);
  if (roles.includes('all')) checkEmbeddedTopology(objects);
  else {
    // The listener pair and scaled consumers; without write-behind there is no flusher to count.
    if (roles.includes('flusher')) checkKafkaTopology(objects);
    checkKedaTriggers(objects);
  }
  if (objects.some((object) => object.kind === 'ServiceMonitor'))
    expect(checkServiceMonitors(objects)).toHaveLength(1);
}
