/**
 * deploy/k8s rendered offline (kustomize semantics re-implemented in ./kustomize.ts), every object
 * validated against the Kubernetes schemas, and every image, port, probe path, role, env var and
 * config key checked against the code that will run (./manifest-checks.ts, shared with the Helm chart
 * tests).
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  renderEditedKustomization,
  renderKustomization,
  withInspectSection,
  type K8sObject,
  type Rendered,
} from './kustomize.js';
import {
  checkAutoscalers,
  checkBudgetsAndService,
  checkDrainGrace,
  checkEmbeddedTopology,
  checkEnvironment,
  checkImage,
  checkKafkaTopology,
  checkKedaTriggers,
  checkPodSecurityAndResources,
  checkPortsAndProbes,
  checkReferences,
  checkRolesAndConfig,
  checkSchemas,
  checkServiceMonitors,
  walpurgePods,
} from './manifest-checks.js';
import { deployments, nameOf, objectsOfKind, podLabels, selects } from './pod-spec.js';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { repoPath } from './workspace.js';

interface Variant {
  name: string;
  dir: string;
  topology: 'kafka' | 'embedded';
  /** Replaces the overlay's `components` (optional components rendered too). */
  components?: string[];
  /** base/walpurge.yaml with its `inspect` section uncommented (the consistency observer on). */
  inspect?: boolean;
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
  {
    name: 'kafka overlay with the consistency observer',
    dir: 'overlays/kafka',
    topology: 'kafka',
    components: ['../../components/hpa', '../../components/inspector', '../../components/monitoring'],
    inspect: true,
  },
  { name: 'embedded overlay', dir: 'overlays/embedded', topology: 'embedded' },
  {
    name: 'embedded overlay with the consistency observer (in-process)',
    dir: 'overlays/embedded',
    topology: 'embedded',
    inspect: true,
  },
  {
    name: 'embedded overlay with monitoring',
    dir: 'overlays/embedded',
    topology: 'embedded',
    components: ['../../components/monitoring'],
  },
];

const k8sDir = repoPath('deploy/k8s');
const render = (variant: Variant): Rendered => {
  const options = variant.components ? { components: variant.components } : {};
  return variant.inspect
    ? renderEditedKustomization(k8sDir, variant.dir, { 'base/walpurge.yaml': withInspectSection }, options)
    : renderKustomization(`${k8sDir}/${variant.dir}`, options);
};

describe.each(variants)('deploy/k8s $name', (variant) => {
  const rendered = render(variant);
  const { objects } = rendered;

  it('renders objects that all match their Kubernetes schema', () => checkSchemas(objects));
  it('runs each container as a role `walpurge run` accepts, with a config the loader accepts', () =>
    checkRolesAndConfig(objects));
  it('uses the image built from deploy/Dockerfile, tagged with the CLI version', () => checkImage(objects));
  it('wires ports and probes to the ops server', () => checkPortsAndProbes(objects));
  it('sets only environment variables the code reads, and every ${VAR} the config needs', () =>
    checkEnvironment(objects));
  it('gives every pod a locked-down, read-only-root security context and resource requests', () =>
    checkPodSecurityAndResources(objects));
  it('lets pods drain before SIGKILL: the grace period outlasts every drain timeout of the config', () =>
    checkDrainGrace(objects));

  it('references only ConfigMaps it renders, with the content hash in their names', () => {
    expect([...rendered.generatedNames.keys()].sort()).toEqual(['walpurge-config', 'walpurge-env']);
    for (const [logical, hashed] of rendered.generatedNames)
      expect(hashed).toMatch(new RegExp(`^${logical}-[0-9a-f]{10}$`));
    checkReferences(objects);
  });

  it('labels every pod with its installation (app.kubernetes.io/instance), which metrics and alerts aggregate by', () => {
    expect(deployments(objects).length).toBeGreaterThan(0);
    for (const deployment of deployments(objects))
      expect(podLabels(deployment)['app.kubernetes.io/instance'], nameOf(deployment)).toBe('walpurge');
  });

  it('gives every Deployment exactly one disruption budget, and scrapes them all through one Service', () =>
    checkBudgetsAndService(objects));
  it('autoscales only consumer roles, within the topic partitions, with one autoscaler per Deployment', () =>
    checkAutoscalers(objects));
});

describe.each(variants.filter((variant) => variant.topology === 'kafka'))(
  'deploy/k8s $name (Kafka topology)',
  (variant) => {
    const { objects } = render(variant);

    it('runs each role apart: an active/standby listener pair and scaled consumers', () =>
      checkKafkaTopology(objects));

    it('points KEDA triggers at the topic, consumer group and queue the config uses', () => {
      const checked = checkKedaTriggers(objects);
      if (variant.components?.some((component) => component.endsWith('/keda'))) expect(checked).toBe(2);
    });
  },
);

describe.each(variants.filter((variant) => variant.topology === 'embedded'))(
  'deploy/k8s $name (embedded topology)',
  (variant) => {
    const { objects } = render(variant);

    it('runs every role in one active/standby Deployment with the inline transport', () =>
      checkEmbeddedTopology(objects));
  },
);

describe.each(
  variants.filter((variant) => variant.components?.some((component) => component.endsWith('/monitoring'))),
)('deploy/k8s $name (monitoring)', (variant) => {
  const { objects } = render(variant);

  it('scrapes the metrics Service at the ops server path', () => {
    const monitors = checkServiceMonitors(objects);
    expect(monitors).toHaveLength(1);
  });
});

describe('deploy/k8s consistency observer (components/inspector)', () => {
  const variant = (name: string): Variant => {
    const found = variants.find((candidate) => candidate.name === name);
    if (!found) throw new Error(`no variant ${name}`);
    return found;
  };

  it('runs role inspector, one replica in its own consumer group, with a budget and no autoscaler', () => {
    const { objects } = render(variant('kafka overlay with the consistency observer'));
    const inspector = walpurgePods(objects).find((pod) => pod.role === 'inspector');
    expect(inspector?.container.args).toEqual([
      'run',
      '--config',
      '/etc/walpurge/walpurge.yaml',
      '--role',
      'inspector',
    ]);
    expect(inspector?.deployment.spec?.replicas).toBe(1);
    expect(inspector?.container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(inspector?.config.inspect?.consumerGroup).toBe('walpurge-inspector');
    const budget = objectsOfKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget').find(
      (candidate) => nameOf(candidate) === 'walpurge-inspector',
    );
    expect(budget?.spec?.maxUnavailable).toBe(1);
    const scaled = objects
      .filter((object) => ['HorizontalPodAutoscaler', 'ScaledObject'].includes(object.kind))
      .map((object) => (object['spec'] as { scaleTargetRef: { name: string } }).scaleTargetRef.name);
    expect(scaled).not.toContain('walpurge-inspector');
  });

  it('is absent without the component, and runs in-process in the embedded overlay', () => {
    expect(walpurgePods(render(variant('kafka overlay')).objects).map((pod) => pod.role)).not.toContain(
      'inspector',
    );
    const embedded = walpurgePods(
      render(variant('embedded overlay with the consistency observer (in-process)')).objects,
    );
    expect(embedded.map((pod) => pod.role)).toEqual(['all']);
    expect(embedded[0]?.config.inspect).toBeDefined();
  });

  it('refuses to be forgotten: without the inspect section the inspector pod fails the role checks', () => {
    const { objects } = renderKustomization(`${k8sDir}/overlays/kafka`, {
      components: ['../../components/inspector'],
    });
    expect(() => checkRolesAndConfig(objects)).toThrow(/inspect section/);
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
