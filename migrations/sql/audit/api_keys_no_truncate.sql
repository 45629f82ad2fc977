-- api_keys: every change is on record row by row, which TRUNCATE would skip.
CREATE TRIGGER api_keys_no_truncate BEFORE TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate();
