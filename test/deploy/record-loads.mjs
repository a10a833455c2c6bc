// `node --import ./record-loads.mjs`: appends the URL of every module the process loads to the file named by
// SNAPFERRY_RECORD_LOADS, one a line (module.register's load hook, which sees every ESM load, the bundle's chunks
// included). For test/deploy/lazy-commands.test.ts: which files of dist/ a command loads.
import { register } from 'node:module';

register('./record-loads-hooks.mjs', import.meta.url, { data: { file: process.env.SNAPFERRY_RECORD_LOADS } });
