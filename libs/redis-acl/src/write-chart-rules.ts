// Writes charts/kublambda/files/redis-acl-rules.txt from ACL_RULES (the chart cannot import
// TypeScript). acl-rules.test.ts fails when the file is out of date.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chartAclRulesFile } from './acl-rules.ts';

export const CHART_ACL_RULES_PATH = path.resolve(import.meta.dirname, '../../../charts/kublambda/files/redis-acl-rules.txt');

if (import.meta.main) {
  await writeFile(CHART_ACL_RULES_PATH, chartAclRulesFile());
  console.log(`wrote ${path.relative(process.cwd(), CHART_ACL_RULES_PATH)}`);
}
