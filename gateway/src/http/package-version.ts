import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The version in the gateway's package.json, for the OpenAPI document's `info.version`. Looked up
 * from this file upwards, so it is found from the sources (tsx) and from `dist/` alike; read once.
 * `0.0.0` if no package.json of the gateway is found (a stripped install): the document still loads.
 */
export function packageVersion(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'facility-gateway' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No (readable) package.json here: look one folder up.
    }
    const up = dirname(dir);
    if (up === dir) return '0.0.0';
    dir = up;
  }
}
