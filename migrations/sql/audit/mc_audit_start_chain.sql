-- Every network's chain starts with it: sealers then only take heads with SKIP LOCKED and never
-- wait for one another (a sealer creating heads would wait on another's uncommitted insert).
CREATE FUNCTION mc_audit_start_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_heads (network_id, seq, hash) VALUES (NEW.id, 0, mc_audit_genesis(NEW.id));
    RETURN NULL;
END $$;
