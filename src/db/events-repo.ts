import type { Queryable } from './database.js';

// The order timeline. Events are written by the statements that make the changes they describe
// (orders-repo, claims-repo, payments-repo), through eventsFrom() below, so a change and its event
// commit together or not at all. `seq` orders them: changes of one order are serialised by its row
// lock, so one order's events are numbered in the order they happened.

/** What happened, as the domain names it; `data` never holds a card token or a staff token. */
export interface NewEvent {
  type: string;
  data: Record<string, unknown>;
}

/** Who made the change, and the HTTP request that caused it. */
export interface Who {
  kind: 'customer' | 'staff' | 'cli' | 'system';
  name?: string;
  requestId?: string;
}

export interface EventRecord {
  seq: string;
  at: Date;
  type: string;
  actor: { kind: Who['kind']; name?: string };
  requestId: string | null;
  data: Record<string, unknown>;
}

/** The parameters eventsFrom() reads: the events and who made them, as JSON. */
export const eventParams = (events: NewEvent[], who: Who) => [
  JSON.stringify(events),
  JSON.stringify({ kind: who.kind, name: who.name ?? null, request_id: who.requestId ?? null }),
];

/**
 * The SELECT that turns the JSON parameters `$events` and `$who` into event rows for the order
 * `orderId` (an SQL expression), in the order given. `from`/`where` let a statement guard it, so no
 * event is written unless its change is.
 */
export const eventsFrom = (orderId: string, events: string, who: string, guard = 'true') =>
  `select ${orderId}, e.type, (${who}::jsonb)->>'kind', (${who}::jsonb)->>'name', (${who}::jsonb)->>'request_id', e.data
   from rows from (jsonb_to_recordset(${events}::jsonb) as (type text, data jsonb)) with ordinality as e(type, data, n)
   where ${guard} order by e.n`;

/** The actor columns' values from the JSON parameter `$who`, for statements that build their own event rows. */
export const whoColumns = (who: string) => `(${who}::jsonb)->>'kind', (${who}::jsonb)->>'name', (${who}::jsonb)->>'request_id'`;

export const EVENT_COLUMNS = 'order_id, type, actor_kind, actor_name, request_id, data';

interface EventRow {
  seq: string;
  at: Date;
  type: string;
  actor_kind: Who['kind'];
  actor_name: string | null;
  request_id: string | null;
  data: Record<string, unknown>;
}

export class EventsRepository {
  constructor(private readonly db: Queryable) {}

  /** Appends events that go with no change of the order's row (a fulfillment item's outcome). */
  async append(orderId: string, who: Who, events: NewEvent[]): Promise<void> {
    await this.db.query(`insert into order_events (${EVENT_COLUMNS}) ${eventsFrom('$1', '$2', '$3')}`, [
      orderId,
      ...eventParams(events, who),
    ]);
  }

  /** The order's events after `afterSeq`, oldest first; `more` when another page follows. */
  async page(orderId: string, afterSeq: string | undefined, limit: number): Promise<{ events: EventRecord[]; more: boolean }> {
    const rows = await this.db.query<EventRow>(
      `select seq, at, type, actor_kind, actor_name, request_id, data from order_events
       where order_id = $1 and seq > $2 order by seq limit $3`,
      [orderId, afterSeq ?? '0', limit + 1],
    );
    return {
      more: rows.length > limit,
      events: rows.slice(0, limit).map((r) => ({
        seq: r.seq,
        at: r.at,
        type: r.type,
        actor: r.actor_name === null ? { kind: r.actor_kind } : { kind: r.actor_kind, name: r.actor_name },
        requestId: r.request_id,
        data: r.data,
      })),
    };
  }
}
