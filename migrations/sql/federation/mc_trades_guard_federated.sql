-- Federated holds are finished by mc_finish_hold only (it sets mutualcredit.federation): never
-- by a member's post or void nor by the expiry sweeper, since the destination decides.
CREATE FUNCTION mc_trades_guard_federated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.kind IN ('federation', 'settlement')
       AND coalesce(current_setting('mutualcredit.federation', true), '') <> 'on' THEN
        RAISE EXCEPTION 'trade % is a cross-network trade: only the federation protocol finishes it', OLD.id
            USING ERRCODE = 'restrict_violation', TABLE = 'trades',
                  CONSTRAINT = 'trades_federated';
    END IF;
    RETURN NEW;
END $$;
