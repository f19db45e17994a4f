import pMap from 'p-map';
import type { OrderStatus } from '../src/domain/order-state.js';
import { describeError, err, out } from './shared.js';

/** What became of one order in a batch. */
export interface ItemResult {
  id: string;
  ok: boolean;
  /** The order's status afterwards (on success). */
  status?: OrderStatus;
  refundedCents?: number;
  /** On failure: the stable error code (`not_attempted` when the batch was interrupted first). */
  code?: string;
  detail?: string;
}

export interface BatchResult {
  results: ItemResult[];
  succeeded: number;
  failed: number;
  notAttempted: number;
  interrupted: boolean;
}

export interface BatchOptions {
  /** "fulfilling" - for the counter. */
  doing: string;
  /** --json: results go to stdout as JSON at the end, progress lines to stderr. */
  json: boolean;
  concurrency: number;
  /** The line printed for a finished order, e.g. "fulfilled  <id>". */
  describe(result: ItemResult): string;
}

/**
 * Progress: a counter rewritten in place on a terminal, plain lines otherwise. Result lines go to
 * stdout in human mode and to stderr with --json (stdout then carries only the JSON).
 */
class Progress {
  private readonly tty: boolean;
  private done = 0;
  private failed = 0;

  constructor(
    private readonly total: number,
    private readonly doing: string,
    private readonly json: boolean,
  ) {
    this.tty = process.stderr.isTTY === true && total > 1;
  }

  finished(result: ItemResult, text: string): void {
    this.done += 1;
    if (!result.ok) this.failed += 1;
    this.clear();
    const line = this.total > 1 ? `[${this.done}/${this.total}] ${text}` : text;
    if (this.json) err(line);
    else out(line);
    this.draw();
  }

  note(text: string): void {
    this.clear();
    err(text);
    this.draw();
  }

  start(): void {
    this.draw();
  }

  end(): void {
    this.clear();
  }

  private draw(): void {
    if (!this.tty || this.done >= this.total) return;
    process.stderr.write(`${this.doing} ${this.done}/${this.total}${this.failed ? ` (${this.failed} failed)` : ''}...`);
  }

  private clear(): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }
}

/**
 * Runs one domain operation per order, each on its own: a failure is recorded and the others go
 * on. A few run at once (refunds still queue one at a time in the charge service client). On the
 * first SIGINT/SIGTERM no new order is started; the ones under way finish, so nothing is left
 * half-done; the rest are reported as not attempted.
 */
export async function runBatch(
  ids: string[],
  work: (id: string) => Promise<Omit<ItemResult, 'id' | 'ok'>>,
  opts: BatchOptions,
): Promise<BatchResult> {
  const results: ItemResult[] = ids.map((id) => ({
    id,
    ok: false,
    code: 'not_attempted',
    detail: 'interrupted before this order was started',
  }));
  const progress = new Progress(ids.length, opts.doing, opts.json);
  let interrupted = false;
  const stop = (signal: NodeJS.Signals) => {
    interrupted = true;
    progress.note(`order-up: ${signal}: finishing the orders under way, starting no more (again to abort)`);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  progress.start();
  const one = async (id: string, i: number) => {
    if (interrupted) return; // not started: stays not_attempted
    let result: ItemResult;
    try {
      result = { id, ok: true, ...(await work(id)) };
    } catch (e) {
      result = { id, ok: false, ...describeError(e) };
    }
    results[i] = result;
    progress.finished(result, opts.describe(result));
  };
  try {
    await pMap(ids, one, { concurrency: Math.max(1, opts.concurrency) });
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    progress.end();
  }
  const succeeded = results.filter((r) => r.ok).length;
  const notAttempted = results.filter((r) => r.code === 'not_attempted').length;
  return { results, succeeded, failed: results.length - succeeded - notAttempted, notAttempted, interrupted };
}

/** "3 fulfilled, 1 failed: <id> order_not_charged" (plus what was not attempted after an interrupt). */
export function summaryLine(batch: BatchResult, verb: string, extra = ''): string {
  const failures = batch.results.filter((r) => !r.ok && r.code !== 'not_attempted');
  let line = `${batch.succeeded} ${verb}${extra}, ${failures.length} failed`;
  if (failures.length > 0) line += `: ${failures.map((f) => `${f.id} ${f.code}`).join(', ')}`;
  if (batch.notAttempted > 0) line += `; ${batch.notAttempted} not attempted (interrupted)`;
  return line;
}
