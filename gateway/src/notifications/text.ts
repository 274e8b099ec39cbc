import type { Contact } from '../workorders/escalation.js';
import type { Language } from '../workorders/types.js';
import type { NotifyPayload } from './payload.js';

/**
 * The human-readable text of a ticket event (mail subject and body, a webhook's `text`) in the
 * recipient's language, the words the dashboard uses. Free text written by people or rules (titles,
 * notes) is shown as written.
 */
const WORDS = {
  en: {
    created: 'created',
    updated: 'updated',
    escalated: 'escalated',
    safety: 'SAFETY',
    escalatedTo: (level: number | string, name: string) => `Escalated to level ${level}: ${name}`,
    status: 'status',
    priority: 'priority',
    class: 'class',
    level: 'escalation level',
    site: 'site',
    device: 'device',
    assignee: 'assignee',
    none: '(none)',
    respondBy: 'respond by',
    resolveBy: 'resolve by',
    event: 'event',
    at: 'at',
    values: {} as Record<string, string>,
  },
  zh: {
    created: '已创建',
    updated: '已更新',
    escalated: '已升级',
    safety: '安全',
    escalatedTo: (level: number | string, name: string) => `已升级到第 ${level} 级: ${name}`,
    status: '状态',
    priority: '优先级',
    class: '类别',
    level: '升级级别',
    site: '站点',
    device: '设备',
    assignee: '处理人',
    none: '(无)',
    respondBy: '响应期限',
    resolveBy: '处理期限',
    event: '事件',
    at: '时间',
    values: {
      critical: '紧急',
      high: '高',
      medium: '中',
      low: '低',
      safety: '安全',
      key: '重点',
      routine: '常规',
      open: '待处理',
      acknowledged: '已响应',
      assigned: '已派发',
      in_progress: '处理中',
      resolved: '已解决',
      closed: '已关闭',
      reopened: '已重开',
    } as Record<string, string>,
  },
} as const;

interface TicketText {
  id: string;
  title: string;
  status: string;
  priority: string;
  class: string;
  site: string;
  device: string | null;
  location: string | null;
  assignee: string | null;
  escalationLevel: number;
  responseDueAt: string;
  resolveDueAt: string;
}

/** Subject and plain text of a ticket event, in `lang`. Pure. */
export function eventText(p: NotifyPayload, lang: Language = 'en'): { subject: string; text: string } {
  const w = WORDS[lang];
  const v = (x: string) => w.values[x] ?? x;
  const t = p.ticket as unknown as TicketText;
  const what = p.type.slice('ticket.'.length) as 'created' | 'updated' | 'escalated';
  const sep = lang === 'zh' ? '，' : ', ';
  const subject = `[${v(t.priority)}${t.class === 'safety' ? `${sep}${w.safety}` : ''}] ${t.id} ${w[what] ?? what}: ${t.title}`;
  const escalations = p.changes.flatMap((c) => {
    const d =
      c.action === 'escalate' ? (c.data as { level?: number; contact?: Contact } | undefined) : undefined;
    return d?.contact ? [w.escalatedTo(d.level ?? '?', d.contact.name)] : [];
  });
  const lines = [
    ...escalations,
    ...(escalations.length > 0 ? [''] : []),
    `${t.id}: ${t.title}`,
    [
      `${w.status} ${v(t.status)}`,
      `${w.priority} ${v(t.priority)}`,
      `${w.class} ${v(t.class)}`,
      `${w.level} ${t.escalationLevel}`,
    ].join(sep),
    `${w.site} ${t.site}${t.device ? `${sep}${w.device} ${t.device}` : ''}${t.location ? `${sep}${t.location}` : ''}`,
    `${w.assignee} ${t.assignee ?? w.none}`,
    `${w.respondBy} ${t.responseDueAt}${sep}${w.resolveBy} ${t.resolveDueAt}`,
    '',
    ...p.changes.map((c) => `${c.ts} ${c.actor} ${c.action}${c.note ? `: ${c.note}` : ''}`),
    '',
    `${w.event} ${p.id} ${w.at} ${p.occurredAt}`,
  ];
  return { subject, text: lines.join('\n') };
}
