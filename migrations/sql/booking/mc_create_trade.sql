-- mc_create_trade: the write path of a trade, in one call.
--
-- outcome: 'created' | 'replayed' (same key, same request: the first answer, a trade or, with a
-- problem_code, the refusal recorded under the key) | 'rejected' (refused now; the refusal is
-- recorded under the key) | 'invalid' (the request cannot be booked as sent: a hold that would
-- expire before it is booked; nothing is recorded) | 'conflict' (same key, different request).
-- Refusals are returned, not raised, so the caller's transaction commits the record of them.
--
-- The key is looked up before anything that depends on the time or on state that can change:
-- a retry gets the first answer, whatever happened since (an expiry passed, a limit changed, an
-- account was suspended).
--
-- Operators' variants use the optional parameters: p_kind ('reversal', 'write_off', 'request'),
-- p_reverses_trade_id (a reversal's original; one reversal per trade), p_override (book even
-- beyond limits; needs p_reason, and is recorded on the trade), p_remember_refusal (false when
-- the caller keeps exactly-once by other means, as accepting a payment request does).
--
-- The accounts of a federation link (kinds 'link' and 'settlement') stand for another network:
-- only the protocol's own bookings (p_kind 'federation' or 'settlement') name them, and those
-- set mutualcredit.federation around their writes, which the trigger accounts_protocol_only
-- asks of every writer of such an account. Any other trade naming one is refused
-- (account_reserved), recorded under its key like every refusal.
--
-- A new trade is answered from the row it inserted (the same JSON as mc_trade_json, with no
-- query), and a direct trade is booked inline (mc_book's statement with no hold to release): one
-- query and one PL/pgSQL call fewer on the path of every trade.
--
-- Levies: a direct trade of kind 'transfer' or 'request' pays the levy rules in force
-- (mc_levy_rules' query, inline) in the same transaction, and answers them as its `fees`. The
-- rules' treasuries are locked with the two parties, in id order, before anything is checked;
-- the levies are planned after the trade's own checks (mc_plan_levies: a levy its rule refuses
-- past a limit refuses the trade with that limit's code, recorded under its key like every
-- refusal) and booked after the trade (mc_book_levies). A hold pays its levies when it is
-- posted (mc_resolve_trade).
CREATE FUNCTION mc_create_trade(
    p_network_id uuid, p_key text, p_request_hash bytea,
    p_payer text, p_payee text, p_amount bigint,
    p_pending boolean, p_expires_at timestamptz,
    p_description text, p_external_ref text, p_metadata jsonb,
    p_actor text,
    p_kind text DEFAULT 'transfer',
    p_reverses_trade_id uuid DEFAULT NULL,
    p_reason text DEFAULT NULL,
    p_override boolean DEFAULT false,
    p_remember_refusal boolean DEFAULT true)
RETURNS TABLE (outcome text, problem_code text, problem_detail jsonb, trade jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_existing_id uuid;
    v_existing_hash bytea;
    v_rejection trade_rejections%ROWTYPE;
    v_account accounts%ROWTYPE;
    v_payer accounts%ROWTYPE;
    v_payee accounts%ROWTYPE;
    v_code text;
    v_detail jsonb;
    v_retried boolean := false;
    v_now timestamptz;
    v_trade_id uuid;
    v_trade trades%ROWTYPE;
    v_rules fee_rules[];
    v_treasuries uuid[];
    v_levies jsonb;
    v_fees jsonb := '[]'::jsonb;
BEGIN
    PERFORM set_config('mutualcredit.actor', p_actor, true),
            set_config('mutualcredit.reason', coalesce(p_reason, ''), true);
    -- Same-key requests run one after another, so exactly one outcome is ever recorded per key.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_network_id::text || '/' || p_key, 0));

    SELECT t.id, t.request_hash INTO v_existing_id, v_existing_hash
    FROM trades t WHERE t.network_id = p_network_id AND t.key = p_key;
    IF FOUND THEN
        IF v_existing_hash = p_request_hash THEN
            RETURN QUERY SELECT 'replayed'::text, NULL::text, NULL::jsonb, mc_trade_json(v_existing_id);
        ELSE
            RETURN QUERY SELECT 'conflict'::text, 'idempotency_conflict'::text,
                                jsonb_build_object('key', p_key), NULL::jsonb;
        END IF;
        RETURN;
    END IF;

    SELECT * INTO v_rejection FROM trade_rejections r
    WHERE r.network_id = p_network_id AND r.key = p_key;
    IF FOUND THEN
        IF v_rejection.request_hash = p_request_hash THEN
            RETURN QUERY SELECT 'replayed'::text, v_rejection.code, v_rejection.detail, NULL::jsonb;
        ELSE
            RETURN QUERY SELECT 'conflict'::text, 'idempotency_conflict'::text,
                                jsonb_build_object('key', p_key), NULL::jsonb;
        END IF;
        RETURN;
    END IF;

    -- A hold ends after it is booked. Checked only now that the key is known to be new.
    IF p_pending AND p_expires_at <= clock_timestamp() THEN
        RETURN QUERY SELECT 'invalid'::text, 'validation_error'::text,
                            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                                'location', jsonb_build_array('body', 'expires_at'),
                                'message', 'must be in the future',
                                'type', 'value_error'))),
                            NULL::jsonb;
        RETURN;
    END IF;

    IF p_kind IN ('transfer', 'request') AND NOT p_pending THEN
        -- mc_levy_rules, inline: one function call fewer on the path of every trade. The
        -- treasuries are an array, so that the lock below is two index probes (a BitmapOr)
        -- rather than a scan of the network's accounts.
        SELECT array_agg(r ORDER BY r.code), array_agg(DISTINCT r.treasury_id)
        INTO v_rules, v_treasuries FROM fee_rules r
        WHERE r.network_id = p_network_id AND r.kind = 'levy' AND r.starts_at <= clock_timestamp()
          AND (r.ends_at IS NULL OR r.ends_at > clock_timestamp());
        IF v_rules IS NOT NULL THEN
            PERFORM 1 FROM accounts a
            WHERE a.network_id = p_network_id
              AND (a.code IN (p_payer, p_payee) OR a.id = ANY (v_treasuries))
            ORDER BY a.id
            FOR UPDATE;
        END IF;
    END IF;

    LOOP
        -- Lock both accounts in id order: every writer does, so writers never deadlock.
        v_payer := NULL;
        v_payee := NULL;
        FOR v_account IN
            SELECT * FROM accounts a
            WHERE a.network_id = p_network_id AND a.code IN (p_payer, p_payee)
            ORDER BY a.id
            FOR UPDATE
        LOOP
            IF v_account.code = p_payer THEN v_payer := v_account; ELSE v_payee := v_account; END IF;
        END LOOP;

        v_code := NULL;
        IF v_payer.id IS NULL THEN
            v_code := 'account_not_found'; v_detail := jsonb_build_object('account', p_payer);
        ELSIF v_payee.id IS NULL THEN
            v_code := 'account_not_found'; v_detail := jsonb_build_object('account', p_payee);
        ELSIF p_kind NOT IN ('federation', 'settlement')
              AND v_payer.kind IN ('link', 'settlement') THEN
            v_code := 'account_reserved'; v_detail := jsonb_build_object('account', p_payer);
        ELSIF p_kind NOT IN ('federation', 'settlement')
              AND v_payee.kind IN ('link', 'settlement') THEN
            v_code := 'account_reserved'; v_detail := jsonb_build_object('account', p_payee);
        ELSIF v_payer.status <> 'active' THEN
            v_code := 'account_' || v_payer.status; v_detail := jsonb_build_object('account', p_payer);
        ELSIF v_payee.status <> 'active' THEN
            v_code := 'account_' || v_payee.status; v_detail := jsonb_build_object('account', p_payee);
        ELSIF p_reverses_trade_id IS NOT NULL
              AND EXISTS (SELECT 1 FROM trades t WHERE t.reverses_trade_id = p_reverses_trade_id) THEN
            -- Checked under the accounts' locks, which every reversal of this trade takes too.
            v_code := 'trade_already_reversed';
            v_detail := jsonb_build_object('trade_id', p_reverses_trade_id);
        ELSIF NOT p_override
              AND v_payer.balance - v_payer.pending_debits - p_amount < -v_payer.credit_limit THEN
            v_code := 'credit_limit_exceeded';
            v_detail := jsonb_build_object(
                'account', p_payer,
                'available', v_payer.balance - v_payer.pending_debits + v_payer.credit_limit,
                'shortfall', p_amount - (v_payer.balance - v_payer.pending_debits + v_payer.credit_limit));
        ELSIF NOT p_override AND v_payee.balance_max IS NOT NULL
              AND v_payee.balance + v_payee.pending_credits + p_amount > v_payee.balance_max THEN
            v_code := 'balance_max_exceeded';
            v_detail := jsonb_build_object(
                'account', p_payee,
                'headroom', v_payee.balance_max - v_payee.balance - v_payee.pending_credits,
                'excess', p_amount - (v_payee.balance_max - v_payee.balance - v_payee.pending_credits));
        END IF;

        -- A limit refusal may be caused by holds that are overdue but not yet swept: expire them
        -- (expiry is enforced at access time) and check once more.
        EXIT WHEN v_code IS NULL OR v_retried
              OR v_code NOT IN ('credit_limit_exceeded', 'balance_max_exceeded');
        v_retried := true;
        EXIT WHEN mc_expire_holds_of(CASE WHEN v_code = 'credit_limit_exceeded'
                                          THEN v_payer.id ELSE v_payee.id END) = 0;
    END LOOP;

    -- The levies, planned now that the trade passed its own checks: a levy its rule refuses
    -- past a limit refuses the trade, like any refusal.
    IF v_code IS NULL AND v_rules IS NOT NULL THEN
        SELECT l.code, l.detail, l.levies INTO v_code, v_detail, v_levies
        FROM mc_plan_levies(v_payer, v_payee, p_amount, 0, v_rules) l;
    END IF;

    IF v_code IS NOT NULL THEN
        IF p_remember_refusal THEN
            INSERT INTO trade_rejections (network_id, key, request_hash, code, detail, created_at)
            VALUES (p_network_id, p_key, p_request_hash, v_code, v_detail, clock_timestamp());
        END IF;
        RETURN QUERY SELECT 'rejected'::text, v_code, v_detail, NULL::jsonb;
        RETURN;
    END IF;

    -- The clock is read after the locks: per account, booked_at follows the order of the entries.
    v_now := clock_timestamp();
    INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount, status,
                        posted_amount, description, external_ref, metadata, reverses_trade_id,
                        kind, reason, limit_override, created_by, expires_at, created_at,
                        resolved_at)
    VALUES (p_network_id, p_key, p_request_hash, v_payer.id, v_payee.id, p_amount,
            CASE WHEN p_pending THEN 'pending' ELSE 'posted' END,
            CASE WHEN p_pending THEN NULL ELSE p_amount END,
            p_description, p_external_ref, p_metadata, p_reverses_trade_id,
            p_kind, p_reason, p_override, p_actor,
            CASE WHEN p_pending THEN p_expires_at END,
            v_now, CASE WHEN p_pending THEN NULL ELSE v_now END)
    RETURNING * INTO v_trade;
    v_trade_id := v_trade.id;

    IF p_override THEN
        PERFORM set_config('mutualcredit.limit_override', 'on', true);
    END IF;
    IF p_kind IN ('federation', 'settlement') THEN
        PERFORM set_config('mutualcredit.federation', 'on', true);
    END IF;
    IF p_pending THEN
        UPDATE accounts a
        SET pending_debits = a.pending_debits + CASE WHEN a.id = v_payer.id THEN p_amount ELSE 0 END,
            pending_credits = a.pending_credits + CASE WHEN a.id = v_payee.id THEN p_amount ELSE 0 END
        WHERE a.id IN (v_payer.id, v_payee.id);
    ELSE
        WITH moved AS (
            UPDATE accounts a
            SET balance = a.balance
                          + CASE WHEN a.id = v_payer.id THEN -p_amount ELSE p_amount END
            WHERE a.id IN (v_payer.id, v_payee.id)
            RETURNING a.id, a.balance
        )
        INSERT INTO entries (network_id, trade_id, account_id, amount, balance_after,
                             booked_at)
        SELECT p_network_id, v_trade_id, moved.id,
               CASE WHEN moved.id = v_payer.id THEN -p_amount ELSE p_amount END,
               moved.balance, v_now
        FROM moved;
    END IF;
    IF p_override THEN
        PERFORM set_config('mutualcredit.limit_override', 'off', true);
    END IF;
    IF p_kind IN ('federation', 'settlement') THEN
        PERFORM set_config('mutualcredit.federation', 'off', true);
    END IF;
    IF v_levies IS NOT NULL THEN
        v_fees := mc_book_levies(p_network_id, v_trade_id, v_levies, p_actor, v_now);
    END IF;

    RETURN QUERY SELECT 'created'::text, NULL::text, NULL::jsonb,
        (to_jsonb(v_trade) - ARRAY['network_id', 'request_hash', 'payer_id', 'payee_id'])
        || jsonb_build_object('payer', v_payer.code, 'payee', v_payee.code,
                              'reversed_by', NULL, 'fees', v_fees, 'fee', NULL);
END $$;
