import { describe, expect, it } from 'vitest';
import { openDb } from '../../gateway/src/storage/db.js';
import { monthlyReportHtml, parseCsv } from '../../gateway/src/workorders/report-html.js';
import { OVERALL, ReportStore, reportDigest } from '../../gateway/src/workorders/report-store.js';

describe('stored monthly reports', () => {
  it('keeps a report as first stored: no second version, no update, no delete', () => {
    const db = openDb(':memory:', []);
    const store = new ReportStore(db);
    const rec = {
      month: '2026-11',
      site: OVERALL,
      generatedAt: 1,
      json: '{}',
      csv: 'a',
      html: '<p>',
      sha256: 'x',
    };
    expect(store.insert(rec)).toBe(true);
    expect(store.insert({ ...rec, json: '{"other":1}' })).toBe(false);
    expect(store.get('2026-11', OVERALL)!.json).toBe('{}');
    expect(() => db.prepare("UPDATE monthly_report SET json = '{}x'").run()).toThrow(/immutable/);
    expect(() => db.prepare('DELETE FROM monthly_report').run()).toThrow(/kept/);
    // Opening the store again (a restart) keeps the tables and what they hold.
    expect(new ReportStore(db).list().map((r) => r.month)).toEqual(['2026-11']);
    db.close();
  });

  it('digests the three renderings together, each part delimited', () => {
    expect(reportDigest('a', 'bc', 'd')).not.toBe(reportDigest('ab', 'c', 'd'));
    expect(reportDigest('a', 'b', 'c')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('the HTML rendering of the CSV', () => {
  it('parses quoted fields and renders one escaped table per section', () => {
    const csv =
      'section,alarms\r\nby,key,count\r\nrule,"a, ""b"" <c>",3\r\n\r\nsection,repeats\r\ncount,rate\r\n1,\r\n';
    expect(parseCsv(csv)[2]).toEqual(['rule', 'a, "b" <c>', '3']);
    const html = monthlyReportHtml(csv, 'Report <2026-11>');
    expect(html).toContain('<title>Report &lt;2026-11&gt;</title>');
    expect(html).toContain('<h2>alarms</h2>');
    expect(html).toContain('<td>a, &quot;b&quot; &lt;c&gt;</td>');
    expect(html).toContain('<h2>repeats</h2>');
    expect(html.match(/<table>/g)).toHaveLength(2);
  });
});
