-- webhook_redelivery_requests: every request is on record row by row, which TRUNCATE would skip.
CREATE TRIGGER webhook_redelivery_requests_no_truncate BEFORE TRUNCATE ON webhook_redelivery_requests
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate();
