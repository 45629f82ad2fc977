-- The audit log covers federation too: the peer keys a link trusts, registered by an operator
-- or announced by the peer (a rotation), and their revocation.
CREATE TRIGGER link_peer_keys_audit AFTER INSERT OR UPDATE OR DELETE ON link_peer_keys
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
