-- The audit log: every state change of a network appends a record (who, what, when, why,
-- before and after), from triggers, so no code path can forget one. Records are inserted
-- unsealed, in the writer's own transaction; a background sealer (mc_audit_seal) then chains
-- them per network: seq, prev_hash, hash = sha256(prev_hash || payload). Sealing off the write
-- path keeps the chain from serialising trades; a record is sealed within a sweep interval.
--
-- The one function behind every *_audit trigger. Its arguments (TG_ARGV) name the columns kept
-- out of the record (secrets, hashes, bookkeeping). It builds the row's JSON once and reads the
-- actor and the reason inline rather than through mc_actor() and mc_reason(): two PL/pgSQL calls
-- per record saved, on the path of every trade.
CREATE FUNCTION mc_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb;
    v_after jsonb;
    v_row jsonb;
    v_subject text := rtrim(TG_TABLE_NAME, 's');
    v_action text;
BEGIN
    -- The row as JSON, built once: it gives the record's after (or before) and its ids.
    IF TG_OP = 'DELETE' THEN v_row := to_jsonb(OLD); ELSE v_row := to_jsonb(NEW); END IF;
    IF TG_OP = 'UPDATE' THEN v_before := to_jsonb(OLD) - TG_ARGV;
    ELSIF TG_OP = 'DELETE' THEN v_before := v_row - TG_ARGV;
    END IF;
    IF TG_OP <> 'DELETE' THEN v_after := v_row - TG_ARGV; END IF;
    IF TG_OP = 'UPDATE' THEN
        -- Keep only what changed.
        SELECT jsonb_object_agg(n.key, n.value) INTO v_after
        FROM jsonb_each(v_after) n WHERE v_before -> n.key IS DISTINCT FROM n.value;
        IF v_after IS NULL THEN
            RETURN NULL;
        END IF;
        SELECT jsonb_object_agg(o.key, o.value) INTO v_before
        FROM jsonb_each(v_before) o WHERE v_after ? o.key;
    END IF;
    IF TG_TABLE_NAME <> 'networks' AND v_row ->> 'network_id' IS NULL THEN
        RETURN NULL;  -- a platform key: deployment-wide, outside every network's log
    END IF;
    v_action := v_subject || '.' || CASE TG_OP WHEN 'INSERT' THEN 'created'
                                              WHEN 'DELETE' THEN 'deleted'
                                              ELSE 'updated' END;
    IF TG_TABLE_NAME IN ('trades', 'payment_requests') AND TG_OP = 'UPDATE' THEN
        v_action := v_subject || '.' || (v_row ->> 'status');
    ELSIF TG_TABLE_NAME = 'accounts' AND TG_OP = 'UPDATE' AND v_after ? 'status' THEN
        v_action := 'account.' || (v_row ->> 'status');
    ELSIF TG_TABLE_NAME = 'accounts' AND TG_OP = 'UPDATE' THEN
        v_action := 'account.limits_changed';
    ELSIF TG_TABLE_NAME = 'api_keys' AND TG_OP = 'UPDATE' THEN
        v_action := 'api_key.revoked';
    END IF;
    INSERT INTO audit_log (network_id, occurred_at, actor, action, subject_type, subject_id,
                           reason, before, after)
    VALUES (CASE WHEN TG_TABLE_NAME = 'networks' THEN (v_row ->> 'id')::uuid
                 ELSE (v_row ->> 'network_id')::uuid END,
            clock_timestamp(),
            coalesce(nullif(current_setting('mutualcredit.actor', true), ''),
                     'sql:' || session_user),
            v_action, v_subject,
            coalesce(v_row ->> 'id', (v_row ->> 'payer_id') || '/' || (v_row ->> 'payee_id')),
            nullif(current_setting('mutualcredit.reason', true), ''), v_before, v_after);
    RETURN NULL;
END $$;
