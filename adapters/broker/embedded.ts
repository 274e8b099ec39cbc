import { createServer, type Server } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { Aedes } from 'aedes';
import type { BrokerConfig } from '../../gateway/src/config/schema.js';
import type { Source, SourceContext } from '../../gateway/src/core/source.js';
import type { ComponentHealth } from '../../gateway/src/core/types.js';

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The embedded MQTT broker (aedes) that devices connect to when no external broker is
 * configured. The gateway subscribes to it over loopback like to any other broker, so there is
 * one ingest path to test. Its queues live in memory: for "nothing lost across a crash" use an
 * external broker with persistence (Mosquitto), as the README explains.
 */
export class EmbeddedBroker implements Source {
  readonly name = 'broker';
  private broker?: Aedes;
  private server?: Server;
  private boundPort?: number;
  private lastError?: string;

  constructor(private readonly cfg: BrokerConfig) {}

  /** The port actually listened on (differs from the config when it asked for port 0). */
  get port(): number {
    return this.boundPort ?? this.cfg.port;
  }

  async start(ctx: SourceContext): Promise<void> {
    const log = ctx.log;
    this.lastError = undefined;
    const { username, password } = this.cfg;
    const broker = await Aedes.createBroker({
      authenticate: (_client, user, pass, done) => {
        if (username === undefined && password === undefined) return done(null, true);
        const ok =
          user !== undefined &&
          sameSecret(user, username ?? '') &&
          sameSecret(pass?.toString() ?? '', password ?? '');
        if (!ok) {
          const err = Object.assign(new Error('bad username or password'), { returnCode: 4 });
          return done(err as Error & { returnCode: 4 }, false);
        }
        done(null, true);
      },
    });
    broker.on('clientError', (client, err) =>
      log.debug({ client: client?.id, err: err.message }, 'client error'),
    );
    this.broker = broker;
    const server = createServer(broker.handle);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.cfg.port, this.cfg.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => {
      this.lastError = err.message;
      log.error({ err }, 'embedded broker server error');
    });
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : this.cfg.port;
    log.info({ host: this.cfg.host, port: this.boundPort }, 'embedded MQTT broker listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    const broker = this.broker;
    this.server = undefined;
    this.broker = undefined;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  health(): ComponentHealth {
    if (!this.server) return { state: 'stopped' };
    if (this.lastError) return { state: 'degraded', detail: this.lastError };
    return { state: 'ok', port: this.port, clients: this.broker?.connectedClients ?? 0 };
  }
}
