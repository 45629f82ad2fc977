-- A network's creation and every change of its settings (its name, its default limits). A
-- network is never deleted in practice (its history refers to it); if one were, by direct SQL,
-- that would be on record too.
CREATE TRIGGER networks_audit AFTER INSERT OR UPDATE OR DELETE ON networks
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
