import { context, propagation, trace, type TextMapPropagator } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { redactSecrets, settlesWithin, type Logger } from '@walpurge/core';
import { cliVersion } from '../version.js';
import type { Role } from './roles.js';
import { bridgeTracingDiagnostics } from './tracing-diagnostics.js';
import { tracingPlan, type SamplerName, type TracingPlan } from './tracing-env.js';

/** The tracing of one `walpurge run`: says at start what it does, flushes its spans at the end. */
export interface Tracing {
  readonly enabled: boolean;
  /** The one start-up log line: on or off, and where spans go. */
  log(logger: Logger): void;
  /** Exports the spans still buffered and uninstalls the SDK (a later run may install it again). */
  shutdown(): Promise<void>;
}

/** How long shutdown waits for the last export: an unreachable collector must not hold the exit. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

function sampler(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

function propagator(plan: TracingPlan & { enabled: true }): TextMapPropagator {
  const parts: TextMapPropagator[] = plan.propagators.map((name) =>
    name === 'tracecontext' ? new W3CTraceContextPropagator() : new W3CBaggagePropagator(),
  );
  return new CompositePropagator({ propagators: parts });
}

/**
 * Installs the OpenTelemetry SDK for `walpurge run` when the standard variables ask for it
 * (tracingPlan), before any service is built: services check once, when built, whether a tracer
 * provider is there (activeTracer), and the code outside this file uses only @opentelemetry/api.
 */
export function startTracing(env: Record<string, string | undefined>, role: Role): Tracing {
  const plan = tracingPlan(env, role);
  if (!plan.enabled)
    return {
      enabled: false,
      log: (logger) => logger.info({ tracing: false }, `tracing off (${plan.reason})`),
      shutdown: () => Promise.resolve(),
    };
  const processors: SpanProcessor[] = [];
  if (plan.otlpUrl !== undefined) {
    const exporter =
      plan.protocol === 'http/json'
        ? new OTLPJsonTraceExporter({ url: plan.otlpUrl })
        : new OTLPProtobufTraceExporter({ url: plan.otlpUrl });
    processors.push(new BatchSpanProcessor({ exporter, ...plan.batch }));
  }
  if (plan.console) processors.push(new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() }));
  // The specification's order: OTEL_SERVICE_NAME, then service.name in OTEL_RESOURCE_ATTRIBUTES
  // (both read by envDetector), then walpurge's default.
  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: plan.serviceName,
        [ATTR_SERVICE_VERSION]: cliVersion(),
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));
  const serviceName = String(resource.attributes[ATTR_SERVICE_NAME] ?? plan.serviceName);
  const provider = new TracerProvider({
    resource,
    sampler: sampler(plan.sampler, plan.ratio),
    spanProcessors: processors,
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(propagator(plan));
  trace.setGlobalTracerProvider(provider);
  const destinations = [
    ...(plan.otlpUrl !== undefined ? [`${redactSecrets(plan.otlpUrl)} (OTLP ${plan.protocol})`] : []),
    ...(plan.console ? ['the console'] : []),
  ];
  let stopping: Promise<void> | undefined;
  let unbridge: (() => void) | undefined;
  return {
    enabled: true,
    log: (logger) => {
      unbridge ??= bridgeTracingDiagnostics(logger);
      const sampling = plan.sampler.endsWith('traceidratio') ? `${plan.sampler} ${plan.ratio}` : plan.sampler;
      logger.info(
        { tracing: true, serviceName, sampler: plan.sampler, ratio: plan.ratio },
        `tracing on: spans of ${serviceName} exported to ${destinations.join(' and ')}, sampler ${sampling}`,
      );
      for (const warning of plan.warnings) logger.warn(`tracing: ${warning}`);
    },
    shutdown: () =>
      (stopping ??= (async () => {
        await settlesWithin(provider.shutdown(), SHUTDOWN_TIMEOUT_MS);
        unbridge?.();
        trace.disable();
        propagation.disable();
        context.disable();
      })()),
  };
}
