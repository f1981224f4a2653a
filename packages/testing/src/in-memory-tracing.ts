import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';

export interface InMemoryTracing {
  /** Every span ended since the install, in the order they ended. */
  spans(): ReadableSpan[];
  /** Removes the provider, propagator and context manager again (spans built later are no-ops). */
  uninstall(): Promise<void>;
}

/**
 * Installs an OpenTelemetry SDK that keeps ended spans in memory, with the W3C trace-context
 * propagator and async context, as `walpurge run` does with tracing on. Install it before building
 * the services: they decide when built whether they trace.
 */
export function installInMemoryTracing(): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    spans: () => exporter.getFinishedSpans(),
    uninstall: async () => {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
