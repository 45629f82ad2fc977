-- See mc_fee_rule_history.
CREATE TRIGGER fee_rules_history AFTER INSERT OR UPDATE ON fee_rules
    FOR EACH ROW EXECUTE FUNCTION mc_fee_rule_history();
