// `make lint` runs Prettier's check and then this; `make test` runs `make lint` first. Type-aware:
// the rules that need types get them from tsconfig.json's program (the project service).
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import boundaries from 'eslint-plugin-boundaries';
import { importX } from 'eslint-plugin-import-x';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------- layers
//
// Every file of the project is in one layer (the first row of `layers` its path matches), and an
// import is allowed only when a row of `layerPolicies` allows it (boundaries/dependencies, default
// disallow; static, dynamic and re-exports alike). A file in no layer is an error too
// (boundaries/no-unknown-files): a new folder has to be placed here first.
//
//   http, cli      the two ways in (the HTTP API, the staff CLI): use domain/, never db/ or upstream/
//   domain         orders and payments: uses db/ and upstream/
//   db, upstream   PostgreSQL, and the charge and fulfillment services: shared only, never a layer above
//   simulate       the simulated upstream services (`serve --simulate-upstreams`): shared only
//   shared         what every layer may use and which imports no layer: configuration, logging,
//                  metrics, staff tokens, the data directory, the types generated from the spec
//   root           the composition root: builds the runtime from every layer (src/runtime.ts) and
//                  starts the server on it (src/server.ts); imports anything
//   cli-root       the CLI's own composition: the program, opening a runtime for a command, `serve`
//                  and its cluster of workers (which start the database and the simulator themselves);
//                  imports anything. The commands themselves are `cli`.
//   tooling        tests, benchmarks, scripts, bin/, config files: import anything
//
// No import cycles in src/ or cli/ (import-x/no-cycle, dynamic imports included). A type-only
// import is erased when compiled, so it is no cycle and, towards the composition root, no
// dependency either (http/ may import the Runtime type).
const layers = [
  { category: 'root', pattern: ['src/runtime.ts', 'src/server.ts'] },
  {
    category: 'cli-root',
    pattern: ['cli/main.ts', 'cli/shared.ts', 'cli/commands/server.ts', 'cli/cluster-primary.ts', 'cli/cluster-worker.ts'],
  },
  { category: 'http', pattern: 'src/http/**' },
  { category: 'cli', pattern: 'cli/**' },
  { category: 'domain', pattern: 'src/domain/**' },
  { category: 'db', pattern: 'src/db/**' },
  { category: 'upstream', pattern: 'src/upstream/**' },
  { category: 'simulate', pattern: 'src/simulate/**' },
  {
    category: 'shared',
    pattern: [
      'src/advisory-locks.ts',
      'src/config.ts',
      'src/data-dir.ts',
      'src/error-text.ts',
      'src/heap.ts',
      'src/listen.ts',
      'src/log.ts',
      'src/metrics.ts',
      'src/staff-tokens.ts',
      'src/timeout.ts',
      'src/generated/**',
    ],
  },
  { category: 'tooling', pattern: ['test/**', 'scripts/**', 'bin/**', '*.config.{js,ts}'] },
];

const layer = (...names) => ({ file: { categories: { anyOf: names } } });
const layerPolicies = [
  { from: layer('root', 'cli-root', 'tooling'), allow: { to: layer(...layers.map((l) => l.category)) } },
  { from: layer('http'), allow: { to: layer('http', 'domain', 'shared') } },
  // The handlers are handed the runtime (src/http/deps.ts: HttpDeps = Pick<Runtime, ...>).
  { from: layer('http'), allow: { to: layer('root'), dependency: { kind: 'type' } } },
  { from: layer('cli'), allow: { to: layer('cli', 'cli-root', 'domain', 'shared') } },
  { from: layer('domain'), allow: { to: layer('domain', 'db', 'upstream', 'shared') } },
  { from: layer('db'), allow: { to: layer('db', 'shared') } },
  { from: layer('upstream'), allow: { to: layer('upstream', 'shared') } },
  { from: layer('simulate'), allow: { to: layer('simulate', 'shared') } },
  { from: layer('shared'), allow: { to: layer('shared') } },
];

export default defineConfig([
  globalIgnores(['dist/', 'node_modules/', 'coverage/', 'src/generated/', 'docs/', '.test-db*/', '.order-up/']),

  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        // tsconfig.json covers src/, cli/, test/ and mikro-orm.config.ts; the few plain-JS files get a
        // default project (at most 8 files: listed by folder, since `**` is not allowed here).
        projectService: {
          allowDefaultProject: ['*.js', 'bin/*.js', 'scripts/*.mjs', 'test/bench/*.mjs', 'test/support/*.mjs'],
          defaultProject: 'tsconfig.json',
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Real bugs in a server (both in recommendedTypeChecked, named so that nobody turns them off
      // unawares): a promise nobody awaits loses its error, and an async function given where a
      // void callback is expected (an event handler, a timer) has its rejection go unhandled.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // A `return promise` inside try/catch/finally skips the catch and runs the finally too early.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // A new order status or error code must be handled wherever a switch decides on it.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // What the next major version of a (pinned) dependency removes.
      '@typescript-eslint/no-deprecated': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: 'error',

      // Tuned: an async function without await is how this code implements a Promise-returning
      // interface (MikroORM's Migration.up/down, a lock's release callback, test fakes); the missing
      // await it would catch is no-floating-promises' and await-thenable's job.
      '@typescript-eslint/require-await': 'off',
      // Tuned: a callback made before the value it reads exists (the lease's lost() in
      // src/db/process-lease.ts) needs its `let` declared first and assigned once, later.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Tuned: prom-client calls a gauge's collect() with the gauge as `this`, so the Metrics object
      // is reached as `self` there (src/metrics.ts).
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['self'] }],
      // Tuned: express knows an error handler by its four parameters, so an unused last one stays,
      // named `_next` (src/http/app.ts).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The service logs through pino (src/log.ts) and the CLI writes through out()/err()
    // (cli/shared.ts). Tests and tooling may print (the fuzz test's seed, test/bench's reports).
    files: ['src/**/*.ts', 'cli/**/*.ts'],
    rules: { 'no-console': 'error' },
  },
  {
    // Tuned for tests: a test reads the JSON answer it asserts on as `any` (test/support/app.ts,
    // Reply.body); typing every body would be churn for what the assertions check anyway.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Tuned for plain JavaScript: it declares no types, so what it imports is `any` and the
    // no-unsafe-* family would flag every use of it.
    files: ['**/*.js', '**/*.mjs'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },

  // The layers (above) over every file, and no cycles in src/ and cli/.
  {
    plugins: { boundaries, 'import-x': importX },
    settings: {
      // Both resolve the `.js` specifiers of TypeScript's nodenext to the `.ts` files.
      'import/resolver': { typescript: { project: 'tsconfig.json' } },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
      // no-cycle follows imports into TypeScript files: it has to know they are modules and parse them.
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'boundaries/files': layers,
      'boundaries/files-single-match': true,
      'boundaries/dependency-nodes': ['import', 'dynamic-import', 'export'],
    },
    rules: {
      'boundaries/dependencies': ['error', { default: 'disallow', policies: layerPolicies }],
      'boundaries/no-unknown-files': 'error',
    },
  },
  {
    files: ['src/**/*.ts', 'cli/**/*.ts'],
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
]);
