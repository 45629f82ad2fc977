-- payee_approvals: every change is on record row by row, which TRUNCATE would skip.
CREATE TRIGGER payee_approvals_no_truncate BEFORE TRUNCATE ON payee_approvals
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate();
