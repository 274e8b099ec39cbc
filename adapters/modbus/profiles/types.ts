import type { RegisterInput } from '../register-schema.js';

/** A shipped profile as written; the config schema applies defaults when a device uses it. */
export interface ExampleProfile {
  description: string;
  registers: RegisterInput[];
}
