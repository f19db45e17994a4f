// GET /docs and `make docs` render in a real headless browser, offline, with every operation of the
// spec visible, and read well at 1400 px.
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
import { docsAssetPath, REDOC_OPTIONS, ROOT, SPEC_PATH } from '../src/http/assets.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) {
  process.stderr.write(
    `docs-render.test.ts: skipped, no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH, to run it)\n`,
  );
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
function dumpDom(url: string, budgetMs: number, extra: string[] = []): Promise<string> {
  const args = [
    ...extra,
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

const GUIDE_SECTIONS = [
  'The order life cycle',
  'Public site flow',
  'Internal (staff) site flow',
  'Staff authentication',
  'Error handling',
  'Pagination',
  'Calling from a browser (CORS)',
];

function expectNoRenderError(text: string): void {
  expect(text).not.toMatch(/Something went wrong|Error downloading|Failed to load/i);
}

function expectGuide(text: string): void {
  expect(GUIDE_SECTIONS.filter((heading) => !text.includes(heading))).toEqual([]);
}
/** `make docs`: scripts/build-docs.mjs (needs `make build`) writes the page to `out`. */
function buildDocs(out: string): Promise<void> {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'http', 'assets.js')))
    throw new Error('not built: run `make build` (make test does) before this test');
  return new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts', 'build-docs.mjs'), out],
      { cwd: ROOT, timeout: 60_000 },
      (err, _stdout, stderr) => (err ? reject(new Error(`scripts/build-docs.mjs failed: ${err.message}\n${stderr}`)) : resolve()),
    );
  });
}

maybe(
  '`make docs` output renders from file:// with no network: the same Redoc and look as GET /docs, every operation on its one page',
  async () => {
    const out = path.join(profile!, 'index.html');
    await buildDocs(out);
    // Self-contained: no script, stylesheet or font is loaded from elsewhere.
    const html = fs.readFileSync(out, 'utf8');
    expect(html.match(/<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\/[^>]*>/gi) ?? []).toEqual([]);
    // One Redoc (the bundle /docs serves), one look (the same styles and options).
    expect(html).toContain(fs.readFileSync(docsAssetPath(), 'utf8').slice(0, 2000));
    const served = String((await app!.call('GET', '/docs')).body);
    const look = (page: string) => ({
      style: /<style>[\s\S]*?<\/style>/.exec(page)?.[0],
      options: page.includes(`, ${JSON.stringify(REDOC_OPTIONS)}, document`),
    });
    expect(look(html)).toEqual(look(served));
    expect(look(html).options).toBe(true);

    const text = visibleMarkup(await dumpDom(pathToFileURL(out).href, 15_000));
    expectNoRenderError(text);
    expectGuide(text);
    const missing = (await operations()).filter(
      (op) => !text.includes(String(op.summary)) || !text.includes(`operation/${op.operationId}`),
    );
    expect(missing.map((op) => `${op.operationId}: ${op.summary}`)).toEqual([]);
  },
  120_000,
);

// Runs in the page once Redoc has rendered: what a reader at a 1400 x 900 screen would meet.
const LAYOUT_PROBE = `(function wait() {
  if (document.documentElement.getAttribute('data-redoc') !== 'ready') return setTimeout(wait, 100);
  var firstScreen = Array.from(document.querySelectorAll('li[data-item-id*="/operation/"]')).filter(function (li) {
    var b = li.getBoundingClientRect();
    return !(b.height > 0 && b.top >= 0 && b.bottom <= innerHeight);
  }).map(function (li) { return li.getAttribute('data-item-id'); });
  // Every response opened: the error examples and the ProblemCode table are shown.
  Array.from(document.querySelectorAll('button:not([aria-label])')).forEach(function (b) { b.click(); });
  setTimeout(function () {
    var report = {
      operations: document.querySelectorAll('li[data-item-id*="/operation/"]').length,
      notOnFirstScreen: firstScreen,
      horizontalScroll: Array.from(document.querySelectorAll('#redoc pre, #redoc table, #redoc .redoc-json')).filter(function (el) {
        return el.scrollWidth > el.clientWidth + 1;
      }).map(function (el) { return el.textContent.slice(0, 60); }),
      errorCodesShown: 0,
      errorCodesBroken: []
    };
    Array.from(document.querySelectorAll('#redoc code')).forEach(function (c) {
      if (!/^[a-z]+(_[a-z]+)+$/.test(c.textContent)) return;
      report.errorCodesShown += 1;
      if (c.getClientRects().length > 1 && report.errorCodesBroken.indexOf(c.textContent) < 0) report.errorCodesBroken.push(c.textContent);
    });
    document.body.setAttribute('data-layout', JSON.stringify(report));
  }, 1500);
})();`;

maybe(
  'when the reference is read at 1400 x 900, then every operation is in the side menu of the first screen, no code block or table needs horizontal scroll, and no error code is broken',
  async () => {
    const out = path.join(profile!, 'layout.html');
    await buildDocs(out);
    const html = fs.readFileSync(out, 'utf8');
    const end = html.lastIndexOf('</body>');
    fs.writeFileSync(out, `${html.slice(0, end)}<script>${LAYOUT_PROBE}</script>${html.slice(end)}`);
    const dom = await dumpDom(pathToFileURL(out).href, 20_000, ['--window-size=1400,900']);
    const attr = /data-layout="([^"]*)"/.exec(dom)?.[1];
    expect(attr).toBeDefined();
    const report = JSON.parse(
      attr!
        .replace(/&quot;/g, '"')
        .replace(/&amp;/g, '&')
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>'),
    );
    expect(report.operations).toBe((await operations()).length);
    expect(report.errorCodesShown).toBeGreaterThan(100);
    expect({
      notOnFirstScreen: report.notOnFirstScreen,
      horizontalScroll: report.horizontalScroll,
      errorCodesBroken: report.errorCodesBroken,
    }).toEqual({
      notOnFirstScreen: [],
      horizontalScroll: [],
      errorCodesBroken: [],
    });
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
    const missing = (await operations()).filter(
      (op) => !text.includes(String(op.summary)) || !text.includes(`operation/${op.operationId}`),
    );
    expect(missing.map((op) => `${op.operationId}: ${op.summary}`)).toEqual([]);
    expect(text).toContain('staffToken'); // the security scheme's section
  },
  90_000,
);
