-- The hash a network's chain starts from.
CREATE FUNCTION mc_audit_genesis(p_network_id uuid) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN sha256(convert_to('mutualcredit audit log of network ' || p_network_id::text, 'UTF8'));
END $$;
