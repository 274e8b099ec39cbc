/**
 * Which partition a device belongs to (ADR 0150): FNV-1a over `<site>/<device>`, modulo the
 * cluster's partition count. Computed over the characters in place, so a topic is hashed without
 * splitting it into strings.
 */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const SLASH = 0x2f;

function mix(h: number, s: string, start: number, end: number): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h;
}

/** The partition of a device. */
export function partitionOfDevice(site: string, device: string, partitions: number): number {
  let h = mix(FNV_OFFSET, site, 0, site.length);
  h = Math.imul(h ^ SLASH, FNV_PRIME);
  h = mix(h, device, 0, device.length);
  return (h >>> 0) % partitions;
}

/**
 * The partition of a topic: `facility/<site>/<kind>/<device>/…` hashes as its device (so a message
 * and a polled reading of one device land together); any other topic is hashed whole, so exactly
 * one member handles (and rejects) it.
 */
export function partitionOfTopic(topic: string, partitions: number): number {
  const a = topic.indexOf('/');
  const b = a < 0 ? -1 : topic.indexOf('/', a + 1);
  const c = b < 0 ? -1 : topic.indexOf('/', b + 1);
  if (c < 0) return (mix(FNV_OFFSET, topic, 0, topic.length) >>> 0) % partitions;
  const d = topic.indexOf('/', c + 1);
  let h = mix(FNV_OFFSET, topic, a + 1, b);
  h = Math.imul(h ^ SLASH, FNV_PRIME);
  h = mix(h, topic, c + 1, d < 0 ? topic.length : d);
  return (h >>> 0) % partitions;
}
