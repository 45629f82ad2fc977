-- The history of fee rules is append-only.
CREATE TRIGGER fee_rule_changes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON fee_rule_changes
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
