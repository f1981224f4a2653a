/**
 * The alerts of deploy/k8s/components/monitoring/prometheusrule.yaml evaluated by Prometheus' own rule
 * engine (`promtool test rules`) against sample series shaped like what the ServiceMonitor scrapes:
 * two installations in one namespace, the second renamed with a kustomize namePrefix, standby
 * listeners, several flusher pods reporting one queue-wide value.
 *
 * promtool comes from ensurePromtool (fetched once per machine from Debian's prometheus package, a
 * few seconds the first time); each case is one promtool run (~0.1 s).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { z } from 'zod';
import { ensurePromtool } from '@walpurge/testing';
import { RULES_SOURCE } from './alert-source.js';
import { readYamlDocuments } from './kustomize.js';
import { repoPath } from './workspace.js';

const run = promisify(execFile);
const rulesFile = repoPath(RULES_SOURCE);

const RuleGroups = z.array(
  z.looseObject({
    name: z.string(),
    rules: z.array(z.looseObject({ alert: z.string(), annotations: z.record(z.string(), z.string()) })),
  }),
);

let promtool: string;
let dir: string;

beforeAll(async () => {
  promtool = await ensurePromtool({ log: (line) => console.error(line) });
  dir = mkdtempSync(join(tmpdir(), 'walpurge-promtool-'));
  const [rule] = readYamlDocuments(rulesFile);
  const groups = RuleGroups.parse(
    z.looseObject({ spec: z.looseObject({ groups: z.unknown() }) }).parse(rule).spec.groups,
  );
  // The whole file, annotations and all, for `promtool check rules`.
  writeFileSync(join(dir, 'all-rules.yaml'), stringify({ groups }));
  // promtool test rules compares annotations too; they are prose checked by `check rules` (templates
  // parse) and by the runbook tests. The cases here are about which alerts fire with which labels.
  const withoutAnnotations = groups.map((group) => ({
    ...group,
    rules: group.rules.map(({ annotations: _prose, ...rest }) => rest),
  }));
  writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: withoutAnnotations }));
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Target labels of one scraped pod as the ServiceMonitor writes them. */
function target(instance: string, pod: string, role: string): Record<string, string> {
  return {
    namespace: 'shop',
    app_kubernetes_io_instance: instance,
    app_kubernetes_io_part_of: 'walpurge',
    // The Service's name: `walpurge-metrics`, or `<prefix>walpurge-metrics` with a namePrefix.
    service: instance === 'walpurge' ? 'walpurge-metrics' : `${instance}-walpurge-metrics`,
    job: instance === 'walpurge' ? 'walpurge-metrics' : `${instance}-walpurge-metrics`,
    pod,
    role,
  };
}

function series(
  metric: string,
  labels: Record<string, string>,
  values: string,
): { series: string; values: string } {
  const rendered = Object.entries(labels)
    .map(([name, value]) => `${name}="${value}"`)
    .join(', ');
  return { series: `${metric}{${rendered}}`, values };
}

/** `up` and walpurge_listener_streaming of a listener pod. */
function listener(
  instance: string,
  pod: string,
  streaming: string,
  up = '1x20',
): ReturnType<typeof series>[] {
  const labels = target(instance, pod, 'listener');
  return [series('up', labels, up), series('walpurge_listener_streaming', labels, streaming)];
}

interface Expected {
  labels: Record<string, string>;
}

async function expectAlerts(
  name: string,
  inputSeries: ReturnType<typeof series>[],
  checks: { alertname: string; evalTime: string; expected: Expected[] }[],
): Promise<void> {
  const testFile = join(dir, `${name}.test.yaml`);
  writeFileSync(
    testFile,
    stringify({
      rule_files: ['rules.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: inputSeries,
          alert_rule_test: checks.map((check) => ({
            eval_time: check.evalTime,
            alertname: check.alertname,
            exp_alerts: check.expected.map((alert) => ({ exp_labels: alert.labels })),
          })),
        },
      ],
    }),
  );
  try {
    await run(promtool, ['test', 'rules', testFile], { cwd: dir });
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    expect.fail(`promtool test rules ${name}:\n${stdout}${stderr}`);
  }
}

const shop = { namespace: 'shop' };

/** WalpurgeNoActiveListener firing (after its 5 minutes) for exactly these installations of shop. */
function noActiveListener(...instances: string[]): Parameters<typeof expectAlerts>[2][number] {
  return {
    alertname: 'WalpurgeNoActiveListener',
    evalTime: '10m',
    expected: instances.map((instance) => ({
      labels: { ...shop, app_kubernetes_io_instance: instance, severity: 'critical' },
    })),
  };
}

describe('alert rules under Prometheus’ rule engine (promtool)', () => {
  it('promtool check rules accepts the whole file (syntax, templates, durations)', async () => {
    const { stdout } = await run(promtool, ['check', 'rules', join(dir, 'all-rules.yaml')]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  describe('WalpurgeNoActiveListener', () => {
    it('fires when both listeners of an installation stand by', async () => {
      await expectAlerts(
        'standby',
        [...listener('walpurge', 'listener-a', '0x20'), ...listener('walpurge', 'listener-b', '0x20')],
        [noActiveListener('walpurge')],
      );
    });

    it('stays quiet while one listener streams and the other stands by', async () => {
      await expectAlerts(
        'one-streams',
        [...listener('walpurge', 'listener-a', '1x20'), ...listener('walpurge', 'listener-b', '0x20')],
        [noActiveListener()],
      );
    });

    it('alerts per installation: a namePrefix’ed second install standing by fires while the first streams', async () => {
      await expectAlerts(
        'name-prefix',
        [
          ...listener('walpurge', 'listener-a', '1x20'),
          ...listener('walpurge', 'listener-b', '0x20'),
          ...listener('walpurge-b', 'b-listener-a', '0x20'),
          ...listener('walpurge-b', 'b-listener-b', '0x20'),
        ],
        [noActiveListener('walpurge-b')],
      );
    });

    it('fires when the listener pods are gone but the installation’s other pods are scraped', async () => {
      await expectAlerts(
        'listeners-gone',
        [
          ...listener('walpurge', 'listener-a', '1x20'),
          series('up', target('walpurge-b', 'b-invalidator-a', 'invalidator'), '1x20'),
        ],
        [noActiveListener('walpurge-b')],
      );
    });

    it('fires when no walpurge series is left at all', async () => {
      await expectAlerts(
        'nothing',
        [series('up', { namespace: 'other', job: 'something-else', pod: 'x' }, '1x20')],
        [
          {
            alertname: 'WalpurgeNoActiveListener',
            evalTime: '10m',
            expected: [{ labels: { severity: 'critical' } }],
          },
        ],
      );
    });
  });

  it('WalpurgeTargetDown names the pod, whatever the Service is called', async () => {
    await expectAlerts(
      'target-down',
      [
        ...listener('walpurge', 'listener-a', '1x20'),
        ...listener('walpurge-b', 'b-listener-a', '1x20'),
        series('up', target('walpurge-b', 'b-flusher-a', 'flusher'), '0x20'),
      ],
      [
        {
          alertname: 'WalpurgeTargetDown',
          evalTime: '10m',
          expected: [
            {
              labels: {
                ...shop,
                app_kubernetes_io_instance: 'walpurge-b',
                pod: 'b-flusher-a',
                severity: 'warning',
              },
            },
          ],
        },
      ],
    );
  });

  it('WalpurgeConsumerStalled fires once per topic on a restarted stalled consumer, then clears', async () => {
    const stalls = (pod: string, values: string): ReturnType<typeof series> =>
      series(
        'walpurge_invalidator_consumer_stalls_total',
        { ...target('walpurge', pod, 'invalidator'), topic: 'changes' },
        values,
      );
    const firing = {
      labels: { ...shop, app_kubernetes_io_instance: 'walpurge', topic: 'changes', severity: 'warning' },
    };
    await expectAlerts(
      'consumer-stalled',
      [stalls('walpurge-invalidator-a', '0x5 1x40'), stalls('walpurge-invalidator-b', '0x45')],
      [
        { alertname: 'WalpurgeConsumerStalled', evalTime: '4m', expected: [] },
        { alertname: 'WalpurgeConsumerStalled', evalTime: '8m', expected: [firing] },
        { alertname: 'WalpurgeConsumerStalled', evalTime: '30m', expected: [] },
      ],
    );
  });

  it('WalpurgeChangesLost fires per topic and reason on a gap in the change topic, then clears after an hour', async () => {
    const gaps = (pod: string, reason: string, values: string): ReturnType<typeof series> =>
      series(
        'walpurge_invalidator_change_log_gaps_total',
        { ...target('walpurge', pod, 'invalidator'), topic: 'changes', reason },
        values,
      );
    const firing = {
      labels: {
        ...shop,
        app_kubernetes_io_instance: 'walpurge',
        topic: 'changes',
        reason: 'removed',
        severity: 'critical',
      },
    };
    await expectAlerts(
      'changes-lost',
      [
        gaps('walpurge-invalidator-a', 'removed', '0x5 1x100'),
        gaps('walpurge-invalidator-b', 'removed', '0x105'),
        gaps('walpurge-invalidator-b', 'rewound', '0x105'),
      ],
      [
        { alertname: 'WalpurgeChangesLost', evalTime: '4m', expected: [] },
        { alertname: 'WalpurgeChangesLost', evalTime: '8m', expected: [firing] },
        { alertname: 'WalpurgeChangesLost', evalTime: '70m', expected: [] },
      ],
    );
  });

  it('WalpurgeStaleEntryConfirmed fires on the first confirmed SDK inconsistency (its series starts at 0)', async () => {
    // The observer creates each rule x timescale x writer series at 0 when it starts
    // (initInconsistentSeries): the first inconsistency is then an increase, not a new series.
    const checks = (writer: string, values: string): ReturnType<typeof series> =>
      series(
        'walpurge_inspect_checks_total',
        {
          ...target('walpurge', 'walpurge-inspector-a', 'inspector'),
          rule: 'items',
          timescale: '10s',
          writer,
          verdict: 'inconsistent',
        },
        values,
      );
    await expectAlerts(
      'stale-entry-confirmed',
      [checks('sdk', '0x5 1x15'), checks('other', '0x5 3x15')],
      [
        { alertname: 'WalpurgeStaleEntryConfirmed', evalTime: '4m', expected: [] },
        {
          alertname: 'WalpurgeStaleEntryConfirmed',
          evalTime: '8m',
          expected: [
            {
              labels: {
                ...shop,
                app_kubernetes_io_instance: 'walpurge',
                rule: 'items',
                timescale: '10s',
                severity: 'warning',
              },
            },
          ],
        },
      ],
    );
  });

  it('slot alerts fire per slot and database, not per installation', async () => {
    const labels = (slot: string, database: string): Record<string, string> => ({
      ...target('walpurge', 'listener-a', 'listener'),
      slot,
      database,
    });
    await expectAlerts(
      'slots',
      [
        series('walpurge_listener_slot_retained_wal_bytes', labels('walpurge', 'app'), '2147483648x30'),
        series('walpurge_listener_slot_retained_wal_bytes', labels('walpurge_audit', 'audit'), '1024x30'),
      ],
      [
        {
          alertname: 'WalpurgeSlotRetainingWal',
          evalTime: '20m',
          expected: [
            {
              labels: {
                ...shop,
                app_kubernetes_io_instance: 'walpurge',
                slot: 'walpurge',
                database: 'app',
                severity: 'warning',
              },
            },
          ],
        },
      ],
    );
  });

  it('WalpurgeKafkaTopicUnsafeDurability fires once per topic, though the listener and the invalidator both report it', async () => {
    const unsafe = (pod: string, role: string, topic: string, values: string): ReturnType<typeof series> =>
      series('walpurge_kafka_topic_unsafe_durability', { ...target('walpurge', pod, role), topic }, values);
    await expectAlerts(
      'kafka-durability',
      [
        unsafe('listener-a', 'listener', 'walpurge.changes', '1x20'),
        unsafe('invalidator-a', 'invalidator', 'walpurge.changes', '1x20'),
        unsafe('invalidator-a', 'invalidator', 'walpurge.cdn', '0x20'),
      ],
      [
        {
          alertname: 'WalpurgeKafkaTopicUnsafeDurability',
          evalTime: '10m',
          expected: [
            {
              labels: {
                ...shop,
                app_kubernetes_io_instance: 'walpurge',
                topic: 'walpurge.changes',
                severity: 'warning',
              },
            },
          ],
        },
      ],
    );
  });

  it('a queue-wide value reported by every flusher pod counts once (max, not sum)', async () => {
    const flusher = (pod: string): Record<string, string> => target('walpurge', pod, 'flusher');
    await expectAlerts(
      'queue-wide',
      [
        series('walpurge_flusher_oldest_pending_age_seconds', flusher('flusher-a'), '200x20'),
        series('walpurge_flusher_oldest_pending_age_seconds', flusher('flusher-b'), '200x20'),
        series('walpurge_flusher_oldest_pending_age_seconds', flusher('flusher-c'), '200x20'),
      ],
      [{ alertname: 'WalpurgeWriteBehindBacklogOld', evalTime: '10m', expected: [] }],
    );
  });

  it('a flusher restart (its counters start over) raises no write-behind failure alert', async () => {
    await expectAlerts(
      'flusher-restart',
      [
        // 3 permanent failures long ago, then the pod restarts and its counter starts from 0.
        series(
          'walpurge_flusher_failures_total',
          { ...target('walpurge', 'flusher-a', 'flusher'), kind: 'permanent' },
          '3x20 0x20',
        ),
      ],
      [{ alertname: 'WalpurgeWriteBehindFailures', evalTime: '25m', expected: [] }],
    );
  });

  it('WalpurgeCloudFrontPathsOverFreeTier adds up every installation (the free paths are per AWS account)', async () => {
    const paths = (instance: string): Record<string, string> =>
      target(instance, `${instance}-invalidator`, 'invalidator');
    await expectAlerts(
      'cloudfront',
      [
        series('walpurge_cdn_cloudfront_paths_total', paths('walpurge'), '0+10x60'),
        series('walpurge_cdn_cloudfront_paths_total', paths('walpurge-b'), '0+10x60'),
      ],
      // 600 paths each in the hour: neither installation is over 1,000 alone, both together are.
      [
        {
          alertname: 'WalpurgeCloudFrontPathsOverFreeTier',
          evalTime: '60m',
          expected: [{ labels: { severity: 'warning' } }],
        },
      ],
    );
  });
});
