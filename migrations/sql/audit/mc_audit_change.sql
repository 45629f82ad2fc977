-- The audit log: every state change of a network appends a record (who, what, when, why,
-- before and after), from triggers, so no code path can forget one. Records are inserted
-- unsealed, in the writer's own transaction; a background sealer (mc_audit_seal) then chains
-- them per network: seq, prev_hash, hash = sha256(prev_hash || payload). Sealing off the write
-- path keeps the chain from serialising trades; a record is sealed within a sweep interval.
--
-- The one function behind every *_audit trigger. Its arguments (TG_ARGV) name the columns kept
-- out of the record (secrets, hashes, bookkeeping); a trigger with none keeps every column.
-- PL/pgSQL gives a trigger without arguments a NULL TG_ARGV, and `jsonb - NULL` is NULL: read
-- as it came, that lost the before and after of every record of such a trigger, and every
-- update of its table (nothing seemed to change), so the list is made empty first.
--
-- A record: `<subject>.created`, `.deleted`, or for an update: `.<new status>` when the status
-- changed (trade.posted, account.suspended, payment_request.accepted, link.active, ...),
-- `account.limits_changed`, `api_key.revoked`, else `.updated`; `before` and `after` hold only
-- the fields that changed (an update that changes none of the recorded fields has no record).
-- It joins the log of the row's network (for a link's own rows, the link's network); a platform
-- key belongs to no network and has none. Its subject is the row's id, or the columns of its
-- primary key joined by '/' (a payer and a payee, a link and a key id).
--
-- It builds the row's JSON once and reads the actor and the reason inline rather than through
-- mc_actor() and mc_reason(): two PL/pgSQL calls per record saved, on the path of every trade.
CREATE FUNCTION mc_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_excluded text[] := coalesce(TG_ARGV, ARRAY[]::text[]);
    v_before jsonb;
    v_after jsonb;
    v_row jsonb;
    v_subject text := rtrim(TG_TABLE_NAME, 's');
    v_subject_id text;
    v_action text;
    v_network_id uuid;
BEGIN
    -- The row as JSON, built once: it gives the record's after (or before) and its ids.
    IF TG_OP = 'DELETE' THEN v_row := to_jsonb(OLD); ELSE v_row := to_jsonb(NEW); END IF;
    IF TG_OP = 'UPDATE' THEN v_before := to_jsonb(OLD) - v_excluded;
    ELSIF TG_OP = 'DELETE' THEN v_before := v_row - v_excluded;
    END IF;
    IF TG_OP <> 'DELETE' THEN v_after := v_row - v_excluded; END IF;
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

    IF TG_TABLE_NAME = 'networks' THEN
        v_network_id := (v_row ->> 'id')::uuid;
    ELSIF v_row ? 'network_id' THEN
        v_network_id := (v_row ->> 'network_id')::uuid;
        IF v_network_id IS NULL THEN
            RETURN NULL;  -- a platform key: deployment-wide, outside every network's log
        END IF;
    ELSIF v_row ? 'link_id' THEN
        SELECT l.network_id INTO STRICT v_network_id
        FROM links l WHERE l.id = (v_row ->> 'link_id')::uuid;
    ELSE
        RAISE EXCEPTION 'mc_audit_change: % has no network_id or link_id to file a record under',
                        TG_TABLE_NAME;
    END IF;

    v_subject_id := v_row ->> 'id';
    IF v_subject_id IS NULL THEN
        SELECT string_agg(v_row ->> a.attname, '/' ORDER BY k.ord) INTO v_subject_id
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = TG_RELID AND i.indisprimary;
    END IF;

    IF TG_OP = 'INSERT' THEN
        v_action := v_subject || '.created';
    ELSIF TG_OP = 'DELETE' THEN
        v_action := v_subject || '.deleted';
    ELSIF v_after ? 'status' THEN
        v_action := v_subject || '.' || (v_after ->> 'status');
    ELSIF TG_TABLE_NAME = 'accounts'
          AND v_after ?| ARRAY['credit_limit', 'balance_max', 'revert_at',
                               'revert_credit_limit', 'revert_balance_max'] THEN
        v_action := 'account.limits_changed';
    ELSIF TG_TABLE_NAME = 'api_keys' AND v_after ->> 'revoked_at' IS NOT NULL THEN
        v_action := 'api_key.revoked';
    ELSE
        v_action := v_subject || '.updated';
    END IF;

    INSERT INTO audit_log (network_id, occurred_at, actor, action, subject_type, subject_id,
                           reason, before, after)
    VALUES (v_network_id,
            clock_timestamp(),
            coalesce(nullif(current_setting('mutualcredit.actor', true), ''),
                     'sql:' || session_user),
            v_action, v_subject, v_subject_id,
            nullif(current_setting('mutualcredit.reason', true), ''), v_before, v_after);
    RETURN NULL;
END $$;
