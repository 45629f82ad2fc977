-- The audit log covers an operator's request to send an event to a webhook endpoint again.
-- Only its creation: the attempts that follow are the delivery log's (webhook_attempts).
CREATE TRIGGER webhook_redeliveries_audit AFTER INSERT ON webhook_redeliveries
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
