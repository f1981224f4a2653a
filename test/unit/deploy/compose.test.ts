import { shutdownDeadlineMs } from 'walpurge';
/**
 * docker-compose.yml cannot be run here (no Docker engine), so it is checked against the code: the
 * roles it starts are the CLI's, each walpurge service's mounted config parses with the environment
 * the service sets, the backing services are configured the way walpurge's guarantees need, and the
 * database role script gives the publication the config names.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseConfigText, type WalpurgeConfig } from '@walpurge/config';
import { cliEnvVars, parseInvocation, splitRoles } from './cli-spec.js';
import { parseDockerfile } from './dockerfile.js';
import { configEnvReferences, productionSources, readRepoFile, repoPath } from './workspace.js';

const Healthcheck = z.looseObject({ test: z.union([z.string(), z.array(z.string())]) });
const Service = z.looseObject({
  image: z.string().optional(),
  build: z.looseObject({ context: z.string(), dockerfile: z.string() }).optional(),
  command: z.union([z.string(), z.array(z.string())]).optional(),
  environment: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  volumes: z.array(z.string()).optional(),
  ports: z.array(z.string()).optional(),
  healthcheck: Healthcheck.optional(),
  depends_on: z.record(z.string(), z.looseObject({ condition: z.string() })).optional(),
  read_only: z.boolean().optional(),
  tmpfs: z.array(z.string()).optional(),
  stop_grace_period: z.string().optional(),
});
type Service = z.infer<typeof Service>;
const Compose = z.looseObject({ services: z.record(z.string(), Service) });

// Compose resolves YAML merge keys (`<<: *walpurge`); so does the parser here.
const compose = Compose.parse(parseYaml(readRepoFile('docker-compose.yml'), { merge: true }));
const services = Object.entries(compose.services);

interface WalpurgeService {
  name: string;
  service: Service;
  role: string;
  configFile: string;
  configText: string;
  config: WalpurgeConfig;
  env: Record<string, string>;
}

const args = (command: Service['command']): string[] =>
  typeof command === 'string' ? command.split(/\s+/) : (command ?? []);

function walpurgeServices(): WalpurgeService[] {
  return services
    .filter(([, service]) => service.build?.dockerfile === 'deploy/Dockerfile')
    .map(([name, service]) => {
      const invocation = parseInvocation(args(service.command));
      const role = invocation.options['role'];
      const configPath = invocation.options['config'];
      if (typeof role !== 'string' || typeof configPath !== 'string')
        throw new Error(`${name}: --role and --config must be explicit`);
      const mount = (service.volumes ?? [])
        .map((volume) => volume.split(':'))
        .find(([, target]) => target === configPath);
      if (!mount?.[0]) throw new Error(`${name}: nothing is mounted at --config ${configPath}`);
      const configFile = mount[0].replace(/^\.\//, '');
      if (!existsSync(repoPath(configFile))) {
        throw new Error(
          `${name}: mounts ${configFile}, which does not exist (examples/ is kept by the CLI's owners)`,
        );
      }
      const env = Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([key, value]) => [key, String(value)]),
      );
      const configText = readRepoFile(configFile);
      const { config } = parseConfigText(configText, configFile, { env });
      return { name, service, role, configFile, configText, config, env };
    });
}

const hostPort = (mapping: string): string => mapping.split(':').slice(0, -1).join(':');

describe('docker-compose.yml', () => {
  it('starts every role except `all` from the one image built by deploy/Dockerfile', () => {
    const walpurge = walpurgeServices();
    const roles = splitRoles();
    expect(walpurge.map((entry) => entry.role).sort()).toEqual([...roles].sort());
    const images = new Set(walpurge.map((entry) => entry.service.image));
    expect(images.size, 'one image for all roles').toBe(1);
    for (const { name, service } of walpurge) {
      expect(service.build?.context, name).toBe('.');
      expect(service.read_only, `${name}: read-only root like in Kubernetes`).toBe(true);
      expect(service.tmpfs, name).toContain('/tmp');
    }
  });

  it('gives each role a config that parses, with the transport its role needs', () => {
    for (const { name, role, config } of walpurgeServices()) {
      if (role === 'listener' || role === 'invalidator') {
        expect(config.transport, name).toBe('kafka');
        expect(config.kafka?.brokers, name).toEqual(['kafka:9092']);
        expect(config.rules.length, `${name} has rules`).toBeGreaterThan(0);
      }
      if (role === 'flusher') {
        expect(config.flusher, `${name}: flusher section`).toBeDefined();
        expect(config.flusher?.queueRedisUrl, `${name}: the queue Redis, not the cache`).toMatch(
          /\/\/redis-queue:/,
        );
      }
      if (config.redis) expect(config.redis.url, `${name}: the cache Redis`).toMatch(/\/\/redis:/);
      expect(config.database?.url, name).toMatch(/@postgres:5432\//);
    }
  });

  it('sets only environment variables the config or the code reads', () => {
    const known = cliEnvVars();
    const sources = productionSources();
    for (const { name, configText, env } of walpurgeServices()) {
      const referenced = configEnvReferences(configText);
      const names = new Set(referenced.map((reference) => reference.name));
      for (const variable of Object.keys(env)) {
        const read =
          names.has(variable) ||
          known.has(variable) ||
          sources.some(({ text }) => new RegExp(`\\b${variable}\\b`).test(text));
        expect(read, `${name}: ${variable} is read by neither the config nor the code`).toBe(true);
      }
    }
  });

  it('publishes each ops server on its own host port, mapped to http.port', () => {
    const published = new Set<string>();
    for (const { name, service, config } of walpurgeServices()) {
      const port = config.http.port;
      const mapping = (service.ports ?? []).find((candidate) => candidate.endsWith(`:${port}`));
      expect(mapping, `${name} publishes ${port}`).toBeDefined();
      const host = hostPort(mapping ?? '');
      expect(published.has(host), `${name}: host port ${host} is taken`).toBe(false);
      published.add(host);
    }
  });

  it('waits for healthy dependencies, and gives walpurge room to drain on stop', () => {
    for (const { name, service } of walpurgeServices()) {
      const dependencies = Object.entries(service.depends_on ?? {});
      expect(dependencies.length, name).toBeGreaterThan(0);
      for (const [dependency, { condition }] of dependencies) {
        expect(compose.services[dependency]?.healthcheck, `${dependency} has a healthcheck`).toBeDefined();
        expect(condition, `${name} → ${dependency}`).toBe('service_healthy');
      }
    }
    // Docker sends SIGKILL after stop_grace_period: it must outlast walpurge's own shutdown deadline.
    for (const { name, service, config } of walpurgeServices()) {
      const deadline = shutdownDeadlineMs(config) / 1000;
      expect(
        Number(/^(\d+)s$/.exec(service.stop_grace_period ?? '')?.[1]),
        `${name} stop_grace_period vs walpurge's ${deadline} s shutdown deadline`,
      ).toBeGreaterThanOrEqual(deadline + 5);
    }
    // walpurge services inherit the image's HEALTHCHECK (GET /healthz); the others declare theirs.
    const imageHealthcheck = parseDockerfile(readRepoFile('deploy/Dockerfile'))
      .stages.at(-1)
      ?.instructions.find((instruction) => instruction.keyword === 'HEALTHCHECK');
    expect(imageHealthcheck?.args, 'the image checks /healthz').toMatch(/\/healthz/);
    const walpurge = new Set(walpurgeServices().map((entry) => entry.name));
    for (const [name, service] of services.filter(([candidate]) => !walpurge.has(candidate))) {
      expect(service.healthcheck, `${name} healthcheck`).toBeDefined();
    }
  });

  it('runs PostgreSQL 16 with logical WAL, and a KRaft Kafka 3.9', () => {
    const postgres = compose.services['postgres'];
    expect(postgres?.image).toMatch(/^postgres:16/);
    expect(args(postgres?.command)).toContain('wal_level=logical');
    const kafka = compose.services['kafka'];
    expect(kafka?.image).toBe('apache/kafka:3.9.1');
    expect(String(kafka?.environment?.['KAFKA_PROCESS_ROLES'])).toMatch(/controller/);
    expect(
      services.some(([name]) => /zookeeper/.test(name)),
      'no ZooKeeper',
    ).toBe(false);
  });

  it('keeps the write-behind queue on a persistent, non-evicting Redis apart from the evicting cache', () => {
    const flusher = walpurgeServices().find((entry) => entry.role === 'flusher');
    const queueHost = /\/\/([^:/]+)/.exec(flusher?.config.flusher?.queueRedisUrl ?? '')?.[1] ?? '';
    const queue = args(compose.services[queueHost]?.command).join(' ');
    expect(queue).toMatch(/--appendonly yes/);
    expect(queue).toMatch(/--maxmemory-policy noeviction/);
    const cacheHost =
      /\/\/([^:/]+)/.exec(
        walpurgeServices().find((entry) => entry.config.redis)?.config.redis?.url ?? '',
      )?.[1] ?? '';
    expect(cacheHost).not.toBe(queueHost);
    expect(args(compose.services[cacheHost]?.command).join(' ')).not.toMatch(/noeviction/);
  });

  it('creates the publication the config names, for the tables its rules name, and the role in DATABASE_URL', () => {
    const postgres = compose.services['postgres'];
    const initScripts = (postgres?.volumes ?? [])
      .map((volume) => volume.split(':'))
      .filter(([, target]) => target?.startsWith('/docker-entrypoint-initdb.d/'))
      .map(([source]) => (source ?? '').replace(/^\.\//, ''));
    for (const script of initScripts) expect(existsSync(repoPath(script)), script).toBe(true);
    const sql = initScripts.map((script) => readRepoFile(script)).join('\n');
    for (const { name, config } of walpurgeServices().filter((entry) => entry.role === 'listener')) {
      const publication = config.database?.publication ?? '';
      const statement = new RegExp(`CREATE PUBLICATION ${publication} FOR TABLE ([^;]+);`).exec(sql);
      expect(statement, `${name}: CREATE PUBLICATION ${publication}`).not.toBeNull();
      const published = (statement?.[1] ?? '').split(',').map((table) => table.trim());
      for (const rule of config.rules) {
        const table = rule.table.includes('.') ? rule.table : `public.${rule.table}`;
        expect(published, `publication covers ${table}`).toContain(table);
      }
      const user = new URL(config.database?.url ?? '').username;
      expect(sql, `role ${user} with REPLICATION`).toMatch(
        new RegExp(`CREATE ROLE ${user} WITH LOGIN REPLICATION`),
      );
    }
  });

  it('references every env var the mounted configs need without a default', () => {
    for (const { name, configText, env } of walpurgeServices()) {
      for (const reference of configEnvReferences(configText).filter((candidate) => !candidate.hasDefault)) {
        expect(env[reference.name], `${name} sets ${reference.name}`).toBeDefined();
      }
    }
  });
});
