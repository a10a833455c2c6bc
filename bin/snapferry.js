#!/usr/bin/env node
// The installed command. snapferry's TypeScript runs from a bundle esbuild makes of it on first use and after any
// change (bin/bundled.js: no build step to forget), or through tsx when none can be made or SNAPFERRY_NO_BUNDLE is set.
import { runBundled } from './bundled.js';

if (process.env.SNAPFERRY_NO_BUNDLE || !(await runBundled())) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./cli.ts');
}
