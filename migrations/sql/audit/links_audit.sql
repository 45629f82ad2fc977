-- The audit log covers federation too: links, but not their chain position (in_seq, in_hash),
-- which moves with every transfer received and is recorded with it. The columns named are all
-- the others, so a chain append never runs this trigger.
CREATE TRIGGER links_audit
    AFTER INSERT
          OR UPDATE OF id, network_id, peer_code, peer_url, status, account_id,
                       settlement_account_id, rate_num, rate_den, rate_version, default_route,
                       agreed_at, status_reason, peer_status, told_status, created_at
    ON links
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('in_seq', 'in_hash');
