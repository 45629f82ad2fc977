-- Transfers are never deleted or truncated.
CREATE TRIGGER transfers_append_only BEFORE DELETE OR TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
