-- A network's creation and every change of its settings.
CREATE TRIGGER networks_audit AFTER INSERT OR UPDATE ON networks
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
