-- Fires only for the accounts of a federation link, so a booking between members never pays
-- for it. A change of kind into or out of 'link' and 'settlement' fires it too, and is refused.
CREATE TRIGGER accounts_protocol_only
    BEFORE UPDATE OF balance, pending_debits, pending_credits, status, kind ON accounts
    FOR EACH ROW
    WHEN (OLD.kind IN ('link', 'settlement') OR NEW.kind IN ('link', 'settlement'))
    EXECUTE FUNCTION mc_accounts_protocol_only();
