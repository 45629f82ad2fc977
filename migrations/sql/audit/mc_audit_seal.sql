-- mc_audit_seal: the sealer (a background job in every worker). Chains the unsealed records of
-- each network whose head it can lock without waiting, in the order it finds them committed, up
-- to p_limit per network. Returns how many records it sealed.
CREATE FUNCTION mc_audit_seal(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_head audit_heads%ROWTYPE;
    v_record audit_log%ROWTYPE;
    v_count integer := 0;
BEGIN
    -- One sealer per network at a time; others skip it rather than wait.
    FOR v_head IN
        SELECT h.* FROM audit_heads h
        WHERE EXISTS (SELECT 1 FROM audit_log a WHERE a.network_id = h.network_id AND a.hash IS NULL)
        ORDER BY h.network_id
        FOR UPDATE SKIP LOCKED
    LOOP
        FOR v_record IN
            SELECT * FROM audit_log a
            WHERE a.network_id = v_head.network_id AND a.hash IS NULL
            ORDER BY a.id LIMIT p_limit
        LOOP
            v_head.seq := v_head.seq + 1;
            UPDATE audit_log a
            SET seq = v_head.seq, prev_hash = v_head.hash,
                hash = sha256(v_head.hash || mc_audit_payload(
                    a.network_id, v_head.seq, a.occurred_at, a.actor, a.action, a.subject_type,
                    a.subject_id, a.reason, a.before, a.after))
            WHERE a.id = v_record.id
            RETURNING a.hash INTO v_head.hash;
            v_count := v_count + 1;
        END LOOP;
        UPDATE audit_heads SET seq = v_head.seq, hash = v_head.hash
        WHERE network_id = v_head.network_id;
    END LOOP;
    RETURN v_count;
END $$;
