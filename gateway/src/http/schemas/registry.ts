import { z } from 'zod';

/**
 * The named schemas of the API: each becomes `components.schemas.<id>` in the OpenAPI document.
 * A registry of its own, not zod's global one, so loading the module twice (tests) cannot clash.
 */
export const apiSchemas = z.registry<{ id: string; description?: string }>();

/** Names a schema for the OpenAPI document and returns it unchanged. */
export function named<T extends z.ZodType>(schema: T, id: string, description?: string): T {
  apiSchemas.add(schema, description === undefined ? { id } : { id, description });
  return schema;
}

/**
 * An object schema that lets keys it does not list pass through (a response may carry more fields
 * than the schema names; the serializer must not strip them), typed as if it listed them all: the
 * inferred type stays a plain object type, which the route handlers' interfaces satisfy.
 */
export function open<T extends z.ZodRawShape>(shape: T): z.ZodObject<T> {
  // The cast only drops the `[key: string]: unknown` index signature from the inferred type.
  return z.looseObject(shape) as unknown as z.ZodObject<T>;
}
