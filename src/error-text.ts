// What of an error's text may be shown. Database errors can quote the failed statement with its
// parameters inlined - MikroORM's DriverException message is `insert into "payments" (...) values
// (..., 'tok_...', ...) - <reason>` - and PostgreSQL's detail quotes key values (`Key
// (card_token)=(tok_...) already exists.`): no card token (or any other stored value) may reach a
// log line or a terminal that way. Logs keep the statement's shape with its values stripped
// (`scrubbed`, src/log.ts); people are shown one line, the database's own complaint (`safeMessage`, cli/).

// A SQL string literal ('...' with '' as the escaped quote).
const SQL_LITERAL = /'(?:[^']|'')*'/g;
// The values PostgreSQL quotes in an error's detail: `Key (card_token)=(tok_...) already exists.`
const KEY_VALUES = /\)=\((?:[^()]|\([^()]*\))*\)/g;
// A statement anywhere in a text.
const SQL_TEXT = /\b(?:insert\s+into|update\s+\S+\s+set|select\s[\s\S]*\sfrom|delete\s+from|values\s*\()/i;
// A message that is a statement followed by " - <the database's complaint>".
const STATEMENT_FIRST = /^\s*(select|insert|update|delete|with)\b/i;
// Fields of an error that hold a statement's parameters: left out altogether.
const DROPPED = new Set(['params', 'parameters', 'bindings', 'values']);
const MAX_MESSAGE = 300;

/** `value` (an error serialised for a log, any depth up to 5) with SQL literals and quoted key values stripped. */
export function scrubbed(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') {
    const out = SQL_TEXT.test(value) ? value.replace(SQL_LITERAL, "'?'") : value;
    return out.replace(KEY_VALUES, ')=(?)');
  }
  if (depth > 5 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubbed(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!DROPPED.has(k)) out[k] = scrubbed(v, depth + 1);
  }
  return out;
}

/** An error's message for people: of a quoted statement only the database's complaint after it, first line, bounded. */
export function safeMessage(e: unknown): string {
  let msg = e instanceof Error ? e.message : String(e);
  if (STATEMENT_FIRST.test(msg)) {
    const cut = msg.lastIndexOf(' - ');
    msg = cut >= 0 ? `database error: ${msg.slice(cut + 3)}` : 'database error';
  }
  msg = msg.split('\n')[0];
  return msg.length > MAX_MESSAGE ? `${msg.slice(0, MAX_MESSAGE)}...` : msg;
}
