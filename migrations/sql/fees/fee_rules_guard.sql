-- See mc_fee_rules_guard.
CREATE TRIGGER fee_rules_guard BEFORE INSERT OR UPDATE ON fee_rules
    FOR EACH ROW EXECUTE FUNCTION mc_fee_rules_guard();
