/**
 * SQL of the webhooks area. User functions take the user id first and run inside `withUserTx`
 * (RLS); the delivery worker's functions run on the system pool.
 */
import type { WebhookDelivery, WebhookEndpoint, WebhookEventType } from '@atelier/common';
import type { Queryable } from '../db/pool.ts';

export interface EndpointRow {
  id: string;
  user_id: string;
  url: string;
  events: string[];
  secret_encrypted: string;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface DeliveryRow {
  id: string;
  endpoint_id: string;
  user_id: string;
  event_id: string;
  event_type: string;
  payload: string;
  status: WebhookDelivery['status'];
  attempts: number;
  last_response_code: number | null;
  last_latency_ms: number | null;
  last_error: string | null;
  next_attempt_at: Date | null;
  replay_of: string | null;
  created_at: Date;
  updated_at: Date;
}

export const toEndpoint = (r: EndpointRow): WebhookEndpoint => ({
  id: r.id,
  url: r.url,
  events: r.events as WebhookEventType[],
  enabled: r.enabled,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export const toDelivery = (r: DeliveryRow): WebhookDelivery => ({
  id: r.id,
  endpointId: r.endpoint_id,
  eventId: r.event_id,
  eventType: r.event_type as WebhookDelivery['eventType'],
  status: r.status,
  attempts: r.attempts,
  responseCode: r.last_response_code,
  latencyMs: r.last_latency_ms,
  error: r.last_error,
  nextAttemptAt: r.next_attempt_at?.toISOString() ?? null,
  replayOf: r.replay_of,
  payload: r.payload,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

// ── endpoints (user) ─────────────────────────────────────────────────────────────────────────

export async function countEndpoints(tx: Queryable, userId: string): Promise<number> {
  const r = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_endpoints WHERE user_id = $1', [
    userId,
  ]);
  return r.rows[0]!.n;
}

export async function insertEndpoint(
  tx: Queryable,
  userId: string,
  e: { id: string; url: string; events: string[]; sealed: string },
): Promise<EndpointRow> {
  const r = await tx.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (id, user_id, url, events, secret_encrypted) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
    [e.id, userId, e.url, e.events, e.sealed],
  );
  return r.rows[0]!;
}

export async function listEndpoints(tx: Queryable, userId: string): Promise<EndpointRow[]> {
  const r = await tx.query<EndpointRow>('SELECT * FROM webhook_endpoints WHERE user_id = $1 ORDER BY id', [userId]);
  return r.rows;
}

export async function getEndpoint(
  tx: Queryable,
  userId: string,
  id: string,
  lock = false,
): Promise<EndpointRow | null> {
  const r = await tx.query<EndpointRow>(
    `SELECT * FROM webhook_endpoints WHERE user_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`,
    [userId, id],
  );
  return r.rows[0] ?? null;
}

export async function updateEndpoint(
  tx: Queryable,
  userId: string,
  id: string,
  patch: { url?: string | undefined; events?: string[] | undefined; enabled?: boolean | undefined; sealed?: string },
): Promise<EndpointRow | null> {
  const r = await tx.query<EndpointRow>(
    `UPDATE webhook_endpoints SET url = COALESCE($3, url), events = COALESCE($4, events),
            enabled = COALESCE($5, enabled), secret_encrypted = COALESCE($6, secret_encrypted), updated_at = now()
      WHERE user_id = $1 AND id = $2 RETURNING *`,
    [userId, id, patch.url ?? null, patch.events ?? null, patch.enabled ?? null, patch.sealed ?? null],
  );
  return r.rows[0] ?? null;
}

export async function deleteEndpoint(tx: Queryable, userId: string, id: string): Promise<boolean> {
  const r = await tx.query('DELETE FROM webhook_endpoints WHERE user_id = $1 AND id = $2', [userId, id]);
  return (r.rowCount ?? 0) > 0;
}

// ── deliveries ───────────────────────────────────────────────────────────────────────────────

/** Enabled endpoints of a user subscribed to an event type (in the caller's transaction). */
export async function subscribedEndpoints(q: Queryable, userId: string, type: string): Promise<string[]> {
  const r = await q.query<{ id: string }>(
    'SELECT id FROM webhook_endpoints WHERE user_id = $1 AND enabled AND $2 = ANY(events) ORDER BY id',
    [userId, type],
  );
  return r.rows.map((x) => x.id);
}

export async function insertDeliveries(
  q: Queryable,
  userId: string,
  rows: { id: string; endpointId: string; replayOf?: string | null }[],
  event: { id: string; type: string; payload: string },
): Promise<void> {
  await q.query(
    `INSERT INTO webhook_deliveries (id, endpoint_id, user_id, event_id, event_type, payload, replay_of)
     SELECT d.id, d.endpoint_id, $3, $4, $5, $6, d.replay_of
       FROM unnest($1::text[], $2::text[], $7::text[]) AS d(id, endpoint_id, replay_of)`,
    [
      rows.map((r) => r.id),
      rows.map((r) => r.endpointId),
      userId,
      event.id,
      event.type,
      event.payload,
      rows.map((r) => r.replayOf ?? null),
    ],
  );
}

export async function listDeliveries(
  tx: Queryable,
  userId: string,
  endpointId: string,
  page: { cursor?: string | undefined; limit: number },
): Promise<DeliveryRow[]> {
  const r = await tx.query<DeliveryRow>(
    `SELECT * FROM webhook_deliveries WHERE user_id = $1 AND endpoint_id = $2 AND ($3::text IS NULL OR id < $3)
      ORDER BY id DESC LIMIT $4`,
    [userId, endpointId, page.cursor ?? null, page.limit],
  );
  return r.rows;
}

export async function getDelivery(
  tx: Queryable,
  userId: string,
  endpointId: string,
  id: string,
): Promise<DeliveryRow | null> {
  const r = await tx.query<DeliveryRow>(
    'SELECT * FROM webhook_deliveries WHERE user_id = $1 AND endpoint_id = $2 AND id = $3',
    [userId, endpointId, id],
  );
  return r.rows[0] ?? null;
}

/** Records the first crossing of usage thresholds this period; returns the ones newly crossed. */
export async function claimUsageNotices(
  q: Queryable,
  userId: string,
  periodStart: Date,
  thresholds: number[],
): Promise<number[]> {
  if (thresholds.length === 0) return [];
  const r = await q.query<{ threshold: number }>(
    `INSERT INTO webhook_usage_notices (user_id, period_start, threshold)
     SELECT $1, $2, t FROM unnest($3::int[]) AS t
     ON CONFLICT DO NOTHING RETURNING threshold`,
    [userId, periodStart, thresholds],
  );
  return r.rows.map((x) => x.threshold).sort((a, b) => a - b);
}

// ── worker (system pool) ─────────────────────────────────────────────────────────────────────

export interface DeliveryWork extends DeliveryRow {
  url: string;
  enabled: boolean;
  secret_encrypted: string;
}

export async function loadDeliveryWork(q: Queryable, deliveryId: string): Promise<DeliveryWork | null> {
  const r = await q.query<DeliveryWork>(
    `SELECT d.*, e.url, e.enabled, e.secret_encrypted
       FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1`,
    [deliveryId],
  );
  return r.rows[0] ?? null;
}

export async function recordAttempt(
  q: Queryable,
  id: string,
  a: {
    status: DeliveryRow['status'];
    responseCode: number | null;
    latencyMs: number | null;
    error: string | null;
    nextAttemptAt: Date | null;
  },
): Promise<void> {
  await q.query(
    `UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_response_code = $3,
            last_latency_ms = $4, last_error = $5, next_attempt_at = $6, updated_at = now()
      WHERE id = $1`,
    [id, a.status, a.responseCode, a.latencyMs, a.error?.slice(0, 500) ?? null, a.nextAttemptAt],
  );
}

/** A delivery that will not be attempted (endpoint disabled or deleted meanwhile). */
export async function abandonDelivery(q: Queryable, id: string, reason: string): Promise<void> {
  await q.query(
    `UPDATE webhook_deliveries SET status = 'failed', last_error = $2, next_attempt_at = NULL, updated_at = now()
      WHERE id = $1 AND status IN ('pending', 'retrying')`,
    [id, reason],
  );
}

export async function resealSecret(q: Queryable, endpointId: string, sealed: string): Promise<void> {
  await q.query('UPDATE webhook_endpoints SET secret_encrypted = $2 WHERE id = $1', [endpointId, sealed]);
}
