export { AlarmService, type AlarmServiceDeps, type AlarmEventListener } from './service.js';
export { ALARM_MIGRATIONS } from './store.js';
export { alarmsSchema, type AlarmsConfig } from './schema.js';
export * from './types.js';
