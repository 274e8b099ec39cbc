import type { Registry } from 'prom-client';
import type { Logger } from '../core/log.js';
import type { PresenceDirectory, SourceRejection } from '../core/source.js';
import type { Reading } from '../core/types.js';
import type { RejectPublisher } from '../ingest/pipeline.js';
import type { ContextFactory } from './supervisor.js';

/** What every source's context is built from. */
export interface ContextDeps {
  pipeline: {
    handleReading(r: Reading, now: number): SourceRejection | null;
    handleMessage(topic: string, payload: Buffer, now: number): void;
    /** Set by the ownership gate (cluster mode): whether this member processes the device now. */
    owns?: (site: string, device: string) => boolean;
  };
  outbox: {
    afterCommit(cb: () => void): void;
    isFull(): boolean;
    onDrain(fn: () => void): () => void;
  };
  rejects: RejectPublisher;
  presence: PresenceDirectory;
  log: Logger;
  metrics: Registry;
  dataDir: string;
}

/**
 * The functions every context shares are made once, here, as arrows: a source may take them off
 * the context (the MQTT source does, once at start) and call them detached, and the per-message
 * path costs one inlinable call more than the pipeline wired in directly, no allocation.
 */
export function contextFactory(d: ContextDeps): ContextFactory {
  const { pipeline, outbox, rejects } = d;
  const ingest = (r: Reading, now: number): SourceRejection | null => pipeline.handleReading(r, now);
  const ingestMessage = (topic: string, payload: Buffer, now: number): void =>
    pipeline.handleMessage(topic, payload, now);
  const afterDurable = (cb: () => void): void => outbox.afterCommit(cb);
  const isFull = (): boolean => outbox.isFull();
  const onDrain = (fn: () => void): (() => void) => outbox.onDrain(fn);
  const publishRejected = (site: string, kind: string, device: string, payload: string): void =>
    rejects.publishRejected(site, kind, device, payload);
  return (source, fail) => ({
    ingest,
    ingestMessage,
    afterDurable,
    isFull,
    onDrain,
    publishRejected,
    log: d.log.child({ module: source.name }),
    metrics: d.metrics,
    dataDir: d.dataDir,
    presence: d.presence,
    fail,
    ...(pipeline.owns ? { owns: pipeline.owns } : {}),
  });
}
