-- The audit log covers an operator's request to send an event to a webhook endpoint again (and
-- a deletion by hand). Its progress (attempt, next_attempt_at, done_at) is not named below: the
-- attempts are the delivery log's (webhook_attempts).
CREATE TRIGGER webhook_redelivery_requests_audit
    AFTER INSERT
          OR UPDATE OF id, network_id, endpoint_id, seq, requested_by, created_at
          OR DELETE
    ON webhook_redelivery_requests
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('attempt', 'next_attempt_at', 'done_at');
