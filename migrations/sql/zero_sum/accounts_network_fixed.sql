-- Only an UPDATE that names network_id and changes it fires this.
CREATE TRIGGER accounts_network_fixed BEFORE UPDATE OF network_id ON accounts
    FOR EACH ROW WHEN (OLD.network_id IS DISTINCT FROM NEW.network_id)
    EXECUTE FUNCTION mc_accounts_network_fixed();
