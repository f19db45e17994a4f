// GET /docs renders in a real headless browser, offline, with every operation of the spec visible.
//
// Needs Chromium at /usr/bin/chromium (or CHROMIUM_PATH), which CI machines do not have: there the
// test is skipped with a message, and `make test` does not depend on it. To run it locally:
//   apt-get update && apt-get install -y chromium
//   node --experimental-vm-modules node_modules/jest/bin/jest.js test/docs-render.test.ts
// DOCS_RENDER_DUMP=/tmp/docs.html writes the rendered DOM there.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { OpenAPIBackend } from 'openapi-backend';
import { startTestApp, type TestApp } from './support/app.js';
import { ROOT, SPEC_PATH } from '../src/http/assets.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) {
  process.stderr.write(`docs-render.test.ts: skipped, no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH, to run it)\n`);
}
const maybe = haveChromium ? test : test.skip;

let app: TestApp | undefined;
let profile: string | undefined;

beforeAll(async () => {
  if (!haveChromium) return;
  app = await startTestApp();
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'order-up-chromium-'));
});

afterAll(async () => {
  await app?.stop();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

/** The DOM after Redoc had `budgetMs` of virtual time to fetch the spec and render. */
function dumpDom(url: string, budgetMs: number): Promise<string> {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    // Every request that would leave the machine fails (loopback bypasses the proxy): proves offline.
    '--proxy-server=http://127.0.0.1:9',
    `--user-data-dir=${profile}`,
    `--virtual-time-budget=${budgetMs}`,
    '--dump-dom',
    url,
  ];
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function operations() {
  const api = new OpenAPIBackend({ definition: SPEC_PATH, quick: true });
  await api.init();
  const ops = api.getOperations();
  expect(ops.length).toBeGreaterThan(0);
  return ops;
}

/** What the page shows: the inlined Redoc bundle and its state (the whole spec) are scripts. */
function visibleMarkup(dom: string): string {
  return dom
    .replace(/<script\b[\s\S]*?<\/script>/gi, '')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"');
}

const GUIDE_SECTIONS = ['The order life cycle', 'Public site flow', 'Internal (staff) site flow', 'Staff authentication', 'Error handling', 'Pagination', 'Calling from a browser (CORS)'];

function expectNoRenderError(text: string): void {
  expect(text).not.toMatch(/Something went wrong|Error downloading|Failed to load/i);
}

function expectGuide(text: string): void {
  expect(GUIDE_SECTIONS.filter((heading) => !text.includes(heading))).toEqual([]);
}
maybe(
  '`make docs` output (redocly build-docs --inlineBundle) renders from file:// with no network, every operation on its tag page',
  async () => {
    const out = path.join(profile!, 'index.html');
    await new Promise<void>((resolve, reject) => {
      execFile(
        path.join(ROOT, 'node_modules', '.bin', 'redocly'),
        ['build-docs', SPEC_PATH, '--inlineBundle', '--output', out],
        { cwd: ROOT, timeout: 60_000, env: { ...process.env, REDOCLY_TELEMETRY: 'off' } },
        (err, _stdout, stderr) => (err ? reject(new Error(`redocly build-docs failed: ${err.message}\n${stderr}`)) : resolve()),
      );
    });
    // Self-contained: no script, stylesheet or font is loaded from elsewhere.
    const html = fs.readFileSync(out, 'utf8');
    expect(html.match(/<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\/[^>]*>/gi) ?? []).toEqual([]);

    // Redoc 3 (what build-docs renders with) shows the guide on its first page and each tag's
    // operations on the tag's own page (hash routing: index.html#/orders).
    const home = visibleMarkup(await dumpDom(pathToFileURL(out).href, 15_000));
    expectNoRenderError(home);
    expectGuide(home);
    const ops = await operations();
    const missing: string[] = [];
    for (const tag of new Set(ops.flatMap((op) => op.tags ?? []))) {
      const page = visibleMarkup(await dumpDom(`${pathToFileURL(out).href}#/${tag.toLowerCase()}`, 15_000));
      expectNoRenderError(page);
      for (const op of ops.filter((o) => o.tags?.includes(tag))) if (!page.includes(String(op.summary))) missing.push(`${tag}: ${op.operationId} (${op.summary})`);
    }
    expect(missing).toEqual([]);
  },
  120_000,
);

maybe(
  'GET /docs renders the reference, with every operation and the frontend guide, with no network beyond the server',
  async () => {
    const dom = await dumpDom(`${app!.url}/docs`, 20_000);
    if (process.env.DOCS_RENDER_DUMP) fs.writeFileSync(process.env.DOCS_RENDER_DUMP, dom); // to look at what was rendered
    const text = visibleMarkup(dom);
    expectNoRenderError(text);
    expectGuide(text);
    // Redoc 2 (served from node_modules/redoc) renders every operation on one page, anchored `operation/<operationId>`.
    const missing = (await operations()).filter((op) => !text.includes(String(op.summary)) || !text.includes(`operation/${op.operationId}`));
    expect(missing.map((op) => `${op.operationId}: ${op.summary}`)).toEqual([]);
    expect(text).toContain('staffToken'); // the security scheme's section
  },
  90_000,
);
