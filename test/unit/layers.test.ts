// The layers of order-up, read from the imports of src/ and cli/ (types included): the entry points
// (cli/, src/http/) use the domain; the domain uses the data layer (src/db/) and the upstream clients
// (src/upstream/); those two use neither each other nor anything above them; no module imports
// itself back through others. Top-level src/*.ts modules (config, log, metrics, ...) are shared by
// all; src/runtime.ts and src/server.ts put the process together.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

type Layer = 'cli' | 'http' | 'domain' | 'db' | 'upstream' | 'root' | 'generated' | 'simulate' | 'shared';

const MAY_USE: Record<Layer, Layer[]> = {
  cli: ['cli', 'domain', 'root', 'simulate', 'shared'],
  http: ['http', 'domain', 'generated', 'shared'],
  domain: ['domain', 'db', 'upstream', 'generated', 'shared'],
  db: ['db', 'shared'],
  upstream: ['upstream', 'shared'],
  root: ['root', 'http', 'domain', 'db', 'upstream', 'simulate', 'shared'],
  generated: [],
  simulate: ['simulate', 'shared'],
  shared: ['shared'],
};

function layerOf(file: string): Layer {
  if (file.startsWith('cli/')) return 'cli';
  if (file === 'src/runtime.ts' || file === 'src/server.ts') return 'root';
  const dir = /^src\/([^/]+)\//.exec(file)?.[1];
  if (dir === undefined) return 'shared';
  if (['http', 'domain', 'db', 'upstream', 'generated', 'simulate'].includes(dir)) return dir as Layer;
  throw new Error(`${file}: a folder of src/ this test does not know; give it a layer`);
}

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    return e.isDirectory() ? sources(rel) : rel.endsWith('.ts') ? [rel] : [];
  });
}

// `import ... from './x.js'`, `export ... from './x.js'` (types too) and `import('./x.js')`: relative ones only.
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'";]*?\sfrom\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g;

/** Every module of src/ and cli/ and the modules of src/ and cli/ it imports. */
const graph = new Map<string, string[]>(
  [...sources('src'), ...sources('cli')].map((file) => {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    const targets = [...text.matchAll(IMPORT)].map((m) => path.posix.join(path.posix.dirname(file), m[1] ?? m[2]).replace(/\.js$/, '.ts'));
    return [file, targets];
  }),
);

describe('layers', () => {
  test('when the modules are read, then their imports are found (the check below has something to check)', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('src/domain/charge.ts')).toContain('src/upstream/charge-service.ts');
    expect(graph.get('cli/commands/server.ts')).toContain('src/runtime.ts'); // a dynamic import
    for (const targets of graph.values()) for (const target of targets) expect(graph.has(target) || target.startsWith('src/generated/')).toBe(true);
  });

  test('when a module imports another, then only from its own layer or one it may use', () => {
    const violations = [...graph].flatMap(([file, targets]) =>
      targets.filter((target) => !MAY_USE[layerOf(file)].includes(layerOf(target))).map((target) => `${file} -> ${target}`),
    );
    expect(violations).toEqual([]);
  });

  test('when imports are followed, then no module comes back to itself', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const target of graph.get(file) ?? []) visit(target, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
