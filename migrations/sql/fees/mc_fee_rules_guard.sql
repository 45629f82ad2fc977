-- A fee rule's treasury is an active system account of its network when it is named (read FOR
-- SHARE, so that a concurrent close of it waits for this rule and then sees it); a rule's
-- network, code, kind and creation never change, nor, once it has started, its start and its
-- period (either would make past boundaries due: end the rule and make a new one); and two rules of one kind never charge the
-- same accounts (the same account kind and, for levies, the same side of a trade) at the same
-- time: `fee_rules_no_overlap`. The overlap check runs under a transaction advisory lock per
-- network, so two concurrent rules cannot both pass it.
CREATE FUNCTION mc_fee_rules_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_kind text;
    v_status text;
    v_other text;
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.network_id <> OLD.network_id OR NEW.code <> OLD.code
                             OR NEW.kind <> OLD.kind OR NEW.created_at <> OLD.created_at
                             OR NEW.created_by <> OLD.created_by
                             OR (OLD.starts_at <= clock_timestamp()
                                 AND (NEW.starts_at <> OLD.starts_at
                                      OR NEW.period IS DISTINCT FROM OLD.period))) THEN
        RAISE EXCEPTION 'a fee rule''s network, code, kind and creation never change, nor its start and period once it has started'
            USING ERRCODE = 'restrict_violation', TABLE = 'fee_rules',
                  CONSTRAINT = 'fee_rules_fixed';
    END IF;
    IF TG_OP = 'INSERT' OR NEW.treasury_id <> OLD.treasury_id THEN
        SELECT a.kind, a.status INTO v_kind, v_status
        FROM accounts a WHERE a.network_id = NEW.network_id AND a.id = NEW.treasury_id
        FOR SHARE;
        IF v_kind IS DISTINCT FROM 'system' OR v_status IS DISTINCT FROM 'active' THEN
            RAISE EXCEPTION 'a fee rule''s treasury is an active system account of its network'
                USING ERRCODE = 'check_violation', TABLE = 'fee_rules',
                      CONSTRAINT = 'fee_rules_treasury_valid';
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.network_id::text || '/fee_rules', 0));
    SELECT o.code INTO v_other FROM fee_rules o
    WHERE o.network_id = NEW.network_id AND o.id <> NEW.id AND o.kind = NEW.kind
      AND o.account_kind = NEW.account_kind
      AND (NEW.kind <> 'levy' OR (o.charge_payer AND NEW.charge_payer)
           OR (o.charge_payee AND NEW.charge_payee))
      AND tstzrange(o.starts_at, o.ends_at) && tstzrange(NEW.starts_at, NEW.ends_at)
    ORDER BY o.code LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'fee rule % would charge the same accounts as rule % at the same time',
                        NEW.code, v_other
            USING ERRCODE = 'exclusion_violation', TABLE = 'fee_rules',
                  CONSTRAINT = 'fee_rules_no_overlap', DETAIL = v_other;
    END IF;
    NEW.updated_at := clock_timestamp();
    IF TG_OP = 'INSERT' THEN
        NEW.created_at := NEW.updated_at;
    END IF;
    RETURN NEW;
END $$;
