import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { DeviceInfo } from '../engine/engine.js';

/** What the control routes need from a running simulation. */
export interface Controllable {
  devices(): DeviceInfo[];
  faults(): unknown[];
  startFault(deviceId: string, fault: string, forMs?: number): void;
  stopFault(deviceId: string, fault?: string): number;
  stats(): unknown;
}

export interface ControlServer {
  port: number;
  url: string;
  stop(): Promise<void>;
}

const MAX_BODY = 16 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    // The dashboard is served from another origin (the gateway's port).
    'access-control-allow-origin': '*',
  });
  res.end(text);
}

const error = (res: ServerResponse, status: number, code: string, message: string): void =>
  send(res, status, { error: { code, message } });

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

/**
 * The simulators' small HTTP control (node:http, no framework: five routes):
 * GET /devices, GET /faults, GET /stats, POST /devices/:id/faults {fault, forMs?},
 * DELETE /devices/:id/faults/:fault (or /devices/:id/faults for all).
 */
export async function startControlServer(
  sim: Controllable,
  opts: { port: number; host?: string; logger: Logger },
): Promise<ControlServer> {
  const server: Server = createServer((req, res) => {
    handle(sim, req, res).catch((err: unknown) => {
      opts.logger.warn({ err: (err as Error).message }, 'control request failed');
      if (!res.headersSent) error(res, 500, 'GW_ERR_SIM_INTERNAL', (err as Error).message);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  opts.logger.info({ port }, 'simulator control listening');
  return {
    port,
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(sim: Controllable, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const method = req.method ?? 'GET';
  if (method === 'OPTIONS') {
    res.writeHead(204, {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET, POST, DELETE',
      'access-control-allow-headers': 'content-type',
    });
    res.end();
    return;
  }
  if (method === 'GET' && parts.length === 1 && parts[0] === 'devices') return send(res, 200, sim.devices());
  if (method === 'GET' && parts.length === 1 && parts[0] === 'faults') return send(res, 200, sim.faults());
  if (method === 'GET' && parts.length === 1 && parts[0] === 'stats') return send(res, 200, sim.stats());
  if (parts[0] === 'devices' && parts[2] === 'faults' && parts.length >= 3 && parts.length <= 4) {
    const id = parts[1] as string;
    if (!sim.devices().some((d) => d.id === id))
      return error(res, 404, 'GW_ERR_SIM_NO_DEVICE', `no device ${id}`);
    if (method === 'POST' && parts.length === 3) {
      let body: unknown;
      try {
        body = await readJson(req);
      } catch (err) {
        return error(res, 400, 'GW_ERR_SIM_BAD_REQUEST', (err as Error).message);
      }
      const b = (body ?? {}) as { fault?: unknown; forMs?: unknown };
      if (typeof b.fault !== 'string')
        return error(res, 400, 'GW_ERR_SIM_BAD_REQUEST', 'fault must be a string');
      if (b.forMs !== undefined && (typeof b.forMs !== 'number' || !(b.forMs > 0)))
        return error(res, 400, 'GW_ERR_SIM_BAD_REQUEST', 'forMs must be a positive number');
      try {
        sim.startFault(id, b.fault, b.forMs as number | undefined);
      } catch (err) {
        return error(res, 400, 'GW_ERR_SIM_NO_FAULT', (err as Error).message);
      }
      return send(res, 201, { device: id, fault: b.fault, forMs: b.forMs ?? null });
    }
    if (method === 'DELETE') {
      const n = sim.stopFault(id, parts[3]);
      if (n === 0)
        return error(res, 404, 'GW_ERR_SIM_NO_FAULT', `no active fault ${parts[3] ?? ''} on ${id}`);
      return send(res, 200, { device: id, stopped: n });
    }
  }
  return error(res, 404, 'GW_ERR_SIM_NOT_FOUND', `no route ${method} ${url.pathname}`);
}
