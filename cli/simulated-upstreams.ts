import fs from 'node:fs';
import path from 'node:path';

/**
 * `serve --simulate-upstreams` (what `make run` uses) runs its simulated charge and fulfillment
 * services on a port of its own choosing. So that a staff command in another terminal "just
 * works" next to it, serve leaves the simulator's URL in the data directory while it runs, and
 * staff commands fall back to it when CHARGE_SERVICE_URL / FULFILLMENT_SERVICE_URL are not set.
 */
const FILE = 'simulated-upstreams.json';

interface Published {
  url: string;
  pid: number;
}

/** Writes the file; the returned function removes it again (if it is still ours). */
export function publishSimulatedUpstreams(dataDir: string, url: string): () => void {
  const file = path.join(path.resolve(dataDir), FILE);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ url, pid: process.pid } satisfies Published) + '\n');
    fs.renameSync(tmp, file);
  } catch {
    return () => undefined; // best effort: staff can still set the variables themselves
  }
  return () => {
    try {
      if (read(file)?.pid === process.pid) fs.unlinkSync(file);
    } catch {
      // already gone
    }
  };
}

/** The URL of the simulator of a running `serve --simulate-upstreams` on this data directory, if any. */
export function findSimulatedUpstreams(dataDir: string): string | undefined {
  const found = read(path.join(path.resolve(dataDir), FILE));
  return found && alive(found.pid) ? found.url : undefined;
}

function read(file: string): Published | undefined {
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Published>;
    return typeof value.url === 'string' && /^https?:\/\//.test(value.url) && Number.isInteger(value.pid)
      ? (value as Published)
      : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
