import { InspectConfig, connectRedis } from '@walpurge/config';
import { createLogger, createMetricsRegistry, errorMessage } from '@walpurge/core';
import {
  InspectReport,
  Observer,
  createInspectMetrics,
  createRowPool,
  readChangesSince,
  renderReport,
} from '@walpurge/inspector';
import { ExitCode, UsageError, writeLine } from '../cli-io.js';
import { configOption, jsonOption, stringOption, type CommandSpec } from '../command.js';
import { parseTime } from '../dlq/selectors.js';
import { loadCliConfig } from '../load-cli-config.js';

const COMMAND = 'inspect';

/** `--from`: a running observer's report, from its ops server. */
async function fetchReport(from: string): Promise<InspectReport> {
  const url = new URL('/inspect', from);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new UsageError(`cannot reach ${url.href}: ${errorMessage(error)}`, COMMAND);
  }
  if (!response.ok)
    throw new UsageError(
      `${url.href} answered ${response.status}: is the consistency observer running there (an inspect section, role inspector or all)?`,
      COMMAND,
    );
  return InspectReport.parse(await response.json());
}

export const inspectCommand: CommandSpec = {
  name: 'inspect',
  summary: 'Consistency report: how often the cache still held a value older than the committed row.',
  usage: 'walpurge inspect (--once --since DURATION [--sample-rate X] | --from URL) [--config FILE] [--json]',
  options: {
    config: configOption,
    once: {
      type: 'boolean',
      description:
        'Read the change topic from --since up to its end now, check every sampled change once, and report.',
    },
    since: {
      type: 'string',
      description: 'With --once: how far back to start (30s, 10m, 2h, or an ISO-8601 time).',
      valueName: 'TIME',
    },
    'sample-rate': {
      type: 'string',
      description: 'With --once: fraction of changes checked (default inspect.sampleRate, else 1).',
      valueName: 'X',
    },
    from: {
      type: 'string',
      description: "A running observer's ops address (http://host:9464): print its report.",
      valueName: 'URL',
    },
    json: jsonOption,
  },
  details: `--once needs transport: kafka (it reads the change topic with a throwaway consumer group). With
transport: inline the observer runs inside 'walpurge run --role all' (an inspect section): read its
report with --from. Progress goes to stderr. See docs/consistency.md.`,
  async run({ io, options }) {
    const from = stringOption(options, 'from');
    const json = options['json'] === true;
    let report: InspectReport;
    if (from !== undefined) report = await fetchReport(from);
    else {
      if (options['once'] !== true)
        throw new UsageError('give --once --since DURATION, or --from URL of a running observer', COMMAND);
      report = await inspectOnce(options, io);
    }
    io.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
    return ExitCode.Ok;
  },
};

/** report.unchecked's reason for the changes --once skips as too young to judge. */
const TOO_RECENT = 'younger-than-timescale';

async function inspectOnce(
  options: Parameters<CommandSpec['run']>[0]['options'],
  io: Parameters<CommandSpec['run']>[0]['io'],
): Promise<InspectReport> {
  const sinceText = stringOption(options, 'since');
  if (sinceText === undefined) throw new UsageError('--once needs --since (e.g. 10m)', COMMAND);
  const since = parseTime(sinceText, 'since', COMMAND, new Date());
  const { config } = await loadCliConfig(options, io);
  if (config.transport !== 'kafka' || !config.kafka)
    throw new UsageError(
      "--once reads the change topic and needs transport: kafka; with transport: inline run the observer in 'walpurge run --role all' (an inspect section) and use --from http://host:port",
      COMMAND,
    );
  if (!config.redis) throw new UsageError('the config has no redis section: nothing to inspect', COMMAND);
  const rateText = stringOption(options, 'sample-rate');
  const sampleRate = rateText === undefined ? (config.inspect?.sampleRate ?? 1) : Number(rateText);
  const parsed = InspectConfig.safeParse({ ...config.inspect, sampleRate });
  if (!parsed.success)
    throw new UsageError(`--sample-rate '${rateText ?? ''}' must be a number in (0, 1]`, COMMAND);
  // stdout is the report's: the observer's own lines (each inconsistency, Redis outages) go to stderr.
  const logger = createLogger({ level: 'warn', pretty: false, destination: io.stderr });
  const metrics = createInspectMetrics(createMetricsRegistry());
  const redis = connectRedis(config.redis, logger);
  const pool = config.database ? createRowPool(config.database) : undefined;
  const observer = new Observer({ config, inspect: parsed.data, redis, pool, metrics, logger });
  try {
    let lastShown = 0;
    const minAgeMs = Math.min(...parsed.data.timescalesMs);
    const { tooRecent } = await readChangesSince({
      kafka: config.kafka,
      groupPrefix: parsed.data.consumerGroup,
      sinceMs: since.getTime(),
      minAgeMs,
      metrics,
      onBatch: (events) => observer.checkNow(events),
      onProgress: ({ read, total }) => {
        const now = Date.now();
        if (now - lastShown < 2_000 && read < total) return;
        lastShown = now;
        writeLine(io.stderr, `inspect: ${read}/${total} changes read`);
      },
    });
    const report = observer.report();
    if (tooRecent > 0) {
      report.unchecked[TOO_RECENT] = (report.unchecked[TOO_RECENT] ?? 0) + tooRecent;
      writeLine(
        io.stderr,
        `inspect: ${tooRecent} changes committed less than ${minAgeMs} ms (the smallest timescale) before they were read were not checked: their purges may still be in flight`,
      );
    }
    return report;
  } finally {
    await observer.stop();
    await pool?.end().catch(() => undefined);
    redis.disconnect();
  }
}
