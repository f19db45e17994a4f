#!/usr/bin/env node
// `make docs`: the reference GET /docs serves (the same Redoc 2.5.2 from node_modules/redoc, the
// same options), as one self-contained HTML file with the bundle and the spec inlined: it works
// offline and from file://. Needs `make build` (src/http/assets.ts, compiled, makes the page).
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { docsAssetPath, docsPage, SPEC_PATH } from '../dist/src/http/assets.js';

const out = path.resolve(process.argv[2] ?? 'docs/index.html');
const html = docsPage({
  redoc: { inline: fs.readFileSync(docsAssetPath(), 'utf8') },
  spec: { document: yaml.load(fs.readFileSync(SPEC_PATH, 'utf8')) },
});
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, html);
process.stdout.write(`wrote ${path.relative(process.cwd(), out)} (${Math.round(html.length / 1024)} KiB): open it in a browser\n`);
