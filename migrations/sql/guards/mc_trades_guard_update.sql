-- A trade is final once it is posted, voided or expired. A pending trade changes once, and only
-- its status, posted_amount and resolved_at.
CREATE FUNCTION mc_trades_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending' THEN
        RAISE EXCEPTION 'trade % is % and can no longer change', OLD.id, OLD.status
            USING ERRCODE = 'restrict_violation', TABLE = 'trades', CONSTRAINT = 'trades_final';
    END IF;
    IF NEW.status NOT IN ('posted', 'voided', 'expired') THEN
        RAISE EXCEPTION 'a pending trade can only become posted, voided or expired'
            USING ERRCODE = 'restrict_violation', TABLE = 'trades', CONSTRAINT = 'trades_final';
    END IF;
    IF (NEW.id, NEW.network_id, NEW.key, NEW.request_hash, NEW.payer_id, NEW.payee_id, NEW.amount,
        NEW.description, NEW.external_ref, NEW.metadata, NEW.reverses_trade_id, NEW.kind,
        NEW.reason, NEW.limit_override, NEW.created_by, NEW.expires_at, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.network_id, OLD.key, OLD.request_hash, OLD.payer_id, OLD.payee_id, OLD.amount,
        OLD.description, OLD.external_ref, OLD.metadata, OLD.reverses_trade_id, OLD.kind,
        OLD.reason, OLD.limit_override, OLD.created_by, OLD.expires_at, OLD.created_at) THEN
        RAISE EXCEPTION 'only the status of a pending trade can change'
            USING ERRCODE = 'restrict_violation', TABLE = 'trades', CONSTRAINT = 'trades_final';
    END IF;
    RETURN NEW;
END $$;
