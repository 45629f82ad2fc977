-- Node keys are never deleted or truncated (a key is retired instead).
CREATE TRIGGER node_keys_append_only BEFORE DELETE OR TRUNCATE ON node_keys
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
