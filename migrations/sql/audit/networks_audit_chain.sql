-- A new network's chain head, created with the network.
CREATE TRIGGER networks_audit_chain AFTER INSERT ON networks
    FOR EACH ROW EXECUTE FUNCTION mc_audit_start_chain();
