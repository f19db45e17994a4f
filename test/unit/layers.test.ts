// The layer rules of eslint.config.js (`make lint`) bite: ESLint, with the project's own config, on
// a module's text as if it sat at a given path. The layers need no type information, so the
// type-aware rules are left out here (they would build the whole program for nothing).
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: ROOT, overrideConfig: tseslint.configs.disableTypeChecked });

/** What the layer and cycle rules say about `code` placed at `filePath` (relative to the repo). */
async function layerProblems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages
    .filter((m) => m.fatal || m.ruleId?.startsWith('boundaries/') || m.ruleId === 'import-x/no-cycle')
    .map((m) => `${m.ruleId}: ${m.message}`);
}

const UPWARD = "import { AppError } from '../domain/errors.js';\nexport const upward = AppError;\n";

describe('layer rules', () => {
  test('when a db/ module imports from domain/, then lint reports the upward import', async () => {
    expect(await layerProblems('src/db/upward.ts', UPWARD)).toEqual([
      'boundaries/dependencies: There is no policy allowing dependencies from file of category "db" to file of category "domain"',
    ]);
  });

  test('when an http/ module imports the same domain/ module, then lint allows it', async () => {
    expect(await layerProblems('src/http/inward.ts', UPWARD)).toEqual([]);
  });

  test('when a CLI command reaches past domain/ into db/ with a dynamic import, then lint reports it', async () => {
    const code = "export const load = () => import('../../src/db/records.js');\n";
    expect(await layerProblems('cli/commands/past-domain.ts', code)).toEqual([
      'boundaries/dependencies: There is no policy allowing dependencies from file of category "cli" to file of category "db"',
    ]);
  });

  test('when a module in src/ belongs to no layer, then lint asks for it to be placed', async () => {
    expect(await layerProblems('src/elsewhere/thing.ts', 'export const thing = 1;\n')).toEqual([
      'boundaries/no-unknown-files: File does not match any file pattern and does not belong to any known element',
    ]);
  });

  test('when a module imports one that imports it back, then lint reports the cycle', async () => {
    // src/db/orders-repo.ts imports src/db/database.ts (isUniqueViolation).
    const code = "import { toOrder } from './orders-repo.js';\nexport const back = toOrder;\n";
    expect(await layerProblems('src/db/database.ts', code)).toEqual(['import-x/no-cycle: Dependency cycle detected']);
  });
});
