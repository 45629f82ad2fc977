-- An audit record never changes, except once: when it is sealed into the chain.
CREATE FUNCTION mc_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.hash IS NOT NULL OR NEW.hash IS NULL
       OR (NEW.id, NEW.network_id, NEW.occurred_at, NEW.actor, NEW.action, NEW.subject_type,
           NEW.subject_id, NEW.reason, NEW.before, NEW.after)
          IS DISTINCT FROM
          (OLD.id, OLD.network_id, OLD.occurred_at, OLD.actor, OLD.action, OLD.subject_type,
           OLD.subject_id, OLD.reason, OLD.before, OLD.after) THEN
        RAISE EXCEPTION 'the audit log is append-only'
            USING ERRCODE = 'restrict_violation', TABLE = 'audit_log',
                  CONSTRAINT = 'audit_log_append_only';
    END IF;
    RETURN NEW;
END $$;
