import type { Registry } from 'prom-client';
import type { Logger } from '../core/log.js';
import type { Db } from '../storage/db.js';
import type { DeliveryFence } from './fence.js';
import type { NotificationsConfig } from './schema.js';
import { NotifyQueue } from './queue.js';
import { NotificationService } from './service.js';
import { registerNotificationMetrics } from './metrics.js';

/**
 * Ticket webhooks and email. The queue lives in the work orders' database so a ticket change and
 * its deliveries commit in one transaction (`service.enqueue`, handed to the work-order service).
 * Returned unstarted: it starts after the work orders, so it stops before them and no delivery is
 * in flight when their database closes.
 */
export function createNotificationsModule(d: {
  db: Db;
  config: NotificationsConfig;
  log: Logger;
  metrics: Registry;
  /** Cluster mode: the shared copy of the queue, asked before each attempt (ADR 0179). */
  fence?: DeliveryFence;
}): NotificationService {
  const service = new NotificationService({
    queue: new NotifyQueue(d.db),
    fence: d.fence,
    config: d.config,
    log: d.log.child({ module: 'notifications' }),
  });
  registerNotificationMetrics(d.metrics, () => service);
  return service;
}
