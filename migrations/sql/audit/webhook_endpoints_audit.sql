-- The audit log covers webhook endpoints: who registered, changed, rotated the secret of,
-- enabled or disabled each one (a disabling for failure is `webhook_endpoint.disabled`, with its
-- reason), and a deletion by hand (the API never deletes one). The sealed secrets stay out of
-- the record, and the delivery bookkeeping (cursor, attempt, next_attempt_at, failing_since) is
-- not named below, so a delivery never runs this trigger.
CREATE TRIGGER webhook_endpoints_audit
    AFTER INSERT
          OR UPDATE OF id, network_id, url, description, event_types, account,
                       member_account, status,
                       status_reason, secret_version, previous_secret_expires_at, created_by,
                       created_at
          OR DELETE
    ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('secret_sealed', 'previous_sealed', 'cursor',
                                                  'attempt', 'next_attempt_at', 'failing_since');
