import { Writable } from 'node:stream';

/** Collects every log line an app writes (pass it as startTestApp's logDestination). */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  private rest = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    const parts = (this.rest + chunk.toString('utf8')).split('\n');
    this.rest = parts.pop() ?? '';
    this.lines.push(...parts.filter((l) => l.length > 0));
    done();
  }
  /** Everything written so far, as text. */
  get text(): string {
    return [...this.lines, this.rest].join('\n');
  }
  records(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  /** The access-log lines ('request') of one request id. */
  accessLines(reqId: string): Record<string, unknown>[] {
    return this.records().filter((r) => r.msg === 'request' && r.reqId === reqId);
  }
}
