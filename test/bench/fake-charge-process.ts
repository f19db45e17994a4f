// A charge service stand-in for the benchmark, in its own process so it does not compete with
// order-up for the event loop. Each charge takes LATENCY_MS from its request's arrival to its answer.
// A timer alone is up to ~1 ms early or late (libuv keeps time in whole milliseconds), so the timer is
// set SPIN_MS short and setImmediate steps finish the wait without blocking new arrivals (overlaps are
// still counted). Spinning costs CPU that order-up could use on a small machine, so SPIN_MS is small;
// /stats reports the real service time so the benchmark can tell the fake's lateness from order-up's.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const latencyMs = Number(process.env.LATENCY_MS ?? 5);
const spinMs = Number(process.env.SPIN_MS ?? 0.5);
let inFlight = 0;
let maxInFlight = 0;
let calls = 0;
let lastEnd = 0;
let gapMs = 0;
let serviceMs = 0;
// CLOCK_MONOTONIC microseconds (shared with the benchmark's process): when the burst really began and ended here.
let firstArrivalUs = 0;
let lastEndUs = 0;
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

function after(end: number, done: () => void): void {
  const step = () => (performance.now() >= end ? done() : setImmediate(step));
  setTimeout(step, Math.max(0, end - performance.now() - spinMs));
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/reset') {
    lastEnd = 0;
    gapMs = 0;
    serviceMs = 0;
    calls = 0;
    firstArrivalUs = 0;
    res.writeHead(204).end();
    return;
  }
  if (req.method === 'GET' && req.url === '/stats') {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ calls, maxInFlight, gapMs, serviceMs, firstArrivalUs, lastEndUs }));
    return;
  }
  const arrived = performance.now();
  if (firstArrivalUs === 0) firstArrivalUs = monotonicUs();
  inFlight += 1;
  maxInFlight = Math.max(maxInFlight, inFlight);
  // Idle time between the end of one charge and the start of the next: order-up's overhead.
  if (lastEnd > 0) gapMs += arrived - lastEnd;
  req.resume();
  req.on('end', () => {
    calls += 1;
    after(arrived + latencyMs, () => {
      inFlight -= 1;
      lastEnd = performance.now();
      serviceMs += lastEnd - arrived;
      lastEndUs = monotonicUs();
      res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
    });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
