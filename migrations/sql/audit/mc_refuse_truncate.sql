-- TRUNCATE runs no row trigger, so it would remove an audited table's rows with no record of
-- it: refused on every audited table whose rows may be deleted one by one (the append-only ones
-- refuse it already, with mc_refuse_change).
CREATE FUNCTION mc_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE on % is not allowed: every change of it is on record, row by row',
                    TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME,
              CONSTRAINT = TG_TABLE_NAME || '_on_record';
END $$;
