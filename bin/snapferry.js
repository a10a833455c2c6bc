#!/usr/bin/env node
// The installed command. snapferry runs its TypeScript directly through tsx (no build step to forget).
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
