-- Payment requests: open until accepted, rejected, cancelled or expired, once; only the status,
-- reason, trade and resolved_at change. Never deleted.
CREATE FUNCTION mc_requests_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'open' OR NEW.status = 'open'
       OR (NEW.id, NEW.network_id, NEW.payer_id, NEW.payee_id, NEW.amount, NEW.description,
           NEW.created_by, NEW.expires_at, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.network_id, OLD.payer_id, OLD.payee_id, OLD.amount, OLD.description,
           OLD.created_by, OLD.expires_at, OLD.created_at) THEN
        RAISE EXCEPTION 'a payment request changes once, from open to its outcome'
            USING ERRCODE = 'restrict_violation', TABLE = 'payment_requests',
                  CONSTRAINT = 'payment_requests_final';
    END IF;
    RETURN NEW;
END $$;
