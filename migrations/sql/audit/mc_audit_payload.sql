-- The bytes a record's hash covers: a JSON array (unambiguous, unlike a joined string), with the
-- time as epoch microseconds so that no session time zone can change the text.
CREATE FUNCTION mc_audit_payload(
    p_network_id uuid, p_seq bigint, p_occurred_at timestamptz, p_actor text, p_action text,
    p_subject_type text, p_subject_id text, p_reason text, p_before jsonb, p_after jsonb)
RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN convert_to(jsonb_build_array(
        p_network_id, p_seq, (extract(epoch FROM p_occurred_at) * 1000000)::bigint, p_actor,
        p_action, p_subject_type, p_subject_id, p_reason, p_before, p_after)::text, 'UTF8');
END $$;
