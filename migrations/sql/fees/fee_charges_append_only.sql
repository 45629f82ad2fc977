-- A charge, once made, never changes and is never deleted: a mistaken fee is reversed as a trade.
CREATE TRIGGER fee_charges_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON fee_charges
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
