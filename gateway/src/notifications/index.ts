export { NotificationService, type NotificationServiceDeps } from './service.js';
export {
  NotifyQueue,
  NOTIFY_MIGRATIONS,
  NOTIFY_MIGRATION_SQL,
  NOTIFY_ARCHIVE_SQL,
  payloadOf,
  type NotifyPayload,
  type QueueRow,
} from './queue.js';
export { notificationsSchema, webhookSchema, NOTIFY_EVENTS, type NotificationsConfig } from './schema.js';
export { registerNotificationMetrics } from './metrics.js';
export { sign, verify } from './sign.js';
export { verdictOf } from './verdict.js';
