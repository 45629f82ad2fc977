-- A charge that booked nothing (a periodic charge waived whole, which has no trade). A charge
-- that booked a trade is on record through that trade (trades_audit: kind `fee`, its payer, the
-- treasury, the amount, the rule and cause in its description), so a levied trade does not pay
-- for a second record of each levy.
CREATE TRIGGER fee_charges_audit AFTER INSERT ON fee_charges
    FOR EACH ROW WHEN (NEW.trade_id IS NULL) EXECUTE FUNCTION mc_audit_change();
