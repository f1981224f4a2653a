/**
 * A minimal offline `kustomize build` for the features deploy/k8s uses (no kubectl or kustomize binary
 * here): resources (files and directories), components, configMapGenerator (create/merge/replace,
 * files and literals, content-hash suffix with reference rewriting in pod templates), strategic-merge
 * `patches` from files (one patch per file, `$patch: delete`), `images`, `namespace`, `namePrefix`
 * (with the references kustomize follows for these manifests: ConfigMaps, ServiceAccounts, HPA
 * targets) and `labels` (with `includeSelectors`: the selectors and pod templates of built-in kinds).
 *
 * Anything else in a kustomization throws, so a manifest change that this renderer would silently get
 * wrong fails the tests instead. The hash is not kustomize's exact algorithm; only its role matters
 * here: it changes with the content and every reference follows it.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface K8sObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string };
}

const K8sObjectSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.looseObject({ name: z.string() }),
});

const Generator = z.strictObject({
  name: z.string(),
  behavior: z.enum(['create', 'merge', 'replace']).default('create'),
  files: z.array(z.string()).default([]),
  literals: z.array(z.string()).default([]),
});

const Patch = z.strictObject({ path: z.string().optional(), patch: z.string().optional() });

const Image = z.strictObject({
  name: z.string(),
  newName: z.string().optional(),
  newTag: z.string().optional(),
  digest: z.string().optional(),
});

const Labels = z.strictObject({
  pairs: z.record(z.string(), z.string()),
  includeSelectors: z.boolean().default(false),
  includeTemplates: z.boolean().default(false),
});

const Kustomization = z.strictObject({
  apiVersion: z.enum(['kustomize.config.k8s.io/v1beta1', 'kustomize.config.k8s.io/v1alpha1']),
  kind: z.enum(['Kustomization', 'Component']),
  namespace: z.string().optional(),
  resources: z.array(z.string()).nullish(),
  components: z.array(z.string()).nullish(),
  configMapGenerator: z.array(Generator).nullish(),
  patches: z.array(Patch).nullish(),
  images: z.array(Image).nullish(),
  namePrefix: z.string().optional(),
  labels: z.array(Labels).nullish(),
});
type Kustomization = z.infer<typeof Kustomization>;

export interface RenderOptions {
  /** Replace the top-level kustomization's `components` (to render optional components too). */
  components?: string[];
}

export interface Rendered {
  objects: K8sObject[];
  /** Generated ConfigMaps: logical name → final (hashed) name. */
  generatedNames: Map<string, string>;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

export function readYamlDocuments(file: string): Json[] {
  return parseYamlDocuments(readFileSync(file, 'utf8'), file);
}

/** The non-empty documents of a YAML stream (`origin` names it in errors). */
export function parseYamlDocuments(text: string, origin: string): Json[] {
  const file = origin;
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) throw new Error(`${file}: not a YAML stream`);
  const values: Json[] = [];
  for (const document of documents) {
    if (document.errors.length > 0)
      throw new Error(`${file}: ${document.errors[0]?.message ?? 'YAML error'}`);
    const value = document.toJS() as Json;
    if (value !== null && value !== undefined) values.push(value);
  }
  return values;
}

export function asK8sObject(value: Json, file: string): K8sObject {
  const parsed = K8sObjectSchema.safeParse(value);
  if (!parsed.success)
    throw new Error(`${file}: not a Kubernetes object (${parsed.error.issues[0]?.message ?? ''})`);
  return value as K8sObject;
}

function loadKustomization(dir: string): Kustomization {
  const file = join(dir, 'kustomization.yaml');
  if (!existsSync(file)) throw new Error(`${dir}: no kustomization.yaml`);
  const [document, ...rest] = readYamlDocuments(file);
  if (rest.length > 0) throw new Error(`${file}: one document expected`);
  const parsed = Kustomization.safeParse(document);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
      .join('; ');
    throw new Error(`${file}: unsupported by the offline renderer or invalid: ${problems}`);
  }
  return parsed.data;
}

// Strategic merge: lists of these fields merge element-wise by the key Kubernetes declares for them;
// every other list is replaced, as in Kubernetes' own patch strategy for the fields deploy/ patches.
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  volumes: 'name',
  env: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
};

function mergeList(field: string, target: Json, patch: Json[]): Json {
  const key = MERGE_KEYS[field];
  if (!key || !Array.isArray(target))
    return clone(patch).filter((item) => !(isObject(item) && item['$patch'] === 'delete'));
  const result = clone(target);
  for (const item of patch) {
    if (!isObject(item) || item[key] === undefined) throw new Error(`patch: ${field} items need '${key}'`);
    const index = result.findIndex((existing) => isObject(existing) && existing[key] === item[key]);
    if (item['$patch'] === 'delete') {
      if (index >= 0) result.splice(index, 1);
    } else if (index >= 0) result[index] = strategicMerge(result[index] ?? null, item);
    else result.push(clone(item));
  }
  return result;
}

export function strategicMerge(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  if (patch['$patch'] === 'replace') {
    const { $patch: _ignored, ...rest } = patch;
    return clone(rest);
  }
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [field, value] of Object.entries(patch)) {
    if (field.startsWith('$')) throw new Error(`patch: unsupported directive ${field}`);
    if (value === null) delete result[field];
    else if (Array.isArray(value)) result[field] = mergeList(field, result[field] ?? null, value);
    else if (isObject(value)) result[field] = strategicMerge(result[field] ?? null, value);
    else result[field] = value;
  }
  return result;
}

function sameResource(a: K8sObject, b: K8sObject): boolean {
  const group = (apiVersion: string): string =>
    apiVersion.includes('/') ? (apiVersion.split('/')[0] ?? '') : '';
  return (
    a.kind === b.kind && group(a.apiVersion) === group(b.apiVersion) && a.metadata.name === b.metadata.name
  );
}

function applyPatch(objects: K8sObject[], patch: K8sObject, origin: string): K8sObject[] {
  const index = objects.findIndex((object) => sameResource(object, patch));
  if (index < 0) throw new Error(`${origin}: patch target ${patch.kind}/${patch.metadata.name} not found`);
  if (patch['$patch'] === 'delete') return objects.filter((_, i) => i !== index);
  const next = [...objects];
  next[index] = strategicMerge(objects[index] as Json, patch) as K8sObject;
  return next;
}

interface Accumulator {
  objects: K8sObject[];
  /** Objects generated by configMapGenerator, which get a hash suffix at the end. */
  generated: Set<string>;
}

function generatorData(dir: string, generator: z.infer<typeof Generator>): Record<string, string> {
  const data: Record<string, string> = {};
  for (const file of generator.files) {
    const [key, path] = file.includes('=')
      ? (file.split('=', 2) as [string, string])
      : [basename(file), file];
    const full = resolve(dir, path);
    if (!full.startsWith(resolve(dir)))
      throw new Error(`${dir}: ${file} is outside the kustomization (kustomize refuses it)`);
    data[key] = readFileSync(full, 'utf8');
  }
  for (const literal of generator.literals) {
    const at = literal.indexOf('=');
    if (at <= 0) throw new Error(`${dir}: literal '${literal}' is not KEY=VALUE`);
    data[literal.slice(0, at)] = literal.slice(at + 1);
  }
  return data;
}

function applyGenerators(dir: string, kustomization: Kustomization, acc: Accumulator): void {
  for (const generator of kustomization.configMapGenerator ?? []) {
    const data = generatorData(dir, generator);
    const index = acc.objects.findIndex(
      (object) => object.kind === 'ConfigMap' && object.metadata.name === generator.name,
    );
    if (generator.behavior === 'create') {
      if (index >= 0)
        throw new Error(`${dir}: ConfigMap ${generator.name} already exists (use behavior: merge)`);
      acc.objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: generator.name }, data });
      acc.generated.add(generator.name);
      continue;
    }
    const existing = acc.objects[index];
    if (!existing)
      throw new Error(`${dir}: behavior ${generator.behavior} but no ConfigMap ${generator.name} to change`);
    const before = isObject(existing['data']) ? existing['data'] : {};
    existing['data'] = generator.behavior === 'merge' ? { ...before, ...data } : data;
  }
}

function applyImages(objects: K8sObject[], images: z.infer<typeof Image>[]): void {
  const visit = (node: Json, field: string): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, field);
      return;
    }
    if (!isObject(node)) return;
    if ((field === 'containers' || field === 'initContainers') && typeof node['image'] === 'string') {
      const image = node['image'];
      const name = image.split('@')[0]?.replace(/:[^/:]+$/, '') ?? image;
      const rule = images.find((candidate) => candidate.name === name);
      if (rule) {
        const newName = rule.newName ?? name;
        node['image'] = rule.digest ? `${newName}@${rule.digest}` : `${newName}:${rule.newTag ?? 'latest'}`;
      }
    }
    for (const [key, value] of Object.entries(node)) visit(value, key);
  };
  for (const object of objects) visit(object, '');
}

/**
 * Prefixes every object's name and the references kustomize's name-reference rules rewrite for the
 * kinds deploy/ uses: ConfigMaps (volumes, envFrom, env), the pods' ServiceAccount and an HPA's
 * target. A Secret not built here (walpurge-credentials) keeps its name, as in kustomize; so does
 * whatever a custom resource refers to (a KEDA ScaledObject's target).
 */
function applyNamePrefix(acc: Accumulator, prefix: string): void {
  const renamed = new Map<string, string>();
  for (const object of acc.objects) {
    const name = object.metadata.name;
    renamed.set(`${object.kind}/${name}`, `${prefix}${name}`);
    object.metadata.name = `${prefix}${name}`;
    if (acc.generated.delete(name)) acc.generated.add(`${prefix}${name}`);
  }
  const rename = (holder: Json, field: string, kind: string): void => {
    if (!isObject(holder) || typeof holder[field] !== 'string') return;
    holder[field] = renamed.get(`${kind}/${holder[field]}`) ?? holder[field];
  };
  const visit = (node: Json): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!isObject(node)) return;
    rename(node['configMap'] ?? null, 'name', 'ConfigMap');
    rename(node['configMapRef'] ?? null, 'name', 'ConfigMap');
    rename(node['configMapKeyRef'] ?? null, 'name', 'ConfigMap');
    rename(node, 'serviceAccountName', 'ServiceAccount');
    for (const value of Object.values(node)) visit(value);
  };
  for (const object of acc.objects) {
    if (object.kind === 'HorizontalPodAutoscaler') {
      const target = isObject(object['spec'] ?? null)
        ? (object['spec'] as JsonObject)['scaleTargetRef']
        : null;
      if (isObject(target ?? null)) rename(target ?? null, 'name', String((target as JsonObject)['kind']));
    }
    if (object.kind !== 'ConfigMap') visit(object['spec'] ?? null);
  }
}

/** Where kustomize's `labels` with includeSelectors writes, per built-in kind (CRDs: none). */
const SELECTOR_PATHS: Record<string, string[][]> = {
  Service: [['spec', 'selector']],
  Deployment: [['spec', 'selector', 'matchLabels']],
  PodDisruptionBudget: [['spec', 'selector', 'matchLabels']],
};
const TEMPLATE_PATHS: Record<string, string[][]> = {
  Deployment: [['spec', 'template', 'metadata', 'labels']],
};

function labelMap(object: JsonObject, path: string[]): JsonObject {
  let node: JsonObject = object;
  for (const field of path) {
    const next = node[field];
    if (!isObject(next ?? null)) node[field] = {};
    node = node[field] as JsonObject;
  }
  return node;
}

function applyLabels(objects: K8sObject[], labels: z.infer<typeof Labels>): void {
  for (const object of objects) {
    const paths = [['metadata', 'labels']];
    if (labels.includeSelectors) paths.push(...(SELECTOR_PATHS[object.kind] ?? []));
    if (labels.includeSelectors || labels.includeTemplates)
      paths.push(...(TEMPLATE_PATHS[object.kind] ?? []));
    for (const path of paths) Object.assign(labelMap(object, path), labels.pairs);
  }
}

/**
 * Builds one kustomization. A Component is built on top of the resources accumulated so far
 * (`inherited`): its generators merge into them and its patches may target them.
 */
function accumulate(dir: string, options: RenderOptions, top: boolean, inherited?: Accumulator): Accumulator {
  const kustomization = loadKustomization(dir);
  const expectComponent = inherited !== undefined;
  if ((kustomization.kind === 'Component') !== expectComponent) {
    throw new Error(
      `${dir}: expected a ${expectComponent ? 'Component' : 'Kustomization'}, found ${kustomization.kind}`,
    );
  }
  const acc: Accumulator = inherited ?? { objects: [], generated: new Set() };
  for (const entry of kustomization.resources ?? []) {
    const path = resolve(dir, entry);
    if (statSync(path).isDirectory()) {
      const child = accumulate(path, {}, false);
      acc.objects.push(...child.objects);
      for (const name of child.generated) acc.generated.add(name);
    } else {
      acc.objects.push(...readYamlDocuments(path).map((value) => asK8sObject(value, path)));
    }
  }
  // kustomize's order: resources, then components, then this level's generators and transformers.
  const components = top && options.components ? options.components : (kustomization.components ?? []);
  for (const entry of components) accumulate(resolve(dir, entry), {}, false, acc);
  applyGenerators(dir, kustomization, acc);
  for (const patch of kustomization.patches ?? []) {
    const origin = patch.path ? resolve(dir, patch.path) : `${dir} (inline patch)`;
    const documents = patch.path ? readYamlDocuments(origin) : [];
    if (patch.patch)
      documents.push(...(parseAllDocuments(patch.patch) as { toJS(): Json }[]).map((doc) => doc.toJS()));
    if (documents.length !== 1)
      throw new Error(`${origin}: kustomize's patches take exactly one patch per entry`);
    acc.objects = applyPatch(acc.objects, asK8sObject(documents[0] ?? null, origin), origin);
  }
  applyImages(acc.objects, kustomization.images ?? []);
  if (kustomization.namePrefix) applyNamePrefix(acc, kustomization.namePrefix);
  for (const labels of kustomization.labels ?? []) applyLabels(acc.objects, labels);
  if (kustomization.namespace) {
    for (const object of acc.objects) object.metadata['namespace'] = kustomization.namespace;
  }
  return acc;
}

function contentHash(object: K8sObject): string {
  return createHash('sha256')
    .update(JSON.stringify({ kind: object.kind, name: object.metadata.name, data: object['data'] ?? {} }))
    .digest('hex')
    .slice(0, 10);
}

/** Rewrites ConfigMap references in pod templates (volumes, envFrom, env valueFrom). */
function rewriteConfigMapReferences(objects: K8sObject[], names: Map<string, string>): void {
  const rename = (holder: Json, field: string): void => {
    if (!isObject(holder)) return;
    const value = holder[field];
    if (typeof value === 'string' && names.has(value)) holder[field] = names.get(value) ?? value;
  };
  const visit = (node: Json): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!isObject(node)) return;
    rename(node['configMap'] ?? null, 'name');
    rename(node['configMapRef'] ?? null, 'name');
    rename(node['configMapKeyRef'] ?? null, 'name');
    for (const value of Object.values(node)) visit(value);
  };
  for (const object of objects) {
    if (object.kind !== 'ConfigMap') visit(object['spec'] ?? null);
  }
}

/** Renders a kustomization directory like `kustomize build DIR`. */
export function renderKustomization(dir: string, options: RenderOptions = {}): Rendered {
  const acc = accumulate(resolve(dir), options, true);
  const generatedNames = new Map<string, string>();
  for (const object of acc.objects) {
    if (object.kind === 'ConfigMap' && acc.generated.has(object.metadata.name)) {
      const logical = object.metadata.name;
      object.metadata.name = `${logical}-${contentHash(object)}`;
      generatedNames.set(logical, object.metadata.name);
    }
  }
  rewriteConfigMapReferences(acc.objects, generatedNames);
  return { objects: acc.objects, generatedNames };
}

/**
 * walpurge.yaml with its commented-out `inspect` section (the consistency observer) turned on, as the
 * comment in deploy/k8s/base/walpurge.yaml tells the user to: the `# inspect:` line and the `#   …`
 * lines under it lose their `# `. Throws when the file has no such section.
 */
export function withInspectSection(walpurgeYaml: string): string {
  const lines = walpurgeYaml.split('\n');
  const start = lines.indexOf('# inspect:');
  if (start < 0) throw new Error('walpurge.yaml has no commented-out `# inspect:` section');
  let end = start + 1;
  while (lines[end]?.startsWith('#   ')) end += 1;
  return [
    ...lines.slice(0, start),
    ...lines.slice(start, end).map((line) => line.slice(2)),
    ...lines.slice(end),
  ].join('\n');
}

/**
 * Renders `<k8sDir>/<dir>` from a temporary copy of k8sDir whose files (paths relative to k8sDir)
 * were first changed by `edits`: a setup a user makes by editing the tree as its comments say.
 */
export function renderEditedKustomization(
  k8sDir: string,
  dir: string,
  edits: Record<string, (text: string) => string>,
  options: RenderOptions = {},
): Rendered {
  const copy = mkdtempSync(join(tmpdir(), 'walpurge-k8s-'));
  try {
    cpSync(k8sDir, copy, { recursive: true });
    for (const [file, edit] of Object.entries(edits))
      writeFileSync(join(copy, file), edit(readFileSync(join(copy, file), 'utf8')));
    return renderKustomization(join(copy, dir), options);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
