-- Every UPDATE of a record passes mc_audit_guard: only its sealing.
CREATE TRIGGER audit_log_sealing BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION mc_audit_guard();
