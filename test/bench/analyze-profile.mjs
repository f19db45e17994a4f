// Summarises a V8 .cpuprofile of `order-up serve` taken during `make bench`:
//   BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" BENCH_WINDOW_FILE=/tmp/prof/window.json \
//     node dist/test/bench/charge-pipeline.js && node test/bench/analyze-profile.mjs /tmp/prof
// Only samples inside the measured windows count (when the window file is there). Prints self time
// by package and by function, and inclusive time (the function and everything it called) for
// functions matching FOCUS (a regular expression; default: order-up's own code and the main
// libraries on the request path), all in ms per charge when CHARGES (default 300 x rounds) is known.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? '/tmp/prof';
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .map((f) => path.join(dir, f));
const file = files.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
const p = JSON.parse(fs.readFileSync(file, 'utf8'));
const windowFile = process.env.WINDOW_FILE ?? path.join(dir, 'window.json');
const windows = fs.existsSync(windowFile) ? JSON.parse(fs.readFileSync(windowFile, 'utf8')).windows : null;
const charges = Number(process.env.CHARGES ?? (windows ? windows.length * 300 : 1));
const focus = new RegExp(
  process.env.FOCUS ?? '/dist/|express|openapi-backend|ajv|axios|p-queue|pino|knex|mikro-orm|/pg/|pg-protocol|tarn|router|body-parser',
);

const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const where = (url) =>
  url
    .split('/node_modules/')
    .pop()
    .replace(/^file:\/\/.*\/dist\//, 'dist/');
const keyOf = (n) => `${n.callFrame.functionName || '(anon)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const pkgOf = (n) => {
  const url = n.callFrame.url;
  if (!url) return n.callFrame.functionName.startsWith('(') ? n.callFrame.functionName : '(native)';
  if (url.includes('/node_modules/')) {
    const m = url.split('/node_modules/').pop().split('/');
    return m[0].startsWith('@') ? `${m[0]}/${m[1]}` : m[0];
  }
  if (url.includes('/dist/')) return 'order-up';
  if (url.startsWith('node:')) return url;
  return url;
};

const self = new Map();
const inclusive = new Map();
const pkgSelf = new Map();
let t = p.startTime;
let total = 0;
let all = 0;
p.samples.forEach((id, i) => {
  const dt = p.timeDeltas[i] ?? 0;
  t += dt;
  all += dt;
  if (windows && !windows.some(([a, b]) => t >= a && t <= b)) return;
  const n = byId.get(id);
  if (n.callFrame.functionName === '(idle)') return;
  total += dt;
  self.set(keyOf(n), (self.get(keyOf(n)) ?? 0) + dt);
  pkgSelf.set(pkgOf(n), (pkgSelf.get(pkgOf(n)) ?? 0) + dt);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur);
    if (!focus.test(node.callFrame.url) && !node.callFrame.functionName.startsWith('(')) continue;
    const k = keyOf(node);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
  }
});
const ms = (us) => (us / 1000 / charges).toFixed(3).padStart(8);
const top = (m, n) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${ms(v)} ${k}`)
    .join('\n');
console.log(
  `${path.basename(file)}: busy ${(total / 1000).toFixed(0)} ms in ${windows ? windows.length : 0} window(s) (whole profile ${(all / 1000).toFixed(0)} ms); figures in ms per charge over ${charges} charges`,
);
console.log('\n== self time by package ==');
console.log(top(pkgSelf, 25));
console.log('\n== self time by function ==');
console.log(top(self, Number(process.env.TOP ?? 40)));
console.log('\n== inclusive time (function + callees) ==');
console.log(top(inclusive, Number(process.env.TOP ?? 60)));
