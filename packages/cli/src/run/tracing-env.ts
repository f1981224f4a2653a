import { z } from 'zod';
import { UsageError } from '../cli-io.js';
import type { Role } from './roles.js';

/** The samplers of OTEL_TRACES_SAMPLER that walpurge implements (the OpenTelemetry spec's list). */
export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part.length > 0);

const positiveInt = z.coerce.number().int().positive();

/** The standard OTEL_* variables walpurge reads itself (the OTLP exporter reads its headers, timeout and compression). */
const TracingEnv = z.object({
  OTEL_SDK_DISABLED: z.string().optional(),
  OTEL_TRACES_EXPORTER: z.string().optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.string().optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.string().optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_TRACES_SAMPLER: z.enum(SAMPLERS).optional(),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
  OTEL_PROPAGATORS: z.string().optional(),
  OTEL_BSP_SCHEDULE_DELAY: positiveInt.optional(),
  OTEL_BSP_EXPORT_TIMEOUT: positiveInt.optional(),
  OTEL_BSP_MAX_QUEUE_SIZE: positiveInt.optional(),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: positiveInt.optional(),
});

export type TracingPlan =
  | { enabled: false; reason: string }
  | {
      enabled: true;
      /** OTEL_SERVICE_NAME, else `walpurge-<role>` (service.name in OTEL_RESOURCE_ATTRIBUTES wins over the latter). */
      serviceName: string;
      /** Where OTLP/HTTP spans go (the traces URL), when `otlp` is an exporter. */
      otlpUrl: string | undefined;
      /** How OTLP spans are encoded: the specification's default http/protobuf, or http/json. */
      protocol: OtlpProtocol;
      console: boolean;
      sampler: SamplerName;
      ratio: number;
      propagators: Array<'tracecontext' | 'baggage'>;
      batch: {
        scheduledDelayMillis?: number;
        exportTimeoutMillis?: number;
        maxQueueSize?: number;
        maxExportBatchSize?: number;
      };
      /** Settings walpurge does not honour, said in the start-up log line. */
      warnings: string[];
    };

const SUPPORTED_EXPORTERS = new Set(['otlp', 'console', 'none']);

/**
 * Whether and how `walpurge run` traces, from the standard OpenTelemetry variables. Off unless
 * asked for: OTEL_TRACES_EXPORTER names `otlp` or `console`, or (exporter unset) an OTLP endpoint is
 * set; OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none, turns it off whatever else is set.
 */
export function tracingPlan(env: Record<string, string | undefined>, role: Role): TracingPlan {
  // On or off first, from the raw values: a stray OTEL_* variable must not stop a process that
  // does not trace at all. The variables are checked only when tracing is on.
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true')
    return { enabled: false, reason: 'OTEL_SDK_DISABLED=true' };
  const endpointSet = [env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'], env['OTEL_EXPORTER_OTLP_ENDPOINT']].some(
    (value) => value !== undefined && value !== '',
  );
  const exporters =
    env['OTEL_TRACES_EXPORTER'] !== undefined
      ? list(env['OTEL_TRACES_EXPORTER'])
      : endpointSet
        ? ['otlp']
        : [];
  if (exporters.length === 0)
    return {
      enabled: false,
      reason: 'neither OTEL_TRACES_EXPORTER nor OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set',
    };
  if (exporters.includes('none')) return { enabled: false, reason: 'OTEL_TRACES_EXPORTER=none' };
  const unknown = exporters.filter((name) => !SUPPORTED_EXPORTERS.has(name));
  if (unknown.length > 0)
    throw new UsageError(
      `tracing: OTEL_TRACES_EXPORTER: unsupported exporter ${unknown.join(', ')} (walpurge exports otlp over HTTP, console, or none)`,
      'run',
    );

  const parsed = TracingEnv.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(
      `tracing: ${String(issue?.path[0] ?? 'OTEL_*')}: ${issue?.message ?? 'invalid value'}`,
      'run',
    );
  }
  const vars = parsed.data;
  const warnings: string[] = [];
  const protocol = otlpProtocol(vars.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? vars.OTEL_EXPORTER_OTLP_PROTOCOL);
  const propagators: Array<'tracecontext' | 'baggage'> = [];
  for (const name of list(vars.OTEL_PROPAGATORS ?? 'tracecontext,baggage')) {
    if (name === 'tracecontext' || name === 'baggage') propagators.push(name);
    else if (name !== 'none') warnings.push(`propagator ${name} is not supported and ignored`);
  }
  return {
    enabled: true,
    serviceName: vars.OTEL_SERVICE_NAME ?? `walpurge-${role}`,
    otlpUrl: exporters.includes('otlp') ? otlpTracesUrl(vars) : undefined,
    protocol,
    console: exporters.includes('console'),
    sampler: vars.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on',
    ratio: vars.OTEL_TRACES_SAMPLER_ARG ?? 1,
    propagators,
    batch: {
      ...(vars.OTEL_BSP_SCHEDULE_DELAY ? { scheduledDelayMillis: vars.OTEL_BSP_SCHEDULE_DELAY } : {}),
      ...(vars.OTEL_BSP_EXPORT_TIMEOUT ? { exportTimeoutMillis: vars.OTEL_BSP_EXPORT_TIMEOUT } : {}),
      ...(vars.OTEL_BSP_MAX_QUEUE_SIZE ? { maxQueueSize: vars.OTEL_BSP_MAX_QUEUE_SIZE } : {}),
      ...(vars.OTEL_BSP_MAX_EXPORT_BATCH_SIZE
        ? { maxExportBatchSize: vars.OTEL_BSP_MAX_EXPORT_BATCH_SIZE }
        : {}),
    },
    warnings,
  };
}

export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: http/protobuf (the specification's default) or http/json. */
function otlpProtocol(value: string | undefined): OtlpProtocol {
  const protocol = value?.trim().toLowerCase() || 'http/protobuf';
  if (protocol === 'http/protobuf' || protocol === 'http/json') return protocol;
  throw new UsageError(
    protocol === 'grpc'
      ? "tracing: OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported; use http/protobuf (the collector's port 4318)"
      : `tracing: OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol ${protocol} (walpurge sends http/protobuf or http/json)`,
    'run',
  );
}

/** The spec's rule: the signal-specific URL as it is, else the base endpoint + /v1/traces. */
function otlpTracesUrl(vars: z.infer<typeof TracingEnv>): string {
  if (vars.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return vars.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = vars.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318';
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}
