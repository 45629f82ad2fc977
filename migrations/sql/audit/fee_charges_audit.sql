-- Every charge of a fee rule: its trade is on record too (trades_audit), and a periodic charge
-- the account could not pay (waived, with no trade) only here.
CREATE TRIGGER fee_charges_audit AFTER INSERT ON fee_charges
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
