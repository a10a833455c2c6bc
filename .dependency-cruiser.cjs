// The layer rules of docs/design.md ("Dependency rules"), checked by `npm run check`.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-is-shared',
      comment: 'core/ is what both sides use: it imports neither side, nor the command line.',
      severity: 'error',
      from: { path: '^core/' },
      to: { path: '^(client|server|bin)/' },
    },
    {
      name: 'client-without-server',
      comment: 'The client and the server are independent programs that share only core/.',
      severity: 'error',
      from: { path: '^client/' },
      to: { path: '^(server|bin)/' },
    },
    {
      name: 'server-without-client',
      comment: 'The client and the server are independent programs that share only core/.',
      severity: 'error',
      from: { path: '^server/' },
      to: { path: '^(client|bin)/' },
    },
    {
      name: 'bin-through-entry-points',
      comment: 'The command line reaches each side only through its entry points: index.ts (the work, imported in a command\'s action) and cli-options.ts (what the options and help need at start; issue 22: a command loads only its side).',
      severity: 'error',
      from: { path: '^bin/' },
      to: { path: '^(client|server)/', pathNot: '^(client|server)/(index|cli-options)\\.ts$' },
    },
    {
      name: 'no-circular',
      comment: 'An import circle makes two modules one: neither can be read, tested or moved alone.',
      severity: 'error',
      from: { path: '^(core|client|server|bin)/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^(core|client|server|bin)/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
