-- The audit log covers federation too: every settlement an operator records, and its progress
-- (agreed, sent, executed or refused). Its trade has its own record.
CREATE TRIGGER settlements_audit AFTER INSERT OR UPDATE ON settlements
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
