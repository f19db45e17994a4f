// What of an error's text may be shown (src/error-text.ts): logs keep a statement's shape without its
// values, people get one line with the database's complaint. And src/log.ts uses it for every error.
import { describe, expect, test } from '@jest/globals';
import { safeMessage, scrubbed } from '../../src/error-text.js';
import { createLogger } from '../../src/log.js';
import { LogCapture } from '../support/log-capture.js';

const STATEMENT = `insert into "payments" ("id", "card_token", "amount_cents") values ('5d1e2c3b', 'tok_it''s_secret', 2000) - duplicate key value violates unique constraint "payments_pkey"`;

describe('scrubbed', () => {
  test('when a text quotes a statement, then its string literals become ? and its shape stays', () => {
    expect(scrubbed(STATEMENT)).toBe(
      `insert into "payments" ("id", "card_token", "amount_cents") values ('?', '?', 2000) - duplicate key value violates unique constraint "payments_pkey"`,
    );
  });

  test('when PostgreSQL quotes key values in a detail, then the values become ?', () => {
    expect(scrubbed('Key (card_token)=(tok_visa_4242) already exists.')).toBe('Key (card_token)=(?) already exists.');
    expect(scrubbed('Key (order_id, kind)=(web-1, charge(x)) already exists.')).toBe('Key (order_id, kind)=(?) already exists.');
  });

  test('when a text is no statement, then its quotes are left alone', () => {
    expect(scrubbed("the order 'web-1' was not found")).toBe("the order 'web-1' was not found");
  });

  test('when an error object nests statements and parameter lists, then every level is scrubbed and parameters are dropped', () => {
    const err = {
      message: STATEMENT,
      params: ['tok_x'],
      cause: { detail: 'Key (id)=(tok_y) exists', values: ['tok_z'], list: [`update orders set note = 'tok_w'`] },
    };
    const out = JSON.stringify(scrubbed(err));
    expect(out).not.toMatch(/tok_/);
    expect(scrubbed(err)).toEqual({
      message: expect.stringContaining("values ('?', '?', 2000)"),
      cause: { detail: 'Key (id)=(?) exists', list: [`update orders set note = '?'`] },
    });
  });

  test('when a value is no string or object, then it comes back as it was', () => {
    expect([scrubbed(42), scrubbed(null), scrubbed(undefined), scrubbed(true)]).toEqual([42, null, undefined, true]);
  });
});

describe('safeMessage', () => {
  test("when an error's message is a statement, then only the database's complaint after it is shown", () => {
    expect(safeMessage(new Error(STATEMENT))).toBe('database error: duplicate key value violates unique constraint "payments_pkey"');
    expect(safeMessage(new Error(`select * from orders where id = 'tok_x'`))).toBe('database error');
  });

  test('when a message has several lines or is very long, then the first line, at most 300 characters', () => {
    expect(safeMessage(new Error('first line\nsecond line'))).toBe('first line');
    expect(safeMessage(new Error('x'.repeat(400)))).toBe(`${'x'.repeat(300)}...`);
  });

  test('when something other than an Error is thrown, then its text is shown', () => {
    expect(safeMessage('plain text')).toBe('plain text');
    expect(safeMessage(42)).toBe('42');
  });
});

describe('createLogger', () => {
  test('when an error quoting a card token is logged, then the line has the statement without the token', () => {
    const capture = new LogCapture();
    const log = createLogger({ level: 'info', destination: capture });
    log.error({ err: Object.assign(new Error(STATEMENT), { detail: 'Key (card_token)=(tok_it) already exists.' }) }, 'could not record');
    expect(capture.lines).toHaveLength(1);
    expect(capture.text).not.toMatch(/tok_it/);
    const line = capture.records()[0] as { err: { message: string; detail: string }; msg: string };
    expect(line.msg).toBe('could not record');
    expect(line.err.message).toContain(`values ('?', '?', 2000)`);
    expect(line.err.detail).toBe('Key (card_token)=(?) already exists.');
  });

  test('when a card token or a credential is logged as a field, then it is redacted', () => {
    const capture = new LogCapture();
    const log = createLogger({ level: 'info', destination: capture });
    log.info({ cardToken: 'tok_visa', request: { cardToken: 'tok_visa' }, headers: { authorization: 'Bearer s3cret' } }, 'charging');
    expect(capture.text).not.toMatch(/tok_visa|s3cret/);
    expect(capture.records()[0]).toMatchObject({
      cardToken: '[redacted]',
      request: { cardToken: '[redacted]' },
      headers: { authorization: '[redacted]' },
    });
  });
});
