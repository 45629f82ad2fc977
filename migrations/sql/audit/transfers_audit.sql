-- The audit log covers federation too: every transfer and every change of it, but not every
-- delivery attempt (attempts, next_attempt_at, last_error: the outbox's bookkeeping, and the
-- columns named here are all the others, so a delivery attempt never runs this trigger).
CREATE TRIGGER transfers_audit
    AFTER INSERT
          OR UPDATE OF id, network_id, transfer_id, link_id, direction, kind, status, trade_id,
                       payer_address, payee_address, amount_sent, amount_received, rate_num,
                       rate_den, rate_version, reference, via, description, expires_at,
                       refusal_code, refusal_detail, seq, chain_hash, receipt, created_at,
                       resolved_at, resolution, resolution_reason, resolved_by
    ON transfers
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change(
        'request_hash', 'attempts', 'next_attempt_at', 'last_error', 'receipt_signature');
