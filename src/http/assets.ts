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

export const DOCS_HTML = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>order-up API reference</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="/openapi.yaml" hide-download-button="false"></redoc>
  <script src="/docs/redoc.standalone.js"></script>
</body>
</html>
`;
