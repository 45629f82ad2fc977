-- The audit log covers federation too: the route tables of links, as operators set them (a
-- destination added is a record created, one removed a record deleted).
CREATE TRIGGER link_routes_audit AFTER INSERT OR UPDATE OR DELETE ON link_routes
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
