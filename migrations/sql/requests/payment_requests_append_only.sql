-- Payment requests are never deleted or truncated.
CREATE TRIGGER payment_requests_append_only BEFORE DELETE OR TRUNCATE ON payment_requests
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
