-- A link account (link.<peer>) and a settlement account (settlement.<peer>) stand for another
-- network: their figures are what the two networks' link records say, and only the federation
-- protocol's own bookings may move them (mc_create_trade for a trade of kind 'federation' or
-- 'settlement', and mc_finish_hold, which set mutualcredit.federation around their writes).
-- Any other writer (a local trade, a reversal, a write-off, a hand-written UPDATE) is refused
-- here, so a member cannot pay a peer network's account, use up a trust cap, or leave the
-- ledger disagreeing with the link's records. The same holds for opening such an account (only
-- creating a link does), for its status (the link has its own), and for its kind: an account
-- never becomes one or stops being one. Codes link.* and settlement.* go with these kinds only.
CREATE FUNCTION mc_accounts_protocol_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND (NEW.kind IN ('link', 'settlement'))
                            IS DISTINCT FROM (NEW.code ~ '^(link|settlement)\.') THEN
        RAISE EXCEPTION 'account %: the codes link.* and settlement.* are for the accounts of a federation link', NEW.code
            USING ERRCODE = 'check_violation', TABLE = 'accounts',
                  CONSTRAINT = 'accounts_protocol_only';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.kind IS DISTINCT FROM OLD.kind THEN
        RAISE EXCEPTION 'account %: an account of a federation link never changes kind', OLD.code
            USING ERRCODE = 'check_violation', TABLE = 'accounts',
                  CONSTRAINT = 'accounts_protocol_only';
    END IF;
    IF coalesce(current_setting('mutualcredit.federation', true), '') <> 'on' THEN
        RAISE EXCEPTION 'account % stands for another network: only the federation protocol moves it', NEW.code
            USING ERRCODE = 'check_violation', TABLE = 'accounts',
                  CONSTRAINT = 'accounts_protocol_only';
    END IF;
    RETURN NEW;
END $$;
