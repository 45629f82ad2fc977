-- The audit log covers federation too: links (not their chain position).
CREATE TRIGGER links_audit AFTER INSERT OR UPDATE ON links
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('in_seq', 'in_hash');
