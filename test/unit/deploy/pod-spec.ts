/**
 * Typed access to what the deployment tests read from rendered objects (already validated against
 * the Kubernetes schema, so the kubernetes-models interfaces describe them).
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { K8sObject } from './kustomize.js';

export function deployments(objects: readonly K8sObject[]): IDeployment[] {
  return objects.filter((object) => object.kind === 'Deployment') as unknown as IDeployment[];
}

export function objectsOfKind<T>(objects: readonly K8sObject[], kind: string): (T & K8sObject)[] {
  return objects.filter((object) => object.kind === kind) as (T & K8sObject)[];
}

export function nameOf(object: { metadata?: { name?: string } }): string {
  const name = object.metadata?.name;
  if (!name) throw new Error('object without metadata.name');
  return name;
}

export function podLabels(deployment: IDeployment): Record<string, string> {
  return deployment.spec?.template.metadata?.labels ?? {};
}

/** The walpurge container of a pod template (the one running the walpurge image). */
export function walpurgeContainer(deployment: IDeployment): IContainer {
  const containers = deployment.spec?.template.spec?.containers ?? [];
  const found = containers.filter((container) => /(^|\/)walpurge(:|@|$)/.test(container.image ?? ''));
  if (found.length !== 1)
    throw new Error(`${nameOf(deployment)}: expected one walpurge container, found ${found.length}`);
  return found[0] as IContainer;
}

/** Whether `selector` (matchLabels only, as deploy/ uses) selects pods labelled `labels`. */
export function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** Resolves a probe's port (number or container port name) to a number. */
export function probePort(container: IContainer, probe: IProbe): number {
  const port = probe.httpGet?.port;
  if (typeof port === 'number') return port;
  const named = container.ports?.find((candidate) => candidate.name === port);
  if (!named)
    throw new Error(`probe port '${String(port)}' is not a named port of container ${container.name}`);
  return named.containerPort;
}

/** Parses Kubernetes quantities of memory ("512Mi", "1Gi", "1G") into bytes. */
export function memoryBytes(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (!match) throw new Error(`unparseable memory quantity ${quantity}`);
  const factors: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Number(match[1]) * (match[2] ? (factors[match[2]] ?? 1) : 1);
}
