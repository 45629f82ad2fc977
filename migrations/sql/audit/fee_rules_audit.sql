-- Every fee rule and every change of it (its bookkeeping time updated_at stays out).
CREATE TRIGGER fee_rules_audit
    AFTER INSERT
          OR UPDATE OF id, network_id, code, kind, treasury_id, account_kind, statuses,
                       charge_payer, charge_payee, rate_num, rate_den, amount, minimum, maximum,
                       basis, threshold, period, over_limit, starts_at, ends_at, description,
                       created_by, created_at
    ON fee_rules
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('updated_at');
