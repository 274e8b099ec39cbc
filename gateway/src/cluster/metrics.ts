import { Counter, Gauge, type Registry } from 'prom-client';

/** The cluster's Prometheus series (ADR 0150). */
export function clusterMetrics(registry: Registry, read: () => ClusterGauges) {
  const gauge = (name: string, help: string, pick: (g: ClusterGauges) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(read()));
      },
    });
  gauge('gateway_cluster_owned_partitions', 'Device partitions this member processes', (g) => g.owned);
  gauge('gateway_cluster_members', 'Live cluster members (heartbeat within failoverMs)', (g) => g.members);
  gauge('gateway_cluster_leader', '1 while this member runs the cluster-wide singletons', (g) =>
    g.leader ? 1 : 0,
  );
  gauge(
    'gateway_cluster_durable_lag_seconds',
    'How far behind now this member has written its partitions to InfluxDB',
    (g) => g.lagMs / 1000,
  );
  gauge(
    'gateway_cluster_replay_entries',
    'Messages of other members kept in the replay window',
    (g) => g.ringEntries,
  );
  gauge(
    'gateway_cluster_replay_overruns',
    'Messages dropped from the replay window before it was full time (window too small)',
    (g) => g.overruns,
  );
  return {
    takeovers: new Counter({
      name: 'gateway_cluster_takeovers_total',
      help: 'Partitions taken from another member (lease expired or given back)',
      registers: [registry],
    }),
    replayed: new Counter({
      name: 'gateway_cluster_replayed_readings_total',
      help: 'Messages replayed from the window on taking a partition',
      registers: [registry],
    }),
  };
}

export interface ClusterGauges {
  owned: number;
  members: number;
  leader: boolean;
  lagMs: number;
  ringEntries: number;
  overruns: number;
}
