import { z } from 'zod';
import { open } from './registry.js';

export const demoDeviceSchema = open({
  id: z.string(),
  site: z.string(),
  kind: z.string(),
  /** Faults active now. */
  faults: z.array(z.string()),
  /** Faults this device can be given. */
  available: z.array(z.string()),
});
export const demoDevicesSchema = z.object({ devices: z.array(demoDeviceSchema) });
export const faultBody = z.strictObject({
  fault: z.string().regex(/^[a-z0-9-]{1,64}$/, 'a fault name such as chlorine-loss'),
  forMs: z.number().int().min(1000).max(86_400_000).optional(),
});
export const demoParams = z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a device id') });
/** What the simulators' control answers, passed through. */
export const demoResultSchema = z.unknown();

export type DemoDevice = z.infer<typeof demoDeviceSchema>;
