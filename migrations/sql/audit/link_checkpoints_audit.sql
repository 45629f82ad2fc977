-- The audit log covers federation too: every checkpoint signed by both sides of a link (they
-- never change: link_checkpoints_append_only).
CREATE TRIGGER link_checkpoints_audit AFTER INSERT ON link_checkpoints
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
