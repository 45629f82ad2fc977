-- The audit log covers federation too: a network's node keys (never the sealed private key).
CREATE TRIGGER node_keys_audit AFTER INSERT OR UPDATE ON node_keys
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('sealed_private_key');
