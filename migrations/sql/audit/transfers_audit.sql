-- The audit log covers federation too: every transfer and its status, not every delivery attempt.
CREATE TRIGGER transfers_audit AFTER INSERT OR UPDATE OF status ON transfers
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change(
        'request_hash', 'attempts', 'next_attempt_at', 'last_error', 'receipt_signature');
