// Worker threads do not inherit the test runner's `--import tsx` loader hooks on Node 20: register tsx here, then
// load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./proxy-worker.ts');
