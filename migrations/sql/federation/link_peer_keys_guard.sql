-- Every UPDATE and DELETE of a peer's key passes mc_peer_keys_guard.
CREATE TRIGGER link_peer_keys_guard BEFORE UPDATE OR DELETE ON link_peer_keys
    FOR EACH ROW EXECUTE FUNCTION mc_peer_keys_guard();
