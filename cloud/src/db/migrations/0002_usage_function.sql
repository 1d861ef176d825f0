-- GET /v1/me in one round trip with a cached plan: sets the transaction's user (so RLS applies
-- exactly as in withUserTx) and returns the email and the usage of the period containing p_at.
-- SECURITY INVOKER (the default): the caller's role and policies apply.
CREATE FUNCTION atelier_user_usage(p_user text, p_at timestamptz, p_free int, p_pro int)
RETURNS TABLE (email text, used int, "limit" int, period_start timestamptz, period_end timestamptz, plan text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM set_config('app.user_id', p_user, true);
  RETURN QUERY
  WITH ctx AS (SELECT COALESCE(p_at, now()) AS at),
  p AS (
    SELECT ep.plan AS eplan,
      (ep.plan = 'pro' AND ep.current_period_start IS NOT NULL AND ep.current_period_start <= ctx.at
        AND ep.current_period_end > ctx.at) AS billing_period,
      ep.current_period_start AS cps, ep.current_period_end AS cpe, ctx.at,
      CASE WHEN ep.plan = 'pro' THEN p_pro ELSE p_free END AS lim
    FROM effective_plans ep, ctx WHERE ep.user_id = p_user),
  period AS (
    SELECT eplan, lim,
      CASE WHEN billing_period THEN cps ELSE date_trunc('month', p.at, 'UTC') END AS ps,
      CASE WHEN billing_period THEN cpe ELSE date_trunc('month', p.at, 'UTC') + interval '1 month' END AS pe
    FROM p)
  SELECT (SELECT u.email FROM users u WHERE u.id = p_user), COALESCE(up.used, 0), period.lim, period.ps, period.pe, period.eplan
  FROM period LEFT JOIN usage_periods up ON up.user_id = p_user AND up.period_start = period.ps;
END $$;
REVOKE ALL ON FUNCTION atelier_user_usage(text, timestamptz, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION atelier_user_usage(text, timestamptz, int, int) TO atelier_app, atelier_system;
