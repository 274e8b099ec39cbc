import type { Language } from './types.js';

/**
 * The monthly report's CSV words in Chinese (section names, column headers and fixed labels), the
 * dashboard's terms. Data (site ids, rule ids, months, numbers) is never translated.
 */
const ZH: Record<string, string> = {
  section: '部分',
  summary: '概要',
  month: '月份',
  timeZone: '时区',
  from: '起',
  to: '止',
  generatedAt: '生成时间',
  site: '站点',
  tickets: '工单',
  measure: '指标',
  by: '分类',
  key: '键',
  count: '数量',
  opened: '新建',
  closed: '关闭',
  total: '合计',
  priority: '优先级',
  times: '时间',
  meanMin: '平均(分钟)',
  p90Min: 'P90(分钟)',
  response: '响应',
  resolution: '处理',
  sla: '服务水平',
  deadline: '期限',
  met: '达标',
  rate: '比率',
  all: '全部',
  reopened: '重开',
  reopens: '重开次数',
  escalations: '升级',
  level: '级别',
  repeats: '重复故障',
  preventive: '预防性维护',
  due: '应做',
  doneOnTime: '按时完成',
  late: '逾期完成',
  open: '未完成',
  missed: '错过',
  onTimeRate: '按时率',
  alarms: '告警',
  severity: '严重程度',
  rule: '规则',
  readRates: '抄表率',
  meterClass: '表类',
  period: '周期',
  expected: '应抄',
  reported: '实抄',
  target: '目标',
  critical: '紧急',
  high: '高',
  medium: '中',
  low: '低',
  warning: '警告',
  info: '提示',
};

/** A fixed word of the report in `lang` (itself in English, or when no translation is known). */
export function reportWord(word: string, lang: Language): string {
  return lang === 'zh' ? (ZH[word] ?? word) : word;
}
