-- A fee rule's history: its creation and every change, with who, when, the fields before and
-- after, and a reason the database insists on (`fee_rule_changes_reason`), as for limits.
CREATE FUNCTION mc_fee_rule_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_reason text := mc_reason();
    v_before jsonb;
    v_after jsonb := to_jsonb(NEW) - ARRAY['network_id', 'updated_at'];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        v_before := to_jsonb(OLD) - ARRAY['network_id', 'updated_at'];
        IF v_before = v_after THEN
            RETURN NULL;
        END IF;
    END IF;
    IF v_reason IS NULL THEN
        RAISE EXCEPTION 'a fee rule is made or changed with a reason (mutualcredit.reason)'
            USING ERRCODE = 'not_null_violation', CONSTRAINT = 'fee_rule_changes_reason';
    END IF;
    INSERT INTO fee_rule_changes (network_id, rule_id, kind, before, after, reason, actor,
                                  changed_at)
    VALUES (NEW.network_id, NEW.id, CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'changed' END,
            v_before, v_after, v_reason, mc_actor(), clock_timestamp());
    RETURN NULL;
END $$;
