import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../cli-io.js';
import { SAMPLERS, tracingPlan } from './tracing-env.js';

const tracingDoc = readFileSync(new URL('../../../../docs/tracing.md', import.meta.url), 'utf8');

describe('tracingPlan', () => {
  it('is off by default, with the reason', () => {
    expect(tracingPlan({}, 'all')).toEqual({
      enabled: false,
      reason: 'neither OTEL_TRACES_EXPORTER nor OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set',
    });
  });

  it('turns on with an OTLP endpoint alone, exporting to its /v1/traces', () => {
    const plan = tracingPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, 'listener');
    expect(plan).toMatchObject({
      enabled: true,
      serviceName: 'walpurge-listener',
      otlpUrl: 'http://collector:4318/v1/traces',
      console: false,
      sampler: 'parentbased_always_on',
      propagators: ['tracecontext', 'baggage'],
    });
  });

  it('takes the traces endpoint as it is, the service name and the sampler from the environment', () => {
    const plan = tracingPlan(
      {
        OTEL_TRACES_EXPORTER: 'otlp,console',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/custom',
        OTEL_SERVICE_NAME: 'cache-purger',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
        OTEL_BSP_SCHEDULE_DELAY: '2000',
      },
      'invalidator',
    );
    expect(plan).toMatchObject({
      enabled: true,
      serviceName: 'cache-purger',
      otlpUrl: 'http://collector:4318/custom',
      console: true,
      sampler: 'parentbased_traceidratio',
      ratio: 0.25,
      batch: { scheduledDelayMillis: 2000 },
    });
  });

  it('exports to the console alone without an OTLP URL', () => {
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'console' }, 'all')).toMatchObject({
      enabled: true,
      otlpUrl: undefined,
      console: true,
    });
  });

  it('stays off when OTEL_SDK_DISABLED=true or the exporter is none, whatever else is set', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'otlp' };
    expect(tracingPlan({ ...endpoint, OTEL_SDK_DISABLED: 'TRUE' }, 'all')).toEqual({
      enabled: false,
      reason: 'OTEL_SDK_DISABLED=true',
    });
    expect(tracingPlan({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' }, 'all')).toMatchObject({
      enabled: false,
    });
  });

  it('sends http/protobuf by default, http/json when asked, and warns about propagators it does not know', () => {
    const plan = tracingPlan({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_PROPAGATORS: 'tracecontext,b3' }, 'all');
    expect(plan.enabled && plan.protocol).toBe('http/protobuf');
    expect(plan.enabled && plan.warnings).toEqual(['propagator b3 is not supported and ignored']);
    expect(plan.enabled && plan.propagators).toEqual(['tracecontext']);
    const json = tracingPlan(
      {
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      },
      'all',
    );
    expect(json.enabled && json.protocol).toBe('http/json');
  });

  it('refuses grpc when tracing is on, saying what to use instead', () => {
    expect(() =>
      tracingPlan({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'all'),
    ).toThrow(
      new UsageError(
        "tracing: OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported; use http/protobuf (the collector's port 4318)",
        'run',
      ),
    );
  });

  it('refuses an unknown exporter, sampler or a malformed endpoint in one line naming the variable', () => {
    expect(() => tracingPlan({ OTEL_TRACES_EXPORTER: 'jaeger' }, 'all')).toThrow(
      new UsageError(
        'tracing: OTEL_TRACES_EXPORTER: unsupported exporter jaeger (walpurge exports otlp over HTTP, console, or none)',
        'run',
      ),
    );
    expect(() =>
      tracingPlan({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'sometimes' }, 'all'),
    ).toThrow(/^tracing: OTEL_TRACES_SAMPLER: /);
    expect(() => tracingPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector' }, 'all')).toThrow(
      /^tracing: OTEL_EXPORTER_OTLP_ENDPOINT: /,
    );
  });

  it('ignores stray or malformed OTEL_* variables while tracing is off', () => {
    const stray = {
      OTEL_TRACES_SAMPLER: 'xray',
      OTEL_TRACES_SAMPLER_ARG: 'half',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_BSP_SCHEDULE_DELAY: '-1',
    };
    expect(tracingPlan(stray, 'all')).toMatchObject({ enabled: false });
    expect(tracingPlan({ ...stray, OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }, 'all')).toEqual(
      { enabled: false, reason: 'OTEL_SDK_DISABLED=true' },
    );
    expect(tracingPlan({ ...stray, OTEL_TRACES_EXPORTER: 'none' }, 'all')).toMatchObject({ enabled: false });
  });

  it('implements every sampler docs/tracing.md lists', () => {
    for (const sampler of SAMPLERS) expect(tracingDoc).toContain(`\`${sampler}\``);
  });
});
