-- Opening an account of a federation link, or any account with a code link.* or settlement.*:
-- only creating a link does, with the kind that goes with the code.
CREATE TRIGGER accounts_protocol_only_open
    BEFORE INSERT ON accounts
    FOR EACH ROW
    WHEN (NEW.kind IN ('link', 'settlement') OR NEW.code ~ '^(link|settlement)\.')
    EXECUTE FUNCTION mc_accounts_protocol_only();
