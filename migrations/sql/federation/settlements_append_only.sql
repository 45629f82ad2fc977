-- Settlements are never deleted or truncated.
CREATE TRIGGER settlements_append_only BEFORE DELETE OR TRUNCATE ON settlements
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
