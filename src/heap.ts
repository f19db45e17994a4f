import v8 from 'node:v8';

/** The V8 flag, as node's command line may spell it (V8 takes `_` and `-` alike). */
const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/**
 * How far V8 lets the old generation grow past what the last full collection kept before it runs
 * the next one: to (1 + percent/100) times that (plus a few MB), instead of V8's own factor, which
 * is up to 4 where the heap may grow to 2 GB or more (node's default on machines of about 8 GB or
 * more). Under load much of what a request allocates outlives a young-generation collection and
 * is moved to the old generation, where it lies until the next full collection. A serving process
 * keeps ~20 MB live; with a factor of 4 its old generation swung between ~20 and ~85 MB, and
 * `make bench`'s memory mix peaked near 180 MB resident; at 50 it stays under ~32 MB and the mix
 * peaks near 126 MB, for more full collections of a small heap (about 1% of the process's time
 * under full load, within the benchmark's noise). docs/operations.md ("Memory") tells how to
 * change it.
 *
 * Set at start-up of each serving process: V8 reads it whenever it sets the next limit, so it
 * takes effect from the first full collection on. 0 leaves V8's own rule; a `--heap-growing-percent`
 * given to node itself wins. Answers whether it set the flag.
 */
export function limitHeapGrowth(percent: number, execArgv: readonly string[] = process.execArgv): boolean {
  if (percent <= 0 || execArgv.some((arg) => FLAG.test(arg))) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  return true;
}
