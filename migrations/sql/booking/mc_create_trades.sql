-- mc_create_trades: many trades of one network in one call (the batched write path).
--
-- Takes every key's advisory lock (sorted), then every account the batch touches (sorted by
-- id), then books each trade with mc_create_trade, whose own locks are already held: so the
-- global lock order (keys, then accounts by id) holds for batches too, and a busy account is
-- locked once per batch instead of once per trade. Each trade keeps its own outcome: one
-- refused trade never fails its batch-mates. Results come back in the order given (idx).
CREATE FUNCTION mc_create_trades(
    p_network_id uuid, p_keys text[], p_request_hashes bytea[], p_payers text[],
    p_payees text[], p_amounts bigint[], p_pendings boolean[], p_expires_at timestamptz[],
    p_descriptions text[], p_external_refs text[], p_metadata jsonb[], p_actors text[])
RETURNS TABLE (idx integer, outcome text, problem_code text, problem_detail jsonb, trade jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    v_rules fee_rules[];
    v_treasuries uuid[];
BEGIN
    PERFORM pg_advisory_xact_lock(lock_id)
    FROM (SELECT DISTINCT hashtextextended(p_network_id::text || '/' || k, 0) AS lock_id
          FROM unnest(p_keys) AS k ORDER BY 1) AS keys;
    -- The treasuries of the levy rules in force are locked with the parties (in id order).
    v_rules := mc_levy_rules(p_network_id, clock_timestamp());
    IF v_rules IS NULL THEN
        PERFORM 1 FROM accounts a
        WHERE a.network_id = p_network_id AND a.code = ANY (p_payers || p_payees)
        ORDER BY a.id FOR UPDATE;
    ELSE
        v_treasuries := ARRAY(SELECT DISTINCT r.treasury_id FROM unnest(v_rules) r);
        PERFORM 1 FROM accounts a
        WHERE a.network_id = p_network_id
          AND (a.code = ANY (p_payers || p_payees) OR a.id = ANY (v_treasuries))
        ORDER BY a.id FOR UPDATE;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        RETURN QUERY
        SELECT i, r.outcome, r.problem_code, r.problem_detail, r.trade
        FROM mc_create_trade(p_network_id, p_keys[i], p_request_hashes[i], p_payers[i],
                             p_payees[i], p_amounts[i], p_pendings[i], p_expires_at[i],
                             p_descriptions[i], p_external_refs[i], p_metadata[i],
                             p_actors[i]) AS r;
    END LOOP;
END $$;
