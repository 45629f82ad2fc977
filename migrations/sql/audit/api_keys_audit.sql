-- Every key, its revocation and any other change of it (never the secret's hash). A platform key
-- has no network and no record (see mc_audit_change).
CREATE TRIGGER api_keys_audit AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('secret_hash');
