-- Every payment request and its outcome.
CREATE TRIGGER payment_requests_audit AFTER INSERT OR UPDATE ON payment_requests
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
