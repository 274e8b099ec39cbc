import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { z } from 'zod';
import { scenarioSchema, type Scenario } from './schema.js';

/** A scenario that failed validation; `problems` holds one "key.path: message" line per issue. */
export class ScenarioError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid scenario ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'ScenarioError';
  }
}

function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
}

/** Validates an already parsed object (from YAML, JSON or code). */
export function parseScenario(input: unknown, source = '<object>'): Scenario {
  const r = scenarioSchema.safeParse(input);
  if (!r.success) throw new ScenarioError(source, formatIssues(r.error.issues));
  return r.data;
}

export function parseScenarioYaml(text: string, source = '<yaml>'): Scenario {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ScenarioError(source, [`YAML: ${(err as Error).message}`]);
  }
  return parseScenario(doc, source);
}

export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ScenarioError(path, [`cannot read: ${(err as Error).message}`]);
  }
  return parseScenarioYaml(text, path);
}
