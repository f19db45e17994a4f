// The page cursors (src/domain/cursors.ts): what GET /orders, /orders/{id}/events and /payments hand
// out as nextCursor, and what they take back.
import { describe, expect, test } from '@jest/globals';
import { AppError } from '../../src/domain/errors.js';
import { EVENT_CURSOR, ORDER_CURSOR, PAYMENT_CURSOR, type CursorCodec } from '../../src/domain/cursors.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

/** The 400 a cursor this service did not issue gets, or undefined when it decodes. */
function refusal<T>(codec: CursorCodec<T>, cursor: string): unknown {
  try {
    codec.decode(cursor);
    return undefined;
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    return { code: err.code, errors: err.extra.errors };
  }
}

const NOT_OURS = {
  code: 'invalid_request',
  errors: [{ path: '/query/cursor', message: 'is not a cursor this service issued; use nextCursor from a previous page' }],
};

describe('the order and event cursors', () => {
  test("when a page ends at sequence 1234, then the orders cursor is the spec's example o1.MTIzNA and decodes back to it", () => {
    expect(ORDER_CURSOR.encode('1234')).toBe('o1.MTIzNA');
    expect(ORDER_CURSOR.decode('o1.MTIzNA')).toBe('1234');
    expect(EVENT_CURSOR.encode('1234')).toBe('e1.MTIzNA');
    expect(EVENT_CURSOR.decode(EVENT_CURSOR.encode('9223372036854775807'))).toBe('9223372036854775807');
  });

  test('when a cursor of the other kind is sent, then it is refused as not ours', () => {
    expect(refusal(ORDER_CURSOR, EVENT_CURSOR.encode('5'))).toEqual(NOT_OURS);
    expect(refusal(EVENT_CURSOR, ORDER_CURSOR.encode('5'))).toEqual(NOT_OURS);
  });

  test("when the sequence is not one PostgreSQL's bigint can hold, then it is refused before it reaches the database", () => {
    for (const seq of ['9223372036854775808', '99999999999999999999', '0', '012', '-1', '1.5', '1e3', '', ' 1']) {
      expect(refusal(ORDER_CURSOR, `o1.${b64(seq)}`)).toEqual(NOT_OURS);
    }
  });

  test('when a cursor is garbage, then it is refused as not ours', () => {
    for (const cursor of ['', 'o1.', 'o1.!!!', 'MTIzNA', 'o2.MTIzNA', 'O1.MTIzNA']) {
      expect(refusal(ORDER_CURSOR, cursor)).toEqual(NOT_OURS);
    }
  });
});

describe('the payments cursor', () => {
  const last: [string, string] = ['2026-11-29 11:50:00.123456+00', '0b7c9a8e-3f0d-4c55-9a51-2f4a3e1d9b10'];

  test('when a page ends at a payment, then its time as PostgreSQL wrote it and its id go round trip', () => {
    const cursor = PAYMENT_CURSOR.encode(last);
    expect(cursor).toBe(`p1.${b64(JSON.stringify(last))}`);
    expect(PAYMENT_CURSOR.decode(cursor)).toEqual(last);
    expect(PAYMENT_CURSOR.decode(PAYMENT_CURSOR.encode(['2026-11-29 11:50:00+05:30', last[1]]))).toEqual([
      '2026-11-29 11:50:00+05:30',
      last[1],
    ]);
  });

  test('when the inside is not [a PostgreSQL timestamp, a UUID], then it is refused as not ours', () => {
    const insides = [
      'not json',
      JSON.stringify({ at: last[0], id: last[1] }),
      JSON.stringify([last[0]]),
      JSON.stringify([...last, 'more']),
      JSON.stringify(['2026-11-29T11:50:00Z', last[1]]),
      JSON.stringify([last[0], 'not-a-uuid']),
      JSON.stringify([last[0], 42]),
    ];
    for (const inside of insides) expect(refusal(PAYMENT_CURSOR, `p1.${b64(inside)}`)).toEqual(NOT_OURS);
  });

  test('when an orders cursor or another prefix is sent, then it is refused as not ours', () => {
    expect(refusal(PAYMENT_CURSOR, ORDER_CURSOR.encode('5'))).toEqual(NOT_OURS);
    expect(refusal(PAYMENT_CURSOR, `x1.${b64(JSON.stringify(last))}`)).toEqual(NOT_OURS);
  });
});
