import type { GatewayConfig } from '../config/schema.js';
import type { Source } from '../core/source.js';

/**
 * Builds the sources one adapter contributes for a config: none when the adapter is not
 * configured. The adapter's code is imported inside, so a protocol library (node-opcua alone adds
 * about 25 MB of heap and 80 MB of resident memory, aedes and the Sparkplug B codec a few MB more)
 * is loaded only by a gateway that uses it.
 */
export type SourceFactory = (cfg: GatewayConfig) => Promise<Source[]>;

/** Adapter name → factory. Sources start in this order and stop in the reverse. */
export type SourceRegistry = Readonly<Record<string, SourceFactory>>;

/**
 * Every protocol adapter the gateway knows (Telegraf's `inputs.Add`, node-wot's scheme → factory
 * map): adding a protocol is a folder under `adapters/` exporting `create<Name>Sources(cfg)` and
 * one line here. No string `require` at run time.
 */
export const SOURCES: SourceRegistry = {
  // The embedded broker (when no external one is configured), Sparkplug B and MQTT JSON: one
  // connection, so one adapter.
  mqtt: async (cfg) => (await import('../../../adapters/mqtt/index.js')).createMqttSources(cfg),
  opcua: async (cfg) =>
    cfg.opcua.length ? (await import('../../../adapters/opcua/index.js')).createOpcuaSources(cfg.opcua) : [],
  // Field buses, polled by the gateway.
  modbus: async (cfg) =>
    cfg.modbus.connections.length
      ? (await import('../../../adapters/modbus/index.js')).createModbusSources(cfg.modbus, {
          // In a cluster every member polls every device: on the same clock slots (ADR 0177).
          clockAligned: cfg.storage.postgres !== undefined,
        })
      : [],
  mbus: async (cfg) =>
    cfg.mbus.connections.length
      ? (await import('../../../adapters/mbus/index.js')).createMbusSources(cfg.mbus, {
          clockAligned: cfg.storage.postgres !== undefined,
        })
      : [],
};

/** Every configured source, adapter by adapter in registry order. */
export async function loadSources(cfg: GatewayConfig, registry: SourceRegistry = SOURCES): Promise<Source[]> {
  const out: Source[] = [];
  for (const [adapter, factory] of Object.entries(registry)) {
    try {
      out.push(...(await factory(cfg)));
    } catch (err) {
      // A missing optional dependency (a serial port binding, say) or a bug: the adapter shows as
      // down in health with the reason, the gateway and the other adapters run on.
      out.push(unloadable(adapter, err));
    }
  }
  return out;
}

/** Stands for an adapter whose factory threw: every start fails with the factory's error. */
function unloadable(adapter: string, err: unknown): Source {
  const reason = `adapter could not be loaded: ${err instanceof Error ? err.message : String(err)}`;
  return {
    name: adapter,
    start: () => Promise.reject(new Error(reason)),
    stop: () => Promise.resolve(),
    health: () => ({ state: 'down', detail: reason }),
  };
}
