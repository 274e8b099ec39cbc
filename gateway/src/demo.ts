import type { Logger } from './core/log.js';
import type { Gateway } from './gateway.js';

/** `npm start`: the simulators publish to the gateway's broker so the whole system runs alone. */
export async function startDemo(gw: Gateway, log: Logger): Promise<{ stop(): Promise<void> }> {
  const { startSimulation } = await import('../../simulators/index.js');
  const sim = await startSimulation({ brokerUrl: gw.mqttUrl, logger: log.child({ module: 'simulator' }) });
  log.info({ dashboard: gw.httpUrl, adminToken: 'see data dir admin-token' }, 'demo running');
  return sim;
}
