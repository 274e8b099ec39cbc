// Alarm messages and work-order titles for people. The gateway writes one English line per alarm
// ("free_chlorine_mgl 0.03 below lowLow limit 0.05"); the known shapes are rewritten here into
// "Free chlorine low-low: 0.03 mg/L < 0.05" or its Chinese, anything else keeps its own words.
// Pure, so it is tested without a browser.
import { fmtTime, unitOf } from './format.js';
import { translate, type Lang } from './i18n.js';
import { metricName, ruleName, scheduleName } from './labels.js';

const NUM = '(-?\\d+(?:\\.\\d+)?)';
const LEVEL: Record<string, [string, string]> = {
  lowLow: ['low-low', '超低限'],
  low: ['low', '低限'],
  high: ['high', '高限'],
  highHigh: ['high-high', '超高限'],
};

type Rewrite = (m: RegExpExecArray, zh: boolean, lang: Lang) => string;

const withUnit = (v: string, unit: string): string => (unit ? `${v} ${unit}` : v);

/** What a level rule measures: the metric, its change per hour, or a flow against its rating. */
function subject(metric: string, extra: string | undefined, zh: boolean, lang: Lang): [string, string] {
  const name = metricName(metric, lang);
  const unit = unitOf(metric);
  if (extra === ' change per hour')
    return [zh ? `${name}每小时变化` : `${name} change per hour`, unit && `${unit}/h`];
  if (extra) return [zh ? `${name}（额定值）` : `${name} (rated)`, unit];
  return [name, unit];
}

const SHAPES: Array<[RegExp, Rewrite]> = [
  [
    new RegExp(
      `^([a-z][a-z0-9_]*)( change per hour| \\(rated max [^)]*\\))? ${NUM} (above|below) (lowLow|low|high|highHigh) limit ${NUM}$`,
    ),
    (m, zh, lang) => {
      const [what, unit] = subject(m[1]!, m[2], zh, lang);
      const level = LEVEL[m[5]!]![zh ? 1 : 0];
      return `${what} ${level}${zh ? '：' : ': '}${withUnit(m[3]!, unit)} ${m[4] === 'above' ? '>' : '<'} ${m[6]}`;
    },
  ],
  [
    new RegExp(
      `^([a-z][a-z0-9_]*)( change per hour| \\(rated max [^)]*\\))? ${NUM} back within (lowLow|low|high|highHigh) limit ${NUM}$`,
    ),
    (m, zh, lang) => {
      const [what, unit] = subject(m[1]!, m[2], zh, lang);
      const level = LEVEL[m[4]!]![zh ? 1 : 0];
      return zh
        ? `${what} 已回到${level}以内：${withUnit(m[3]!, unit)}（限值 ${m[5]}）`
        : `${what} back within ${level} limit: ${withUnit(m[3]!, unit)} (limit ${m[5]})`;
    },
  ],
  [
    /^no data for (\d+) reporting intervals \((\d+) min\)$/,
    (m, zh) =>
      zh
        ? `${m[2]} 分钟无数据（${m[1]} 个上报周期）`
        : `No data for ${m[2]} min (${m[1]} reporting intervals)`,
  ],
  [
    /^(\d+) consecutive readings of bad quality$/,
    (m, zh) => (zh ? `连续 ${m[1]} 个读数质量差` : `${m[1]} readings in a row of bad quality`),
  ],
  [
    new RegExp(`^flow never stopped for ${NUM} h \\(([a-z0-9_]+) ${NUM}\\)$`),
    (m, zh, lang) => {
      const v = withUnit(m[3]!, unitOf(m[2]!));
      return zh
        ? `流量 ${m[1]} 小时未停（${metricName(m[2]!, lang)} ${v}）`
        : `Flow never stopped for ${m[1]} h (${metricName(m[2]!, lang).toLowerCase()} ${v})`;
    },
  ],
  [
    new RegExp(`^night flow ([\\d:]+-[\\d:]+): ([a-z0-9_]+) never below ${NUM} \\(threshold ${NUM}\\)$`),
    (m, zh) => {
      const v = withUnit(m[3]!, unitOf(m[2]!));
      return zh
        ? `夜间流量 ${m[1]}：最低 ${v}（阈值 ${m[4]}）`
        : `Night flow ${m[1]}: never below ${v} (threshold ${m[4]})`;
    },
  ],
  [
    /^no consumption for (\d+) d while (\d+) meters of the site consumed: register stuck$/,
    (m, zh) =>
      zh
        ? `${m[1]} 天无用量，而本站 ${m[2]} 块表有用量：表具失灵`
        : `No consumption for ${m[1]} days while ${m[2]} meters of the site consumed: meter stuck`,
  ],
  [
    new RegExp(`^consumption ${NUM} per hour, usual ${NUM}: far outside the meter's history$`),
    (m, zh) =>
      zh
        ? `每小时用量 ${m[1]} m³，通常 ${m[2]} m³：远超该表历史，表具走快`
        : `Consumption ${m[1]} m³/h, usually ${m[2]}: meter running fast`,
  ],
  [
    new RegExp(
      `^day's consumption ${NUM}, (\\d+) % of the meter's median ${NUM} while (\\d+) of (\\d+) meters`,
    ),
    (m, zh) =>
      zh
        ? `日用量 ${m[1]} m³，为该表中位数 ${m[3]} m³ 的 ${m[2]} %（本站 ${m[5]} 块表中 ${m[4]} 块正常）：表具走慢`
        : `Day's consumption ${m[1]} m³, ${m[2]} % of the meter's median ${m[3]} (${m[4]} of ${m[5]} meters normal): meter running slow`,
  ],
  [
    /^read rate ([\d.]+ %), target ([\d.]+ %)$/,
    (m, zh) => (zh ? `抄表率 ${m[1]}，目标 ${m[2]}` : `Read rate ${m[1]}, target ${m[2]}`),
  ],
  [/^rule changed or removed$/, (_m, zh) => (zh ? '规则已更改或删除' : 'Rule changed or removed')],
];

/**
 * An alarm's message as a person reads it. Condition rules (smoke, tamper, door) carry their
 * rule's description as the message: the rule's own short name replaces it when it is known.
 */
export function alarmText(message: string, rule: string | null | undefined, lang: Lang): string {
  const zh = lang === 'zh-CN';
  for (const [re, rewrite] of SHAPES) {
    const m = re.exec(message);
    if (m) return rewrite(m, zh, lang);
  }
  const name = rule ? ruleName(rule, lang) : undefined;
  if (!name) return message;
  const held = / for (\d+) min$/.exec(message);
  const gone = message.endsWith(': no longer');
  let out = name;
  if (held) out += zh ? `，持续 ${held[1]} 分钟` : `, for ${held[1]} min`;
  if (gone) out += zh ? '：已恢复' : ': no longer';
  return out;
}

export interface Titled {
  title: string;
  rule: string | null;
  maintenance?: { schedule?: string } | null;
}

/**
 * A work order's title: the alarm's message or the maintenance schedule, in the reader's
 * language; `place: false` leaves out the "(site/device)" the gateway ends it with.
 */
export function ticketTitle(t: Titled, lang: Lang, place = true): string {
  const m = /^(.*) \(([^()\s]+\/[^()\s]+|[^()\s/]+)\)$/.exec(t.title);
  const head = m ? m[1]! : t.title;
  const where = m && place ? ` (${m[2]})` : '';
  const schedule = t.maintenance?.schedule;
  if (schedule) {
    const name = scheduleName(schedule, lang);
    return name ? `${name}${where}` : `${head}${where}`;
  }
  if (t.rule) return `${alarmText(head, t.rule, lang)}${where}`;
  return `${head}${where}`;
}

/** The gateway's own notes in a ticket's history, in the reader's language; people's notes as written. */
export function historyNote(note: string, rule: string | null, lang: Lang): string {
  const zh = lang === 'zh-CN';
  let m = /^raised by alarm (\S+): (.*?)(?:; repeat of (\S+))?$/.exec(note);
  if (m) {
    const text = alarmText(m[2]!, rule, lang);
    const repeat = m[3] ? (zh ? `；重复于 ${m[3]}` : `; repeat of ${m[3]}`) : '';
    return zh ? `由告警生成：${text}${repeat}` : `raised by alarm: ${text}${repeat}`;
  }
  m = /^(alarm returned|alarm now (\w+)|alarm cleared): (.*) \(value (.*)\)$/.exec(note);
  if (m) {
    const text = alarmText(m[3]!, rule, lang);
    if (!zh) return `${m[1]}: ${text} (value ${m[4]})`;
    const what = m[2]
      ? `告警升为${translate(lang, m[2])}`
      : m[1] === 'alarm returned'
        ? '告警再次出现'
        : '告警已消除';
    return `${what}：${text}（数值 ${m[4]}）`;
  }
  if (note === 'alarm returned after resolution') return zh ? '完成后告警再次出现' : note;
  m = /^preventive maintenance (\S+) due (\S+)$/.exec(note);
  if (m) {
    const name = scheduleName(m[1]!, lang) ?? m[1]!;
    const due = fmtTime(m[2]!, lang);
    return zh ? `预防性维护「${name}」，到期 ${due}` : `preventive maintenance "${name}", due ${due}`;
  }
  m = /^transient rule (\S+): resolved when the condition cleared; verify before close$/.exec(note);
  if (m && zh) return `瞬时规则「${ruleName(m[1]!, lang) ?? m[1]}」：条件消除后自动完成；关闭前请验收`;
  return note;
}
