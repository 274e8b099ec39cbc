/**
 * The monthly report as a self-contained HTML page, rendered from its CSV: every section of the CSV
 * becomes a table under its own heading. Rendering from the CSV rather than from the report object
 * keeps the two renderings the same content by construction, whatever sections the CSV grows.
 */

/** Parses RFC 4180 CSV (quoted fields, `""` for a quote, CRLF or LF line ends) into rows. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The page: a title (month and scope), then one table per CSV section. */
export function monthlyReportHtml(csv: string, title: string): string {
  const out: string[] = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escape(title)}</title>`,
    '<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.2em}' +
      'th,td{border:1px solid #bbb;padding:.2em .6em;text-align:left}th{background:#eee}</style>',
    '</head><body>',
    `<h1>${escape(title)}</h1>`,
  ];
  const rows = parseCsv(csv);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r[0] !== 'section' || r.length < 2) continue;
    out.push(`<h2>${escape(r[1]!)}</h2>`, '<table>');
    const header = rows[i + 1] ?? [];
    out.push(`<tr>${header.map((h) => `<th>${escape(h)}</th>`).join('')}</tr>`);
    let j = i + 2;
    for (; j < rows.length; j++) {
      const cells = rows[j]!;
      if (cells.length === 1 && cells[0] === '') break;
      out.push(`<tr>${cells.map((c) => `<td>${escape(c)}</td>`).join('')}</tr>`);
    }
    out.push('</table>');
    i = j;
  }
  out.push('</body></html>');
  return out.join('\n');
}
