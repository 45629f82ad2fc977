-- Fee rules are never deleted (a rule ends: its ends_at), so every charge keeps its rule.
CREATE TRIGGER fee_rules_append_only BEFORE DELETE OR TRUNCATE ON fee_rules
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
