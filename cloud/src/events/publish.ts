/**
 * Per-user events across API processes: a producer (API, worker, billing webhook) calls
 * `publishEvent` with its connection or transaction; Postgres NOTIFY delivers it to every API
 * process's EventHub on commit (never for a rolled-back transaction), which fans it out to that
 * user's sockets.
 */
import type { CloudEvent } from '@atelier/common';
import type { Queryable } from '../db/pool.ts';

export const EVENTS_CHANNEL = 'atelier_events';
/** Unit: bytes (UTF-8). NOTIFY payloads are limited to 8000 bytes. */
const MAX_PAYLOAD = 7900;

export interface EventEnvelope {
  u: string;
  e: CloudEvent;
}

export async function publishEvent(q: Queryable, userId: string, event: CloudEvent): Promise<void> {
  let payload = JSON.stringify({ u: userId, e: event } satisfies EventEnvelope);
  // The limit is in bytes: 2,000 + 2,000 CJK characters are ~12,000 bytes in 4,000 characters.
  if (Buffer.byteLength(payload) > MAX_PAYLOAD && event.type === 'generation.queued') {
    // Too large to carry the whole generation (long prompts): clients re-read it by id.
    payload = JSON.stringify({
      u: userId,
      e: {
        ...event,
        generation: { ...event.generation, params: { ...event.generation.params, prompt: '', negativePrompt: '' } },
      },
    });
  }
  if (Buffer.byteLength(payload) > MAX_PAYLOAD) throw new Error(`event ${event.type} too large for NOTIFY`);
  await q.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, payload]);
}

/** Several events in one round trip (delivered in order, on commit). */
export async function publishEvents(q: Queryable, userId: string, events: CloudEvent[]): Promise<void> {
  const payloads = events.map((e) => JSON.stringify({ u: userId, e } satisfies EventEnvelope));
  if (payloads.some((p) => Buffer.byteLength(p) > MAX_PAYLOAD)) {
    for (const e of events) await publishEvent(q, userId, e);
    return;
  }
  await q.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n', [
    EVENTS_CHANNEL,
    payloads,
  ]);
}
