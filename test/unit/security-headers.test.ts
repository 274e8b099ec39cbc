import { describe, expect, it } from 'vitest';
import { cspDirectives, docsCsp, SWAGGER_UI_STYLE_HASHES } from '../../gateway/src/http/security-headers.js';

describe('the Content Security Policy', () => {
  it('allows nothing inline and upgrades requests only under HTTPS', () => {
    for (const https of [false, true]) {
      const d = cspDirectives(https);
      const all = Object.values(d).flat().join(' ');
      expect(all).not.toContain('unsafe-inline');
      expect(all).not.toContain('unsafe-eval');
      expect(d['frame-ancestors']).toEqual(["'none'"]);
      expect(d['style-src']).toEqual(["'self'"]);
      expect(d['script-src']).toEqual(["'self'"]);
      expect('upgrade-insecure-requests' in d).toBe(https);
    }
  });

  it("adds swagger-ui's style hash to style-src of the reference page only, whatever the separator", () => {
    const hash = SWAGGER_UI_STYLE_HASHES[0]!;
    expect(docsCsp("default-src 'self';style-src 'self';img-src 'self' data:")).toBe(
      `default-src 'self';style-src 'self' ${hash};img-src 'self' data:`,
    );
    expect(docsCsp("default-src 'self'; style-src 'self'; img-src 'self'")).toBe(
      `default-src 'self'; style-src 'self' ${hash}; img-src 'self'`,
    );
    // style-src-attr or style-src-elem are not style-src.
    expect(docsCsp("style-src-elem 'self'")).toBe("style-src-elem 'self'");
  });
});
