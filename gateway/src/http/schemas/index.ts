/**
 * The HTTP contract as zod schemas: the routes validate with them, the OpenAPI document is generated
 * from them, and the dashboard takes its types from them (`import type`), so a change of contract
 * that breaks the dashboard fails its type-check. Only zod and pure constant modules here: the
 * dashboard's compiler reads these files.
 */
export * from './accounts.js';
export * from './admin.js';
export * from './alarms.js';
export * from './common.js';
export * from './demo.js';
export * from './devices.js';
export * from './reports.js';
export * from './tickets.js';
export * from './windows.js';
export { apiSchemas } from './registry.js';
export * from './fleet.js';
export * from './fleet-schedules.js';
export * from './fleet-channels.js';
