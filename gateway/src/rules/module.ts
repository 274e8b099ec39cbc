import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { RegistryFacts, factsOf } from '../registry/facts.js';
import type { DeviceRegistry } from '../registry/registry.js';
import type { AlarmService } from '../alarms/service.js';
import { RulesRuntime, type RulesRuntimeOptions } from './runtime.js';

/**
 * The rule engine, fed by the ingest pipeline (a reading listener after the registry), raising
 * and clearing alarms in the alarm service, which also keeps its state. Returns the runtime and
 * the registry subscription to drop at stop.
 */
export function createRulesModule(d: {
  cfg: GatewayConfig;
  log: Logger;
  registry: DeviceRegistry;
  alarms: AlarmService;
  /** The outbox, whose group commits carry the rule state that changed with their readings (ADR 0080). */
  durable: RulesRuntimeOptions['durable'];
  /** Cluster mode only: whether this member processes a device. */
  owns?: RulesRuntimeOptions['owns'];
}): { rules: RulesRuntime; off: () => void } {
  const { cfg, alarms } = d;
  const rules = new RulesRuntime({
    rules: cfg.rules,
    facts: new RegistryFacts(d.registry),
    store: alarms,
    listener: alarms.handle,
    tickMs: cfg.alarms.tickMs,
    saveStateMs: cfg.alarms.saveRuleStateMs,
    log: d.log.child({ module: 'rules' }),
    onTick: (now) => alarms.tick(now),
    durable: cfg.alarms.ruleState === 'with-readings' ? d.durable : undefined,
    owns: d.owns,
  });
  const off = d.registry.onChange((e) => rules.registerDevice(factsOf(e)));
  return { rules, off };
}
