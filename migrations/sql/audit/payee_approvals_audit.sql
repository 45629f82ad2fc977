-- Every standing approval of a payer for a payee, its change and its withdrawal.
CREATE TRIGGER payee_approvals_audit AFTER INSERT OR UPDATE OR DELETE ON payee_approvals
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
