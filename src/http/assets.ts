import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// The repository root, whether we run from src/ (jest) or dist/src/ (built).
const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = here.includes(`${path.sep}dist${path.sep}`) ? path.resolve(here, '../../..') : path.resolve(here, '../..');
export const SPEC_PATH = path.join(ROOT, 'openapi', 'order-up.yaml');

const require = createRequire(import.meta.url);
/** Redoc's self-contained bundle from npm, so /docs works with no network. */
export const docsAssetPath = () => require.resolve('redoc/bundles/redoc.standalone.js');

/**
 * Redoc's options: one Redoc (2.5.2, from npm), one look, for GET /docs and `make docs`
 * (scripts/build-docs.mjs). The middle column gets the room (a narrower right panel), so the
 * guide's code blocks fit at 1400 px; every tag's operations are listed in the side menu.
 */
export const REDOC_OPTIONS = {
  hideDownloadButton: false,
  downloadFileName: 'order-up.yaml',
  jsonSampleExpandLevel: 'all',
  theme: {
    rightPanel: { width: '40%' },
    sidebar: { width: '250px' },
    typography: { code: { fontSize: '13px' } },
  },
};

// Error codes (`operation_in_progress`) are words: never broken in the middle (Redoc breaks inline
// code anywhere, which in a table cell splits a code in two). Every tag's operations are always
// listed in the side menu, so each is one click from the first screen (its entries a little tighter
// than Redoc's own, so that they all fit on it).
const PAGE_CSS = `body { margin: 0; padding: 0; }
#redoc code { word-break: keep-all; overflow-wrap: normal; }
#redoc td code { white-space: nowrap; }
#redoc li[role="menuitem"] > label { padding-top: 6px; padding-bottom: 6px; }
li[data-item-id^="tag/"] > ul { display: block !important; }
li[data-item-id^="tag/"] > label > svg { display: none; }`;

/** `text` inside <script>: nothing in it can end the element or switch the parser's state. */
function scriptSafe(text: string): string {
  return text.replace(/<(!--|\/?script)/gi, '\\x3C$1');
}

/**
 * The reference page. GET /docs loads Redoc and the spec from the server (`src`, `url`); `make docs`
 * inlines both (`inline`, the parsed `document`) into one file that works offline, from file://.
 */
export function docsPage(opts: { redoc: { src: string } | { inline: string }; spec: { url: string } | { document: unknown } }): string {
  const redoc = 'src' in opts.redoc ? `<script src="${opts.redoc.src}"></script>` : `<script>${scriptSafe(opts.redoc.inline)}</script>`;
  const spec = scriptSafe(JSON.stringify('url' in opts.spec ? opts.spec.url : opts.spec.document));
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>order-up API reference</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <style>${PAGE_CSS}</style>
</head>
<body>
  <div id="redoc"></div>
  ${redoc}
  <script>
    Redoc.init(${spec}, ${scriptSafe(JSON.stringify(REDOC_OPTIONS))}, document.getElementById('redoc'), function (err) {
      document.documentElement.setAttribute('data-redoc', err ? 'failed' : 'ready');
    });
  </script>
</body>
</html>
`;
}

export const DOCS_HTML = docsPage({ redoc: { src: '/docs/redoc.standalone.js' }, spec: { url: '/openapi.yaml' } });
