-- Every trade and every change of its status (the request hash stays out of the record).
CREATE TRIGGER trades_audit AFTER INSERT OR UPDATE ON trades
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('request_hash');
