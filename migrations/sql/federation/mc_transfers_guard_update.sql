-- A transfer changes while in flight, or while an operator's resolution waits for the peer's
-- word; once accepted, refused or disputed it is final. What it is (ids, parties, amounts, rate,
-- expiry, the hubs it came through) never changes, and neither does an operator's resolution
-- once made (what was done with the hold, why, by whom).
CREATE FUNCTION mc_transfers_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('accepted', 'refused', 'disputed')
       OR (NEW.id, NEW.network_id, NEW.transfer_id, NEW.link_id, NEW.direction, NEW.kind,
           NEW.payer_address, NEW.payee_address, NEW.amount_sent, NEW.amount_received,
           NEW.rate_num, NEW.rate_den, NEW.rate_version, NEW.reference, NEW.expires_at,
           NEW.via, NEW.request_hash, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.network_id, OLD.transfer_id, OLD.link_id, OLD.direction, OLD.kind,
           OLD.payer_address, OLD.payee_address, OLD.amount_sent, OLD.amount_received,
           OLD.rate_num, OLD.rate_den, OLD.rate_version, OLD.reference, OLD.expires_at,
           OLD.via, OLD.request_hash, OLD.created_at)
       OR (OLD.resolution IS NOT NULL
           AND (NEW.resolution, NEW.resolution_reason, NEW.resolved_by)
               IS DISTINCT FROM (OLD.resolution, OLD.resolution_reason, OLD.resolved_by)) THEN
        RAISE EXCEPTION 'transfer % is final, or the change touches what it is', OLD.transfer_id
            USING ERRCODE = 'restrict_violation', TABLE = 'transfers',
                  CONSTRAINT = 'transfers_final';
    END IF;
    RETURN NEW;
END $$;
