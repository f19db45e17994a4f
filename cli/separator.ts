import type { Command, Option } from 'commander';
import { UsageError } from './shared.js';

// IDs that start with "-" (a client may choose one: ^[A-Za-z0-9_-]{1,64}$) go after "--", where
// nothing is read as an option; every option goes before it. These helpers make the CLI say so.

/** The command named by the leading words of `args` (e.g. `orders show`), its path, and the words after it. */
function locate(program: Command, args: string[]): { cmd: Command; path: string[]; rest: string[] } {
  let cmd = program;
  const path: string[] = [];
  let i = 0;
  for (; i < args.length; i += 1) {
    const sub = cmd.commands.find((c) => c.name() === args[i] || c.aliases().includes(args[i]));
    if (!sub) break;
    cmd = sub;
    path.push(sub.name());
  }
  return { cmd, path, rest: args.slice(i) };
}

/** The option of `cmd` that `word` names (`--reason`, `--reason=x`, `--help`), if any. */
function optionNamed(cmd: Command, word: string): Option | 'help' | undefined {
  if (!word.startsWith('-') || word === '-' || word === '--') return undefined;
  const name = word.startsWith('--') ? word.split('=')[0] : word;
  if (name === '--help' || name === '-h') return 'help';
  return cmd.options.find((o) => o.long === name || o.short === name);
}

function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The same command with every option before "--" and every ID after it. */
function separated(cmd: Command, path: string[], words: string[]): string {
  const options: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < words.length; i += 1) {
    const word = words[i];
    if (word === '--') continue;
    const option = optionNamed(cmd, word);
    if (!option) {
      ids.push(word);
      continue;
    }
    options.push(word);
    const takesValue = option !== 'help' && (option.required || option.optional) && !word.includes('=');
    if (takesValue && i + 1 < words.length) options.push(words[++i]);
  }
  return ['order-up', ...path, ...options, '--', ...ids].map(quote).join(' ');
}

/**
 * Refuses (usage error, before anything is done) an option written after "--": there it would be
 * read as an ID (`order-up cancel -- -dash-1 --reason test` would cancel orders "--reason" and "test").
 */
export function refuseOptionsAfterSeparator(program: Command, args: string[]): void {
  const { cmd, path, rest } = locate(program, args);
  const at = rest.indexOf('--');
  if (at < 0 || cmd.registeredArguments.length === 0) return;
  const misplaced = rest.slice(at + 1).find((w) => optionNamed(cmd, w) !== undefined);
  if (misplaced === undefined) return;
  throw new UsageError(
    `"${misplaced}" comes after "--", where every word is read as an ID, not an option. ` +
      `Options go before "--", IDs that start with "-" after it:\n  ${separated(cmd, path, rest)}`,
  );
}

/**
 * For commander's "unknown option '-dash-1'" on a command that takes IDs: the hint to put such an
 * ID after "--" (and options before it), as the whole corrected command line. Empty otherwise.
 */
export function dashIdHint(program: Command, message: string): string {
  const flag = /^error: unknown option '(-[^-].+)'/.exec(message)?.[1];
  if (!flag) return '';
  const { rawArgs } = program as unknown as { rawArgs: string[] }; // set by parse(): the whole argv
  const { cmd, path, rest } = locate(program, rawArgs.slice(2));
  if (cmd.registeredArguments.length === 0) return '';
  const noun = cmd.registeredArguments[0].name().toLowerCase().includes('payment') ? 'a payment ID' : 'an order ID';
  return `If ${flag} is ${noun}, put it after "--" and every option before "--":\n  ${separated(cmd, path, rest)}\n`;
}
