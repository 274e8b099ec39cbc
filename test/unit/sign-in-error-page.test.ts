import { describe, expect, it } from 'vitest';
import { pageLanguage, signInErrorPage, wantsHtml } from '../../gateway/src/http/sign-in-error-page.js';

/** Content negotiation of the sign-in error page (pure logic; the routes are tested over HTTP). */
describe('sign-in error page negotiation', () => {
  it('a browser navigation wants HTML; an API client does not', () => {
    expect(wantsHtml('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8')).toBe(true);
    expect(wantsHtml('text/html')).toBe(true);
    expect(wantsHtml(undefined)).toBe(false);
    expect(wantsHtml('*/*')).toBe(false);
    expect(wantsHtml('application/json')).toBe(false);
    expect(wantsHtml('application/json, text/html;q=0.5')).toBe(false);
    expect(wantsHtml('text/html;q=0, application/json')).toBe(false);
  });

  it('the language: the first of zh or en by q, en otherwise', () => {
    expect(pageLanguage('zh-CN,zh;q=0.9,en;q=0.8')).toBe('zh');
    expect(pageLanguage('zh-Hans')).toBe('zh');
    expect(pageLanguage('en-GB,zh;q=0.9')).toBe('en');
    expect(pageLanguage('de-DE,zh;q=0.5,en;q=0.4')).toBe('zh');
    expect(pageLanguage('en;q=0.2,zh;q=0.9')).toBe('zh');
    expect(pageLanguage('fr')).toBe('en');
    expect(pageLanguage(undefined)).toBe('en');
  });

  it('escapes the reason; no script or style', () => {
    const html = signInErrorPage('en', 'sso', 'GW_ERR_SSO_NO_ROLE', '<img src=x onerror=alert(1)> & "q"');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot;');
    expect(html).not.toContain('<img');
    expect(html).not.toMatch(/<script|<style|style=/i);
    expect(html).toContain('<a href="/">Back to the sign-in</a>');
  });
});
