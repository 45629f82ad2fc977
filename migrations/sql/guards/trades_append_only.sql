-- Trades are never deleted or truncated (a pending trade's one change is guarded by
-- trades_final).
CREATE TRIGGER trades_append_only BEFORE DELETE OR TRUNCATE ON trades
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
