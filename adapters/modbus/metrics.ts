import { Counter, Gauge, type Registry } from 'prom-client';

/** The Modbus sources' Prometheus metrics; one set per registry, shared by every connection. */
export interface ModbusMetrics {
  requests: Counter<'connection' | 'result'>;
  polls: Counter<'connection' | 'outcome'>;
  values: Counter<'connection'>;
  connected: Gauge<'connection'>;
  online: Gauge<'connection' | 'site' | 'device'>;
}

const cache = new WeakMap<Registry, ModbusMetrics>();

export function modbusMetrics(registry: Registry): ModbusMetrics {
  let m = cache.get(registry);
  if (m) return m;
  const registers = [registry];
  m = {
    requests: new Counter({
      name: 'gateway_modbus_requests_total',
      help: 'Modbus read requests by result (ok, exception, timeout, error)',
      labelNames: ['connection', 'result'] as const,
      registers,
    }),
    polls: new Counter({
      name: 'gateway_modbus_polls_total',
      help: 'Device polls by outcome (ok, partial, missed, skipped)',
      labelNames: ['connection', 'outcome'] as const,
      registers,
    }),
    values: new Counter({
      name: 'gateway_modbus_values_total',
      help: 'Metric values handed to ingest from Modbus devices',
      labelNames: ['connection'] as const,
      registers,
    }),
    connected: new Gauge({
      name: 'gateway_modbus_connected',
      help: '1 while the Modbus connection is open',
      labelNames: ['connection'] as const,
      registers,
    }),
    online: new Gauge({
      name: 'gateway_modbus_device_online',
      help: '1 online, 0 offline (missed polls in a row reached offlineAfter); absent until first polled',
      labelNames: ['connection', 'site', 'device'] as const,
      registers,
    }),
  };
  cache.set(registry, m);
  return m;
}
