// A charge service stand-in for the benchmark, in its own process so it does not compete with
// order-up for the event loop. Each charge takes LATENCY_MS (to within ~0.1 ms: a timer gets close,
// then setImmediate steps finish without blocking new arrivals, so overlaps are still counted).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const latencyMs = Number(process.env.LATENCY_MS ?? 5);
let inFlight = 0;
let maxInFlight = 0;
let calls = 0;
let lastEnd = 0;
let gapMs = 0;

function after(ms: number, done: () => void): void {
  const end = performance.now() + ms;
  const step = () => (performance.now() >= end ? done() : setImmediate(step));
  setTimeout(step, Math.max(0, ms - Number(process.env.SPIN_MS ?? 1.5)));
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/reset') {
    lastEnd = 0;
    gapMs = 0;
    res.writeHead(204).end();
    return;
  }
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ calls, maxInFlight, gapMs }));
    return;
  }
  inFlight += 1;
  maxInFlight = Math.max(maxInFlight, inFlight);
  // Idle time between the end of one charge and the start of the next: order-up's overhead.
  if (lastEnd > 0) gapMs += performance.now() - lastEnd;
  req.resume();
  req.on('end', () => {
    calls += 1;
    after(latencyMs, () => {
      inFlight -= 1;
      lastEnd = performance.now();
      res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
    });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
