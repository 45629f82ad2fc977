-- Books one charge of a fee rule: the trade of kind `fee` from the charged account to the
-- rule's treasury (when `p_amount` > 0) and its `fee_charges` row, which links it to its cause
-- (the trade `p_cause_id`, or the boundary `p_due_at`) and makes it unique. The caller holds the
-- row locks of both accounts and has decided the amount: `p_past_limit` books it past a limit
-- (the rule's `over_limit = 'book'`), recorded on the trade with the reason.
--
-- The trade's key cannot be a client's: it starts with '§', and a client's Idempotency-Key is
-- printable ASCII.
CREATE FUNCTION mc_book_fee(p_network_id uuid, p_rule fee_rules, p_account accounts,
                            p_amount bigint, p_waived bigint, p_past_limit boolean,
                            p_cause_id uuid, p_due_at timestamptz, p_actor text,
                            p_now timestamptz)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_key text;
    v_trade_id uuid;
    v_when text := to_char(p_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"');
BEGIN
    IF p_amount > 0 THEN
        v_key := '§fee/' || p_rule.code || '/' || coalesce(p_cause_id::text, v_when) || '/'
                 || p_account.code;
        INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount, status,
                            posted_amount, description, kind, reason, limit_override,
                            created_by, created_at, resolved_at)
        VALUES (p_network_id, v_key, sha256(convert_to(v_key, 'UTF8')), p_account.id,
                p_rule.treasury_id, p_amount, 'posted', p_amount,
                CASE p_rule.kind
                    WHEN 'levy' THEN 'Levy ' || p_rule.code || ' on trade ' || p_cause_id
                    WHEN 'membership' THEN 'Membership fee ' || p_rule.code || ' for the '
                                           || p_rule.period || ' from ' || v_when
                    ELSE 'Demurrage ' || p_rule.code || ' at ' || v_when END,
                'fee',
                CASE WHEN p_past_limit THEN 'fee rule ' || p_rule.code
                                            || ' books past the limit (over_limit = book)' END,
                p_past_limit, p_actor, p_now, p_now)
        RETURNING id INTO v_trade_id;
        IF p_past_limit THEN
            PERFORM set_config('mutualcredit.limit_override', 'on', true);
        END IF;
        PERFORM mc_book(p_network_id, v_trade_id, p_account.id, p_rule.treasury_id, p_amount, 0,
                        p_now);
        IF p_past_limit THEN
            PERFORM set_config('mutualcredit.limit_override', 'off', true);
        END IF;
    END IF;
    INSERT INTO fee_charges (network_id, rule_id, account_id, treasury_id, cause_trade_id,
                             due_at, amount, waived, past_limit, trade_id, created_at)
    VALUES (p_network_id, p_rule.id, p_account.id, p_rule.treasury_id, p_cause_id, p_due_at,
            p_amount, p_waived, p_past_limit, v_trade_id, p_now);
    RETURN v_trade_id;
END $$;
