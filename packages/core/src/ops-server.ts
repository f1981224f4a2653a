import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthCheck {
  name: string;
  /** true when healthy; a string explains why not. */
  check(): boolean | string | Promise<boolean | string>;
}

export interface OpsServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** Liveness: is the process able to make progress at all (event loop alive, not wedged)? */
  liveness?: HealthCheck[];
  /** Readiness: is it doing its job right now (slot streaming, consumer joined, queue reachable)? */
  readiness?: HealthCheck[];
  /** More GET routes answered with JSON (e.g. the consistency observer's /inspect). */
  json?: Record<string, () => unknown>;
}

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

async function runChecks(checks: HealthCheck[]): Promise<{ ok: boolean; checks: Record<string, string> }> {
  const results: Record<string, string> = {};
  let ok = true;
  for (const health of checks) {
    let outcome: boolean | string;
    try {
      outcome = await health.check();
    } catch (error) {
      outcome = error instanceof Error ? error.message : String(error);
    }
    if (outcome === true) results[health.name] = 'ok';
    else {
      ok = false;
      results[health.name] = outcome === false ? 'failing' : outcome;
    }
  }
  return { ok, checks: results };
}

/** `/metrics`, `/healthz`, `/readyz`; tiny on purpose so it can run beside every role. */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const respond = async (): Promise<void> => {
      if (path === '/metrics') {
        const body = await options.registry.metrics();
        res.writeHead(200, { 'content-type': options.registry.contentType });
        res.end(body);
        return;
      }
      if (path === '/healthz' || path === '/readyz') {
        const result = await runChecks((path === '/healthz' ? options.liveness : options.readiness) ?? []);
        res.writeHead(result.ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: result.ok ? 'ok' : 'unavailable', checks: result.checks }));
        return;
      }
      const json = path === undefined ? undefined : options.json?.[path];
      if (json) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json()));
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    };
    respond().catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${error instanceof Error ? error.message : String(error)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
