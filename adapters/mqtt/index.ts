import type { GatewayConfig } from '../../gateway/src/config/schema.js';
import type { Source } from '../../gateway/src/core/source.js';
import { MqttSource, type MqttEndpoint } from './source.js';

/**
 * The MQTT adapter's sources, in start order: the embedded broker (when no external broker is
 * configured), Sparkplug B (when enabled; decoded on the MQTT connection) and the MQTT client.
 * aedes and the Sparkplug B codec are imported only when used.
 */
export async function createMqttSources(cfg: GatewayConfig): Promise<Source[]> {
  const out: Source[] = [];
  let endpoint: () => MqttEndpoint;
  if (cfg.mqtt.url !== undefined) {
    const url = cfg.mqtt.url;
    endpoint = () => ({ url, username: cfg.mqtt.username, password: cfg.mqtt.password });
  } else {
    const { EmbeddedBroker } = await import('../broker/embedded.js');
    const broker = new EmbeddedBroker(cfg.broker);
    out.push(broker);
    // Our own subscriber signs in to the embedded broker like a device would.
    const own = cfg.mqtt.username !== undefined;
    endpoint = () => ({
      url: `mqtt://127.0.0.1:${broker.port}`,
      username: own ? cfg.mqtt.username : cfg.broker.username,
      password: own ? cfg.mqtt.password : cfg.broker.password,
    });
  }
  let sparkplug;
  if (cfg.sparkplug.enabled) {
    const { SparkplugIngest } = await import('./sparkplug/ingest.js');
    // Cluster mode (storage.postgres): the members share the Sparkplug host id (ADR 0181).
    sparkplug = new SparkplugIngest(cfg.sparkplug, cfg.storage.postgres !== undefined);
    out.push(sparkplug);
  }
  out.push(new MqttSource(cfg.mqtt, endpoint, sparkplug));
  return out;
}
