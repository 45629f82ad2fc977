-- webhook_endpoints: every change is on record row by row, which TRUNCATE would skip.
CREATE TRIGGER webhook_endpoints_no_truncate BEFORE TRUNCATE ON webhook_endpoints
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate();
