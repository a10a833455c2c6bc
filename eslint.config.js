// Lint what tsc cannot see: floating promises and unused code are the bugs that hurt a long-running transfer.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.dist-*/**', '.tmp/**', '.stryker-tmp/**', 'reports/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', name: ['test', 'describe', 'it', 'suite'], package: 'node:test' }] },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    // One adapter knows tus (server/upload-store/tus-store.ts, with tus-server.ts that builds @tus/server): the spool,
    // the upload store's wrappers and the core are plain, and a store never answers in tus's terms.
    files: ['server/**/*.ts', 'core/**/*.ts', 'client/**/*.ts', 'bin/**/*.ts'],
    ignores: ['server/upload-store/tus-store.ts', 'server/upload-store/tus-server.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['@tus/*'], message: 'only server/upload-store/tus-store.ts and tus-server.ts import @tus/*' }] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
  },
);
