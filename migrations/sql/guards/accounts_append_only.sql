-- Accounts are never deleted or truncated: a closed account stays, with its history.
CREATE TRIGGER accounts_append_only BEFORE DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
