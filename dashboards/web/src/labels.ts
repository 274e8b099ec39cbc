// Names of the domain's things in both languages: metrics, device kinds, rules, maintenance
// schedules. A name not listed (a kind or rule from the site's own config) shows as it is.
import { stripUnit } from './format.js';
import type { Lang } from './i18n.js';

type Names = Record<string, [en: string, zh: string]>;

const METRICS: Names = {
  free_chlorine_mgl: ['Free chlorine', '游离氯'],
  total_chlorine_mgl: ['Total chlorine', '总氯'],
  ph: ['pH', 'pH'],
  turbidity_ntu: ['Turbidity', '浊度'],
  orp_mv: ['ORP', '氧化还原电位'],
  level_pct: ['Level', '液位'],
  temperature_c: ['Temperature', '温度'],
  dosing_pump_on: ['Dosing pump', '加药泵'],
  humidity_pct: ['Humidity', '湿度'],
  dew_point_c: ['Dew point', '露点'],
  smoke: ['Smoke', '烟雾'],
  water_leak: ['Water leak', '漏水'],
  door_open: ['Door open', '门开'],
  volume_m3: ['Register', '表底数'],
  consumption_m3: ['Consumption', '用量'],
  flow_m3h: ['Flow', '流量'],
  flow_lph: ['Flow', '流量'],
  pressure_kpa: ['Pressure', '压力'],
  battery_pct: ['Battery', '电池'],
  valve_open: ['Valve open', '阀门开'],
  tamper: ['Tamper', '防拆'],
  balance_m3: ['Balance', '余量'],
  methane_lel_pct: ['Methane', '甲烷'],
  reverse_flow: ['Reverse flow', '倒流'],
};

const KINDS: Names = {
  chlorination: ['Tank chlorination', '水箱加氯'],
  'env-probe': ['Server-room probe', '机房环境'],
  'gas-meter': ['Gas meter', '燃气表'],
  'water-meter': ['Water meter', '水表'],
};

const RULES: Names = {
  'chlorine.free.low': ['Free chlorine low', '余氯偏低'],
  'chlorine.free.high': ['Free chlorine high', '余氯偏高'],
  'chlorination.ph': ['pH out of range', 'pH 超标'],
  'chlorination.turbidity.high': ['Turbidity high', '浊度超标'],
  'chlorination.level.low': ['Tank level low', '水箱液位低'],
  'chlorination.dosing.off-while-falling': ['Dosing pump off while chlorine falls', '余氯下降时加药泵停止'],
  'serverroom.temperature': ['Room temperature', '机房温度超限'],
  'serverroom.humidity.high': ['Humidity high', '机房湿度过高'],
  'serverroom.dew-point': ['Dew point out of range', '露点超限'],
  'serverroom.temperature.rate': ['Temperature rising fast', '温度上升过快'],
  'serverroom.smoke': ['Smoke detected', '检测到烟雾'],
  'serverroom.water-leak': ['Water on the floor', '地面漏水'],
  'serverroom.door.open': ['Door open too long', '机房门长时间未关'],
  'gas.pressure': ['Gas pressure out of range', '燃气压力异常'],
  'gas.flow.continuous': ['Gas flowing without a stop', '燃气持续流动'],
  'gas.flow.over-rated': ['Gas flow above rated', '燃气流量超过额定值'],
  'gas.register.stuck': ['Meter stuck', '表具失灵'],
  'gas.consumption.jump': ['Meter running fast', '表具走快'],
  'gas.consumption.slow': ['Meter running slow', '表具走慢'],
  'gas.valve.closed': ['Valve closed', '阀门关闭'],
  'gas.tamper': ['Tamper switch', '防拆报警'],
  'gas.battery.low': ['Battery low', '电池电量低'],
  'gas.balance.low': ['Prepaid balance low', '预付费余量不足'],
  'gas.methane': ['Methane detected', '甲烷浓度报警'],
  'water.flow.continuous': ['Water flowing without a stop', '用水持续不停'],
  'water.flow.night': ['Night flow', '夜间流量异常'],
  'water.flow.over-rated': ['Flow above rated', '流量超过额定值'],
  'water.reverse-flow': ['Reverse flow', '倒流'],
  'water.tamper': ['Tamper switch', '防拆报警'],
  'water.battery.low': ['Battery low', '电池电量低'],
  'water.pressure': ['Water pressure out of range', '水压异常'],
  'water.temperature.freeze': ['Near freezing', '水温接近冰点'],
  'device.offline': ['Device offline', '设备离线'],
  'meter.read-rate': ['Read rate below target', '抄表率未达标'],
};

const SCHEDULES: Names = {
  'tank-disinfection': ['Disinfect the water tank', '水箱消毒'],
  'tank-cleaning': ['Clean the water tank', '水箱清洗'],
  'fire-extinguisher-check': ['Check the server-room fire extinguishers', '机房灭火器检查'],
  'backup-check': ['Check the backups', '备份检查'],
};

/** The simulators' faults (the Demo panel): what happens to the device. */
const FAULTS: Names = {
  leak: ['Leak', '漏水'],
  burst: ['Burst pipe', '爆管'],
  'reverse-flow': ['Reverse flow', '倒流'],
  tamper: ['Tamper', '拆表'],
  'stuck-register': ['Stuck register', '计数器卡住'],
  stuck: ['Stuck register', '计数器卡住'],
  'battery-drain': ['Battery drain', '电池耗尽'],
  'pressure-low': ['Pressure low', '压力过低'],
  'pressure-high': ['Pressure high', '压力过高'],
  'pressure-drop': ['Pressure drop', '压力下降'],
  freeze: ['Freezing', '冰冻'],
  'micro-leak': ['Micro leak', '微漏'],
  'over-flow': ['Flow above rated', '超额定流量'],
  'valve-closed': ['Valve closed', '阀门关闭'],
  fast: ['Meter running fast', '表具走快'],
  slow: ['Meter running slow', '表具走慢'],
  'balance-low': ['Balance low', '余量不足'],
  'dosing-pump-failure': ['Dosing pump failure', '加药泵故障'],
  overdose: ['Overdose', '加药过量'],
  'sensor-drift': ['Sensor drift', '传感器漂移'],
  'low-level': ['Tank level low', '水箱液位低'],
  'turbidity-event': ['Turbidity event', '浊度升高'],
  'chlorine-loss': ['Chlorine loss', '余氯骤降'],
  'ph-high': ['pH high', 'pH 偏高'],
  'ph-low': ['pH low', 'pH 偏低'],
  'hvac-failure': ['Air conditioning failure', '空调故障'],
  'hvac-degraded': ['Air conditioning degraded', '空调性能下降'],
  'humidifier-failure': ['Humidifier failure', '加湿器故障'],
  'dehumidifier-failure': ['Dehumidifier failure', '除湿机故障'],
  'door-left-open': ['Door left open', '门未关'],
  'water-leak': ['Water leak', '漏水'],
  smoke: ['Smoke', '烟雾'],
  silent: ['Stops reporting', '停止上报'],
  'sensor-fault': ['Sensor fault', '传感器故障'],
};

const pick = (names: Names, key: string, lang: Lang): string | undefined =>
  names[key]?.[lang === 'zh-CN' ? 1 : 0];

/** `free_chlorine_mgl` → "Free chlorine" / "游离氯"; an unknown metric without its unit suffix. */
export function metricName(metric: string, lang: Lang): string {
  return pick(METRICS, metric, lang) ?? stripUnit(metric).replace(/_/g, ' ');
}

export const kindName = (kind: string, lang: Lang): string => pick(KINDS, kind, lang) ?? kind;

/** The rule's short name, or undefined for a rule of the site's own config. */
export const ruleName = (rule: string, lang: Lang): string | undefined => pick(RULES, rule, lang);

export const scheduleName = (schedule: string, lang: Lang): string | undefined =>
  pick(SCHEDULES, schedule, lang);

export const faultName = (fault: string, lang: Lang): string => pick(FAULTS, fault, lang) ?? fault;
