-- The treasury of a fee rule that has not ended is never closed: its rule would have nowhere to
-- book. End the rule first, or name another treasury (`fee_rules_treasury_open`).
CREATE FUNCTION mc_accounts_treasury_open() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_rule text;
BEGIN
    SELECT r.code INTO v_rule FROM fee_rules r
    WHERE r.network_id = NEW.network_id AND r.treasury_id = NEW.id
      AND (r.ends_at IS NULL OR r.ends_at > clock_timestamp())
    ORDER BY r.code LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'account % is the treasury of fee rule %', NEW.code, v_rule
            USING ERRCODE = 'restrict_violation', TABLE = 'accounts',
                  CONSTRAINT = 'fee_rules_treasury_open', DETAIL = v_rule;
    END IF;
    RETURN NEW;
END $$;
