import { afterEach, describe, expect, it } from 'vitest';
import { Counter, createMetricsRegistry } from './metrics.js';
import { startOpsServer, type OpsServer } from './ops-server.js';

let server: OpsServer | undefined;
afterEach(async () => server?.close());

describe('ops server', () => {
  it('serves metrics, liveness and readiness that reflect real checks', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    new Counter({ name: 'walpurge_test_total', help: 'test', registers: [registry] }).inc(3);
    let ready: boolean | string = 'slot not streaming';
    server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      liveness: [{ name: 'loop', check: () => true }],
      readiness: [{ name: 'listener', check: () => ready }],
    });
    const base = `http://127.0.0.1:${server.port}`;
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('walpurge_test_total 3');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({
      status: 'unavailable',
      checks: { listener: 'slot not streaming' },
    });
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
