/**
 * `npm run mutate [-- target...]`: runs Stryker once per target (all of test/mutate/targets.mjs when none is
 * named), one after the other, and prints each target's score against its threshold. Exits non-zero when any
 * target scores below its threshold or Stryker fails; the reports are in reports/mutation/<target>.{html,json}.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { TARGETS } from './targets.mjs';

const names = process.argv.slice(2);
for (const name of names) {
  if (!(name in TARGETS)) {
    console.error(`unknown mutation target ${JSON.stringify(name)}; one of: ${Object.keys(TARGETS).join(', ')}`);
    process.exit(2);
  }
}

/** Stryker's mutation score from its JSON report: detected (killed, timed out) over valid mutants. */
function mutationScore(report) {
  const count = { detected: 0, survived: 0, noCoverage: 0, errors: 0 };
  const survivors = [];
  for (const [file, { mutants }] of Object.entries(report.files)) {
    for (const m of mutants) {
      if (m.status === 'Killed' || m.status === 'Timeout') count.detected++;
      else if (m.status === 'Survived' || m.status === 'NoCoverage') {
        count[m.status === 'Survived' ? 'survived' : 'noCoverage']++;
        survivors.push(`${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName}${m.replacement ? ` -> ${m.replacement.replace(/\s+/g, ' ').slice(0, 70)}` : ''}`);
      } else count.errors++;
    }
  }
  const valid = count.detected + count.survived + count.noCoverage;
  return { score: valid === 0 ? 0 : (100 * count.detected) / valid, ...count, survivors };
}

const lines = [];
let failed = false;
for (const name of names.length > 0 ? names : Object.keys(TARGETS)) {
  const started = Date.now();
  const run = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs'], { stdio: 'inherit', env: { ...process.env, SNAPFERRY_MUTATE: name } });
  const seconds = Math.round((Date.now() - started) / 1000);
  let result;
  try {
    result = mutationScore(JSON.parse(readFileSync(`reports/mutation/${name}.json`, 'utf8')));
  } catch {
    lines.push(`${name}: no report (stryker exited ${run.status ?? run.signal})`);
    failed = true;
    continue;
  }
  const ok = run.status === 0 && result.score >= TARGETS[name].break;
  failed ||= !ok;
  lines.push(`${name}: ${result.score.toFixed(2)}% (break at ${TARGETS[name].break}%), ${result.survived + result.noCoverage} surviving, ${seconds} s${ok ? '' : '  FAILED'}`);
  for (const s of result.survivors) lines.push(`    ${s}`);
}
console.log(`\nmutation scores:\n${lines.join('\n')}`);
process.exit(failed ? 1 : 0);
